import pino from 'pino';
import { describe, expect, it } from 'vitest';
import {
  killStrayProcesses,
  parentPid,
  strayProcesses,
  type ProcessInfo,
} from '../../src/resources/stray-processes.ts';

const ROOT = '/srv/data/jobs';
const EXE = ['ffmpeg', 'ffprobe', 'pocketsphinx_continuous'];
const SELF = 100;
const proc = (pid: number, ppid: number, ...argv: string[]): ProcessInfo => ({ pid, ppid, argv });

describe('parentPid', () => {
  it('reads the parent pid after a command name with spaces and parentheses', () => {
    expect(parentPid('4242 (ff mpeg) (x)) T 1 4200 4200 0 -1')).toBe(1);
    expect(parentPid('7 (node) S 6 7 7')).toBe(6);
  });

  it('returns null for an unreadable line', () => {
    expect(parentPid('')).toBeNull();
  });
});

describe('strayProcesses', () => {
  it('picks a re-parented ffmpeg working on a job file of this DATA_DIR', () => {
    const stray = proc(7, 1, '/usr/bin/ffmpeg', '-i', `${ROOT}/job_a/upload`);
    expect(strayProcesses([stray], ROOT, SELF, EXE)).toEqual([stray]);
  });

  it('leaves this process, its own children, other programs and other data dirs alone', () => {
    const all = [
      proc(SELF, 1, '/usr/bin/node', `${ROOT}/job_a/upload`),
      proc(8, SELF, 'ffmpeg', '-i', `${ROOT}/job_a/upload`),
      proc(9, 1, '/usr/bin/less', `${ROOT}/job_a/upload`),
      proc(10, 1, 'ffmpeg', '-i', '/srv/data/jobs-old/job_a/upload'),
      proc(11, 1, 'ffmpeg', '-i', '/other/jobs/job_a/upload'),
    ];
    expect(strayProcesses(all, ROOT, SELF, EXE)).toEqual([]);
  });
});

describe('killStrayProcesses', () => {
  it('kills each stray once, waits until it is gone, and tolerates one that already exited', async () => {
    let table = [
      proc(7, 1, 'ffmpeg', `${ROOT}/job_a/chunks/chunk-%05d.mp3`),
      proc(8, 1, 'ffprobe', `${ROOT}/job_b/upload`),
    ];
    const killed: number[] = [];
    const result = await killStrayProcesses({
      jobsRoot: ROOT,
      logger: pino({ level: 'silent' }),
      selfPid: SELF,
      table: {
        list: async () => table,
        kill(pid) {
          killed.push(pid);
          table = table.filter((p) => p.pid !== pid);
          if (pid === 8) throw Object.assign(new Error('no such process'), { code: 'ESRCH' });
        },
      },
    });
    expect(killed).toEqual([7, 8]);
    expect(result).toEqual([7]);
  });
});
