import cliProgress from 'cli-progress';
import type { JobResource } from '../jobs/progress.ts';
import { formatBytes, formatEta, jobProgressKey, jobProgressLine, percentOf } from './format.ts';

/** bars: redrawn in place (a terminal); plain: one line per change (logs, CI, pipes); none: silent. */
export type ProgressMode = 'bars' | 'plain' | 'none';

export interface ProgressReporter {
  uploadProgress(sentBytes: number, totalBytes: number): void;
  jobUpdate(job: JobResource): void;
  /** A line for people (stops any bar first so the line is not drawn over). */
  note(line: string): void;
  stop(): void;
}

export interface ReporterOptions {
  stream: NodeJS.WritableStream;
  mode: ProgressMode;
  /** Epoch ms; injected so upload speed is computed from one clock. */
  now?: () => number;
}

export function pickProgressMode(opts: { progress: boolean; isTTY: boolean | undefined; env: Record<string, string | undefined> }): ProgressMode {
  if (!opts.progress) return 'none';
  // TERM=dumb terminals cannot move the cursor, so redrawn bars would print garbage there.
  return opts.isTTY && opts.env.TERM !== 'dumb' ? 'bars' : 'plain';
}

const UPLOAD_STEP_PERCENT = 10;

export function createProgressReporter(options: ReporterOptions): ProgressReporter {
  const { stream, mode } = options;
  const now = options.now ?? Date.now;
  const writeLine = (line: string) => stream.write(`${line}\n`);

  let uploadStarted = 0;
  let lastUploadStep = -1;
  let lastJobKey = '';
  let uploadBar: cliProgress.SingleBar | null = null;
  let jobBar: cliProgress.SingleBar | null = null;

  const barOptions = (format: string): cliProgress.Options => ({
    stream,
    format,
    barsize: 28,
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

  function stopBars(): void {
    uploadBar?.stop();
    jobBar?.stop();
    uploadBar = null;
    jobBar = null;
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
        uploadBar = new cliProgress.SingleBar(barOptions('upload     [{bar}] {percentage}% | {sent} of {size} | {speed}'));
        uploadBar.start(Math.max(1, total), 0, { sent: formatBytes(0), size: formatBytes(total), speed: '' });
      }
      uploadBar.update(sent, { sent: formatBytes(sent), size: formatBytes(total), speed: speed(sent) });
    },

    jobUpdate(job) {
      if (mode === 'none') return;
      if (mode === 'plain') {
        const key = jobProgressKey(job);
        if (key === lastJobKey) return;
        lastJobKey = key;
        writeLine(jobProgressLine(job));
        return;
      }
      if (uploadBar) {
        uploadBar.stop();
        uploadBar = null;
      }
      const p = job.progress;
      // Not `eta`: cli-progress reserves that token for its own estimate from the bar's rate.
      const payload = {
        state: job.stage ? `${job.status}/${job.stage}` : job.status,
        jobPercent: p.percent.toFixed(1),
        left: formatEta(p.eta_s),
        extra: [p.chunks_retrying ? `${p.chunks_retrying} retrying` : '', p.chunks_failed ? `${p.chunks_failed} failed` : '']
          .filter(Boolean)
          .map((s) => ` | ${s}`)
          .join(''),
      };
      const total = Math.max(1, p.chunks_total);
      if (!jobBar) {
        jobBar = new cliProgress.SingleBar(barOptions('transcribe [{bar}] {value}/{total} chunks | {jobPercent}% | ETA {left} | {state}{extra}'));
        jobBar.start(total, p.chunks_done, payload);
      }
      if (jobBar.getTotal() !== total) jobBar.setTotal(total);
      jobBar.update(p.chunks_done, payload);
    },

    note(line) {
      if (mode === 'none') return;
      stopBars();
      writeLine(line);
    },

    stop() {
      stopBars();
    },
  };
}
