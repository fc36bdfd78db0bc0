import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { closeWithin } from '../../src/scale/bounded-close.ts';

const log = pino({ level: 'silent' });

describe('closeWithin', () => {
  it('cuts the connection of a close that never ends (a blocking Redis connection stuck in a reconnect)', async () => {
    let cut = 0;
    const stuck = { close: () => new Promise<void>(() => undefined), disconnect: async () => void (cut += 1) };
    await closeWithin('stuck worker', stuck, log, 20);
    expect(cut).toBe(1);
  });

  it('leaves a close that ends in time alone', async () => {
    let cut = 0;
    const quick = { close: async () => undefined, disconnect: async () => void (cut += 1) };
    await closeWithin('quick queue', quick, log, 60_000);
    expect(cut).toBe(0);
  });

  it('still returns when cutting the connection fails too', async () => {
    const broken = {
      close: () => new Promise<void>(() => undefined),
      disconnect: () => Promise.reject(new Error('socket gone')),
    };
    await expect(closeWithin('broken', broken, log, 20)).resolves.toBeUndefined();
  });

  it('returns when cutting the connection never ends either', async () => {
    const stuck = {
      close: () => new Promise<void>(() => undefined),
      disconnect: () => new Promise<void>(() => undefined),
    };
    await expect(closeWithin('stuck twice', stuck, log, 20)).resolves.toBeUndefined();
  });
});
