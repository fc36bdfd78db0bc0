/*
 * Pure: one silence scan that decodes the windows near the targets first and then their whole search windows,
 * and can be stopped as soon as the near part is known to hold a pause at every target (see
 * SilenceDetector.detectNearOrWide). The near part is followed by a marker (MARKER_SILENCE_S of generated
 * silence, then MARKER_TONE_S of a tone): the tone ends whatever silence runs there, so silencedetect always
 * reports a silence ending just past the near part, the moment every pause of the near windows is known.
 */
import type { ScanWindow, Silence } from './cut-points.ts';
import { inPieces } from './scan-pieces.ts';

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
 * The filtergraph of a scan whose inputs are `near` near windows, then `wide` pieces of the wide ones: each input
 * `prepared` on its own (as a scan of that window alone would), the marker (8 kHz mono, as the scan's audio is
 * prepared to) after the near ones, all played one after another into `detect`, out as [out].
 */
export function nearThenWideGraph(near: number, wide: number, prepare: string, detect: string): string {
  const inputs = Array.from({ length: near + wide }, (_, j) => `[w${j}]`);
  return [
    ...inputs.map((label, j) => `[${j}:a:0]${prepare}${label}`),
    `anullsrc=r=8000:cl=mono,atrim=duration=${MARKER_SILENCE_S}[quiet]`,
    `sine=f=440:r=8000:d=${MARKER_TONE_S}[tone]`,
    `${inputs.slice(0, near).join('')}[quiet][tone]${inputs.slice(near).join('')}` +
      `concat=n=${near + wide + 2}:v=0:a=1,${detect}[out]`,
  ].join(';');
}

/**
 * A scan of `pairs`: its inputs (the near windows, then the pieces of each wide window left to decode once its
 * near one held no pause: scan-pieces.ts, `edgeS` into the near one), the windows in the order it plays them
 * (the marker as a window of its own between), and each target's answer from the silences of `played`.
 */
export function nearThenWide(
  pairs: readonly NearAndWide[],
  edgeS: number,
): { inputs: ScanWindow[]; played: ScanWindow[]; answer: (split: readonly Silence[][]) => NearOrWide[] } {
  const near = pairs.map((p) => p.near);
  const wide = inPieces(
    pairs.map((p) => ({ ...p.wide, heard: p.near })),
    edgeS,
  );
  return {
    inputs: [...near, ...wide.pieces],
    played: [...near, { fromS: 0, toS: MARKER_SILENCE_S + MARKER_TONE_S }, ...wide.pieces],
    answer: (split) => nearOrWide(split.slice(0, near.length), wide.gather(split.slice(near.length + 1))),
  };
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
 * Each target's silences: its near window's, or its whole window's where that held none (a scan stops before the
 * wide windows only when every near one held one).
 */
export function nearOrWide(near: readonly Silence[][], wide: readonly Silence[][]): NearOrWide[] {
  return near.map((found, k) => ({ near: found, wide: found.length > 0 ? null : (wide[k] ?? []) }));
}
