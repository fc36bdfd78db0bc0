import { execFile } from 'node:child_process';

export interface BinaryCheck {
  status: 'ok' | 'down';
  detail: string;
}

/** Runs `<binary> -version` once, with a short timeout, and reports the first line (for /health/ready). */
export function checkBinary(binary: string, timeoutMs = 5_000): Promise<BinaryCheck> {
  return new Promise((resolve) => {
    execFile(binary, ['-version'], { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout) => {
      if (err) resolve({ status: 'down', detail: `${binary} cannot run: ${err.message.split('\n')[0]}` });
      else resolve({ status: 'ok', detail: stdout.split('\n')[0]?.trim() ?? binary });
    });
  });
}
