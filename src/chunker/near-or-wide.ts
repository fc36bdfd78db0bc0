/*
 * Pure: one silence scan that decodes the windows near the targets first and then their whole search windows,
 * and can be stopped as soon as the near part is known to hold a pause at every target (see
 * SilenceDetector.detectNearOrWide). The near part is followed by a marker (MARKER_SILENCE_S of generated
 * silence, then MARKER_TONE_S of a tone): the tone ends whatever silence runs there, so silencedetect always
 * reports a silence ending just past the near part, the moment every pause of the near windows is known.
 */
import type { ScanWindow, Silence } from './cut-points.ts';

/** One target's windows: the near one, scanned first, and the whole search window, wanted where that held none. */
export interface NearAndWide {
  near: ScanWindow;
  wide: ScanWindow;
}

/** The silences of a target's near window, and of its whole window when the near one held none (else null). */
export interface NearOrWide {
  near: Silence[];
  wide: Silence[] | null;
}

/** Generated silence after the near windows: longer than silencedetect's shortest silence (0.3 s). */
export const MARKER_SILENCE_S = 0.4;
/** A tone after it, ending that silence. */
export const MARKER_TONE_S = 0.1;

/**
 * The filtergraph of a scan of `targets` targets whose inputs are their near windows, then their wide ones: each
 * input `prepared` on its own (as a scan of that window alone would), the marker (8 kHz mono, as the scan's
 * audio is prepared to) after the near ones, all played one after another into `detect`, out as [out].
 */
export function nearThenWideGraph(targets: number, prepare: string, detect: string): string {
  const inputs = Array.from({ length: 2 * targets }, (_, j) => `[w${j}]`);
  return [
    ...inputs.map((label, j) => `[${j}:a:0]${prepare}${label}`),
    `anullsrc=r=8000:cl=mono,atrim=duration=${MARKER_SILENCE_S}[quiet]`,
    `sine=f=440:r=8000:d=${MARKER_TONE_S}[tone]`,
    `${inputs.slice(0, targets).join('')}[quiet][tone]${inputs.slice(targets).join('')}` +
      `concat=n=${2 * targets + 2}:v=0:a=1,${detect}[out]`,
  ].join(';');
}

/** The windows in the order the scan plays them: the near ones, the marker (as a window of its own), the wide ones. */
export function nearThenWide(pairs: readonly NearAndWide[]): ScanWindow[] {
  return [
    ...pairs.map((p) => p.near),
    { fromS: 0, toS: MARKER_SILENCE_S + MARKER_TONE_S },
    ...pairs.map((p) => p.wide),
  ];
}

const length = (w: ScanWindow): number => Math.max(0, w.toS - w.fromS);

/**
 * Whether the scan is past the near windows: the marker's tone ends a silence just after them, and until then a
 * pause at their end may still be growing. `joined`: the silences reported so far, in the played timeline.
 */
export function pastNear(joined: readonly Silence[], pairs: readonly NearAndWide[]): boolean {
  const nearEnd = pairs.reduce((sum, p) => sum + length(p.near), 0);
  return joined.some((s) => s.end > nearEnd);
}

/**
 * Each target's silences from the scan's silences split by `nearThenWide`' windows: its near window's, or its
 * whole window's where that held none (a scan stops before the wide windows only when every near one held one).
 */
export function nearOrWide(split: readonly Silence[][], targets: number): NearOrWide[] {
  return Array.from({ length: targets }, (_, k) => {
    const near = split[k] ?? [];
    return { near, wide: near.length > 0 ? null : (split[targets + 1 + k] ?? []) };
  });
}
