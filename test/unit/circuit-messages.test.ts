import { describe, expect, it } from 'vitest';
import { asOpening } from '../../src/scale/circuit-messages.ts';

const T = 1_733_400_000_000;
const open = { id: 'a1b2c3d4-0000-4000-8000-000000000000', code: 'PROVIDER_AUTH', reason: 'auth', openedAt: T };

describe('an open read back from Redis', () => {
  it("takes this version's open as it was said", () => {
    expect(asOpening({ ...open, retryAt: T + 1 })).toEqual({ opening: { ...open, retryAt: T + 1 }, legacy: false });
  });

  it("names a previous version's open (no id) by its times, alike for every host that reads it", () => {
    const { id: _, ...said } = { ...open, retryAt: T + 300_000 };
    const first = asOpening(said);
    expect(first).toMatchObject({ legacy: true, opening: { ...said, id: `legacy-${T}-${T + 300_000}` } });
    expect(asOpening(JSON.parse(JSON.stringify(said)))).toEqual(first);
    expect(asOpening({ ...said, retryAt: T + 30_000 })?.opening.id).not.toBe(first?.opening.id);
  });

  it('refuses what cannot name a period or is not an open, and bounds the reason', () => {
    const { id: _, ...said } = { ...open, retryAt: T + 1 };
    for (const bad of [
      { ...said, openedAt: T + 0.5 },
      { ...said, retryAt: Number.MAX_VALUE },
      { ...said, id: null },
      { ...said, id: 'a:b' },
      { ...said, id: 'x'.repeat(65) },
      { ...said, code: 'NOT_A_CODE' },
      { ...said, reason: 7 },
      null,
      'open',
    ]) {
      expect(asOpening(bad)).toBeNull();
    }
    expect(asOpening({ ...said, reason: 'r'.repeat(5_000) })?.opening.reason).toHaveLength(500);
  });
});
