/*
 * Pure: a window to scan for silences that holds a stretch already scanned without finding any pause (a
 * target's ±5 s before its ±15 s, that before its whole window) is decoded again only at that stretch's edges.
 * A pause crossing an edge lies less than the shortest reported silence inside the stretch (else that scan
 * had reported it), so decoding that far in, and a little more for silencedetect's own timing, hears it whole.
 * In continuous sound, where every target widens, a ±15 s scan after ±5 s decodes 21 s instead of 30 s.
 */
import type { ScanWindow, Silence } from './cut-points.ts';

/** Decoded past the shortest reported silence into a stretch heard before: silencedetect's timing is not exact. */
export const HEARD_EDGE_SLACK_S = 0.2;

/** How far into a stretch heard before its edges are decoded again, for a scan reporting silences this long. */
export const heardEdgeS = (minSilenceS: number): number => minSilenceS + HEARD_EDGE_SLACK_S;

/**
 * The stretches of `w` to decode: all of it, or what lies outside `w.heard` plus `edgeS` into it on each side
 * (none where `w` lies inside it). A heard stretch no longer than two edges is decoded again whole.
 */
export function piecesOf(w: ScanWindow, edgeS: number): ScanWindow[] {
  const whole = [{ fromS: w.fromS, toS: w.toS }];
  if (!w.heard) return whole;
  const from = Math.max(w.fromS, w.heard.fromS);
  const to = Math.min(w.toS, w.heard.toS);
  if (to - from <= 2 * edgeS) return whole;
  const pieces: ScanWindow[] = [];
  if (w.fromS < from) pieces.push({ fromS: w.fromS, toS: from + edgeS });
  if (w.toS > to) pieces.push({ fromS: to - edgeS, toS: w.toS });
  return pieces;
}

/**
 * `windows` as the pieces to decode (piecesOf, in order), and `gather`, which folds the silences found in each
 * piece back into one list per window. The pieces of a window do not overlap, so its silences stay in order.
 */
export function inPieces(
  windows: readonly ScanWindow[],
  edgeS: number,
): { pieces: ScanWindow[]; gather: (split: readonly Silence[][]) => Silence[][] } {
  const each = windows.map((w) => piecesOf(w, edgeS));
  return {
    pieces: each.flat(),
    gather(split) {
      let i = 0;
      return each.map((ps) => ps.flatMap(() => split[i++] ?? []));
    },
  };
}
