import cliProgress from 'cli-progress';
import type { JobResource } from '../http/schemas.ts';
import {
  audioProgress,
  formatBytes,
  formatDuration,
  jobProgressKey,
  jobProgressLine,
  percentOf,
  stageWords,
  type FollowView,
} from './format.ts';

/** bars: redrawn in place (a terminal); plain: one line per change (logs, CI, pipes); none: silent. */
export type ProgressMode = 'bars' | 'plain' | 'none';

export interface ProgressReporter {
  uploadProgress(sentBytes: number, totalBytes: number): void;
  jobUpdate(job: JobResource): void;
  /** A line for people (stops any bar first so the line is not drawn over). */
  note(line: string): void;
  /** A chunk's text as it arrives: a preview for the person watching (the transcript itself goes to stdout or -o). */
  text(text: string): void;
  stop(): void;
}

export interface ReporterOptions {
  stream: NodeJS.WritableStream;
  mode: ProgressMode;
  /** Epoch ms; injected so elapsed time and speeds are computed from one clock. */
  now?: () => number;
  /** In plain mode, a line at least this often while nothing changes (a long chunk), so a log shows it is alive. */
  heartbeatMs?: number;
}

export function pickProgressMode(opts: {
  progress: boolean;
  isTTY: boolean | undefined;
  env: Record<string, string | undefined>;
}): ProgressMode {
  if (!opts.progress) return 'none';
  // TERM=dumb terminals cannot move the cursor, so redrawn bars would print garbage there.
  return opts.isTTY && opts.env.TERM !== 'dumb' ? 'bars' : 'plain';
}

const UPLOAD_STEP_PERCENT = 10;
const HEARTBEAT_MS = 30_000;

export function createProgressReporter(options: ReporterOptions): ProgressReporter {
  const { stream, mode } = options;
  const now = options.now ?? Date.now;
  const heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
  const writeLine = (line: string) => stream.write(`${line}\n`);
  // Elapsed counts from when the command started, which is what the person at the terminal has waited.
  const startedAt = now();
  // Speed is measured from the first job state seen, so following a half-done job does not count work done before.
  let firstSeen: { at: number; audioS: number } | null = null;
  let lastLineAt = 0;

  let uploadStarted = 0;
  let lastUploadStep = -1;
  let lastJobKey = '';
  let uploadBar: cliProgress.SingleBar | null = null;
  // Two lines, so an 80-column terminal shows all of it: the bar with counts and times, then the stage and audio.
  let jobBars: { group: cliProgress.MultiBar; bar: cliProgress.GenericBar; words: cliProgress.GenericBar } | null =
    null;

  const barOptions = (format: string): cliProgress.Options => ({
    stream,
    format,
    barsize: 20,
    hideCursor: true,
    clearOnComplete: false,
    stopOnComplete: false,
    fps: 8,
    barCompleteChar: '\u2588',
    barIncompleteChar: '\u2591',
  });

  function speed(sent: number): string {
    const seconds = (now() - uploadStarted) / 1000;
    return seconds > 0 ? `${formatBytes(sent / seconds)}/s` : '';
  }

  function followView(job: JobResource): FollowView {
    const at = now();
    firstSeen ??= { at, audioS: job.progress.audio_s_done };
    const doneS = job.progress.audio_s_done - firstSeen.audioS;
    const wallS = (at - firstSeen.at) / 1000;
    return { elapsedS: (at - startedAt) / 1000, speed: doneS > 0 && wallS > 0 ? doneS / wallS : null, nowMs: at };
  }

  function stopBars(): void {
    uploadBar?.stop();
    jobBars?.group.stop();
    uploadBar = null;
    jobBars = null;
  }

  return {
    uploadProgress(sent, total) {
      if (mode === 'none') return;
      if (uploadStarted === 0) uploadStarted = now();
      if (mode === 'plain') {
        const percent = percentOf(sent, total);
        const step = Math.floor(percent / UPLOAD_STEP_PERCENT);
        if (step === lastUploadStep) return;
        lastUploadStep = step;
        const rate = sent > 0 ? `, ${speed(sent)}` : '';
        writeLine(`upload ${percent}% (${formatBytes(sent)} of ${formatBytes(total)}${rate})`);
        return;
      }
      if (!uploadBar) {
        uploadBar = new cliProgress.SingleBar(
          barOptions('upload     [{bar}] {percentage}% | {sent} of {size} | {speed}'),
        );
        uploadBar.start(Math.max(1, total), 0, { sent: formatBytes(0), size: formatBytes(total), speed: '' });
      }
      uploadBar.update(sent, { sent: formatBytes(sent), size: formatBytes(total), speed: speed(sent) });
    },

    jobUpdate(job) {
      if (mode === 'none') return;
      const view = followView(job);
      if (mode === 'plain') {
        const key = jobProgressKey(job);
        if (key === lastJobKey && view.nowMs - lastLineAt < heartbeatMs) return;
        lastJobKey = key;
        lastLineAt = view.nowMs;
        writeLine(jobProgressLine(job, view));
        return;
      }
      if (uploadBar) {
        uploadBar.stop();
        uploadBar = null;
      }
      const p = job.progress;
      // Not `eta`: cli-progress reserves that token for its own estimate from the bar's rate.
      const payload = {
        jobPercent: p.percent.toFixed(1),
        audio: audioProgress(job, view.speed),
        elapsed: formatDuration(view.elapsedS),
        left: formatDuration(p.eta_s),
        state: stageWords(job, view.nowMs),
        failed: p.chunks_failed ? ` | ${p.chunks_failed} failed` : '',
      };
      const total = Math.max(1, p.chunks_total);
      if (!jobBars) {
        const group = new cliProgress.MultiBar(
          barOptions(
            'transcribe [{bar}] {value}/{total} chunks {jobPercent}% | elapsed {elapsed} | ETA {left}{failed}',
          ),
        );
        const bar = group.create(total, p.chunks_done, payload);
        const words = group.create(1, 0, payload, { format: '           {state} | {audio}' });
        jobBars = { group, bar, words };
      }
      if (jobBars.bar.getTotal() !== total) jobBars.bar.setTotal(total);
      jobBars.bar.update(p.chunks_done, payload);
      jobBars.words.update(0, payload);
    },

    note(line) {
      if (mode === 'none') return;
      stopBars();
      writeLine(line);
    },

    text(text) {
      const line = text.trim();
      if (mode === 'none' || line === '') return;
      // Above the bars, which keep their place: cli-progress prints logged lines at its next redraw.
      if (jobBars) jobBars.group.log(`${line}\n`);
      else writeLine(line);
    },

    stop() {
      stopBars();
    },
  };
}
