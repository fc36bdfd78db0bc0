/* global document, window, URL, setTimeout, clearTimeout, AbortController */
import { api, ApiError, openEvents } from './api.js';
import { readEvents } from './event-stream.js';
import { bytes, clock, duration, statusSentence, TERMINAL } from './format.js';
import { $, showError } from './ui.js';

const POLL_MS = 1000;

/** Streams that end without the job's end in a row (a proxy, a restart) before the page falls back to polling. */
const MAX_STREAM_RETRIES = 5;

/**
 * One job on screen: live progress and each chunk's text as it becomes final, from the job's event stream (polling
 * where there is none: an older server, every stream slot taken, a proxy that cuts it), then the timed transcript
 * and its downloads. `onUpdate(job)` lets the jobs list follow along; `onEnd(job)` fires once when it reaches a
 * final state.
 */
export function createJobView({ onUpdate, onEnd }) {
  let job = null;
  let timer = null;
  let token = 0;
  let lastSentence = '';
  let stream = null;

  function render(next) {
    const p = next.progress;
    job = next;
    $('job-id').textContent = next.id;
    $('job-file').textContent =
      `${next.audio.filename}, ${duration(next.audio.duration_s)} of audio, ${bytes(next.audio.size_bytes)}`;
    $('job-progress').value = p.percent;
    $('job-chunks').textContent = `${p.chunks_done} of ${p.chunks_total} (${p.percent}%)`;
    $('job-retries').textContent = String(p.chunks_retrying);
    $('job-failed').textContent = String(p.chunks_failed);
    $('job-eta').textContent = TERMINAL.has(next.status)
      ? '–'
      : p.eta_s === null
        ? 'estimating…'
        : `about ${duration(p.eta_s)}`;
    let sentence = statusSentence(next);
    if (next.status === 'failed' && next.error) sentence += ` ${next.error.message}`;
    // The live region is rewritten only when its words change, so a screen reader is not told the same thing every second.
    if (sentence !== lastSentence) {
      lastSentence = sentence;
      $('job-status').textContent = sentence;
    }
    $('job-section').dataset.status = next.status;
    $('job-cancel').hidden = TERMINAL.has(next.status);
    onUpdate(next);
  }

  function stop() {
    token += 1;
    clearTimeout(timer);
    stream?.abort();
    stream = null;
  }

  function appendText(text) {
    $('live-box').hidden = false;
    $('live-text').append(text);
  }

  /** The stream to the job's end event, resumed with the last event id when it closes before; else polling. */
  async function follow(id, mine) {
    let lastId = null;
    let quiet = 0;
    while (quiet < MAX_STREAM_RETRIES) {
      stream = new AbortController();
      try {
        const body = await openEvents(id, lastId, stream.signal);
        for await (const event of readEvents(body)) {
          if (mine !== token) return;
          quiet = 0;
          lastId = event.id ?? lastId;
          if (event.event === 'text') appendText(JSON.parse(event.data).text);
          else if ((event.event === 'progress' || event.event === 'end') && (await update(id, mine))) return;
        }
      } catch (err) {
        if (mine !== token) return;
        if (err instanceof ApiError && err.status === 404 && lastId !== null) return gone();
        // No stream here (an older server: 404), none to spare (429), an error answer: polling still works.
        if (err instanceof ApiError) break;
      }
      if (mine !== token) return;
      quiet += 1;
    }
    void poll(id, mine);
  }

  /** Reads the job and shows it; true once it has ended (the transcript is then shown). */
  async function update(id, mine) {
    const next = await api.getJob(id);
    if (mine !== token) return true;
    render(next);
    if (!TERMINAL.has(next.status)) return false;
    onEnd(next);
    if (next.status === 'completed') await showTranscript(next);
    return true;
  }

  function gone() {
    $('job-status').textContent = 'This job no longer exists.';
  }

  async function poll(id, mine) {
    let next;
    try {
      next = await api.getJob(id);
    } catch (err) {
      if (mine !== token) return;
      if (err instanceof ApiError && err.status === 404) return gone();
      // A restart or a blip should not end the follow: say so and keep trying, more slowly.
      $('job-status').textContent = `Waiting for the service: ${err.message}`;
      timer = setTimeout(() => void poll(id, mine), POLL_MS * 5);
      return;
    }
    if (mine !== token) return;
    render(next);
    if (!TERMINAL.has(next.status)) {
      timer = setTimeout(() => void poll(id, mine), POLL_MS);
      return;
    }
    onEnd(next);
    if (next.status === 'completed') await showTranscript(next);
  }

  async function showTranscript(done) {
    let transcript;
    try {
      transcript = await api.transcript(done.id, 'json');
    } catch (err) {
      return showError(err);
    }
    const items = transcript.segments.map((seg) => {
      const li = document.createElement('li');
      const time = document.createElement('span');
      time.className = 'ts';
      time.textContent = `${clock(seg.start)}–${clock(seg.end)}`;
      const text = document.createElement('span');
      text.className = 'text';
      text.textContent = seg.text;
      li.append(time, ' ', text);
      return li;
    });
    $('segments').replaceChildren(...items);
    if (items.length === 0) $('segments').textContent = 'No speech was found in this recording.';
    $('transcript-section').hidden = false;
  }

  /** Fetches with the key (a plain link could not send it), then saves through a temporary object URL. */
  async function download(format) {
    if (!job) return;
    try {
      const blob = await api.transcript(job.id, format, 'blob');
      const a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = `${job.audio.filename.replace(/\.[^.]+$/, '') || job.id}.${format}`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
    } catch (err) {
      showError(err);
    }
  }

  document.querySelectorAll('#transcript-section button[data-format]').forEach((b) => {
    b.addEventListener('click', () => void download(b.dataset.format));
  });

  return {
    current: () => job,
    open(next, { focus = true } = {}) {
      stop();
      lastSentence = '';
      $('job-section').hidden = false;
      $('transcript-section').hidden = true;
      $('segments').replaceChildren();
      $('live-text').replaceChildren();
      $('live-box').hidden = true;
      window.history.replaceState(null, '', `#${next.id}`);
      render(next);
      // The person just asked for this job: take them (and their screen reader) to it.
      if (focus) $('job-heading').focus();
      void follow(next.id, token);
    },
    close() {
      stop();
      job = null;
      $('job-section').hidden = true;
      $('transcript-section').hidden = true;
      window.history.replaceState(null, '', window.location.pathname);
    },
  };
}
