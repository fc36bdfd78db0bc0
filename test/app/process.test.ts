import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { removeDir, tempDataDir } from '../helper.ts';

const SERVER = path.resolve(import.meta.dirname, '../../src/server.ts');

/** The real process, as `npm start` runs it (from source: Node strips the types). */
function startProcess(env: Record<string, string>) {
  const child = spawn(process.execPath, [SERVER], {
    env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const listening = new Promise<string>((resolve) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        lines.push(entry);
        const m = /listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(String(entry.msg));
        if (m?.[1]) resolve(m[1]);
      } catch {
        lines.push({ raw: line });
      }
    });
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, lines, listening, exited };
}

describe('the service process', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await removeDir(d);
  });

  it('starts, answers, and exits 0 on SIGTERM after a graceful shutdown', async () => {
    const dataDir = await tempDataDir();
    dirs.push(dataDir);
    const proc = startProcess({ DATA_DIR: dataDir });
    const url = await proc.listening;
    expect((await fetch(`${url}/health/live`)).status).toBe(200);
    const config = proc.lines.find((l) => l.msg === 'configuration');
    expect(config).toBeDefined();
    expect(JSON.stringify(config)).toContain('"provider":"local"');
    expect(proc.lines.some((l) => String(l.msg).includes('API_KEYS is not set'))).toBe(true);
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    expect(proc.lines.some((l) => l.msg === 'shutting down')).toBe(true);
  });

  it('refuses to start with exit code 78 and names every bad variable', async () => {
    const proc = startProcess({ PORT: 'eighty', TRANSCRIBE_CONCURRENCY: '0', OPENAI_API_KEY: 'sk-secret-value' });
    expect(await proc.exited).toBe(78);
    const text = JSON.stringify(proc.lines);
    expect(text).toContain('PORT');
    expect(text).toContain('TRANSCRIBE_CONCURRENCY');
    expect(text).not.toContain('sk-secret-value');
  });
});

describe('one process per DATA_DIR', () => {
  it('refuses to start a second service on a DATA_DIR that a live process owns', async () => {
    const dataDir = await tempDataDir();
    try {
      const first = startProcess({ DATA_DIR: dataDir });
      await first.listening;
      const second = startProcess({ DATA_DIR: dataDir });
      expect(await second.exited).not.toBe(0);
      expect(JSON.stringify(second.lines)).toContain('is in use by process');
      first.child.kill('SIGTERM');
      expect(await first.exited).toBe(0);
    } finally {
      await removeDir(dataDir);
    }
  });
});
