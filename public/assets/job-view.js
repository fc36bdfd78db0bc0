/* global document, window, URL, setTimeout, clearTimeout */
import { api, ApiError } from './api.js';
import { bytes, clock, duration, statusSentence, TERMINAL } from './format.js';
import { $, showError } from './ui.js';

const POLL_MS = 1000;

/**
 * One job on screen: live progress by polling, then the timed transcript and its downloads.
 * `onUpdate(job)` lets the jobs list follow along; `onEnd(job)` fires once when it reaches a final state.
 */
export function createJobView({ onUpdate, onEnd }) {
  let job = null;
  let timer = null;
  let token = 0;
  let lastSentence = '';

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
  }

  async function poll(id, mine) {
    let next;
    try {
      next = await api.getJob(id);
    } catch (err) {
      if (mine !== token) return;
      if (err instanceof ApiError && err.status === 404) {
        $('job-status').textContent = 'This job no longer exists.';
        return;
      }
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
      window.history.replaceState(null, '', `#${next.id}`);
      render(next);
      // The person just asked for this job: take them (and their screen reader) to it.
      if (focus) $('job-heading').focus();
      void poll(next.id, token);
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
