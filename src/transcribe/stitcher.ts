import type { ChunkStatus } from '../jobs/types.ts';
import { normaliseWord, resolveOverlap, segmentWords } from './overlap.ts';
import type { OverlapOptions, TimedWord } from './overlap.ts';
import { seamByWordTimes } from './seam.ts';
import type { ChunkResult, Transcript, TranscriptSegment, TranscriptWord } from './types.ts';

export interface StitchChunk {
  index: number;
  /** Absolute start of the chunk's audio (s), overlap included. */
  startS: number;
  durationS: number;
  status: ChunkStatus;
  result: ChunkResult | null;
}

export interface StitchInput {
  jobId: string;
  durationS: number;
  chunks: StitchChunk[];
  /** Seconds each chunk shares with the one before it (0: cut points only). */
  overlapS: number;
}

/** Text standing in for the audio of a chunk that could not be transcribed. */
export const GAP_MARKER_TEMPLATE = '[inaudible: chunk {index} failed]';

export function gapMarker(index: number): string {
  return GAP_MARKER_TEMPLATE.replace('{index}', String(index));
}

export function isGapMarker(text: string): boolean {
  return /^\[inaudible: chunk \d+ failed\]$/.test(text.trim());
}

/** Below this an "overlap" is float noise between adjacent cut points, not shared audio. */
export const MIN_OVERLAP_S = 0.05;

interface WordRef extends TimedWord {
  seg: number;
}

interface Piece {
  chunk: StitchChunk;
  /** Present for a transcribed chunk, absent for a gap marker. */
  words: WordRef[] | null;
  /** Whether `words` carry the engine's own times (otherwise they are estimated from the segments). */
  realWords: boolean;
  segments: Array<{ start: number; end: number; text: string }>;
  timing: 'segment' | 'chunk';
  lo: number;
  hi: number;
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]/u;

/** Joins pieces of text with single spaces, none before closing punctuation or between CJK characters. */
export function joinText(parts: readonly string[]): string {
  // Pieces joined once at the end: reading the last character of a string grown by += flattens it every time,
  // which made a long job's transcript (thousands of segments) cost seconds.
  const pieces: string[] = [];
  let last = '';
  for (const raw of parts) {
    const part = raw.replace(/\s+/g, ' ').trim();
    if (part === '') continue;
    const glue = pieces.length === 0 || (CJK.test(last) && CJK.test(part[0] ?? '')) ? '' : ' ';
    pieces.push(glue + part);
    last = part.at(-1) ?? '';
  }
  const out = pieces.join('');
  return out.replace(/ +([.,;:!?%…)\]}»”’、。，！？])/gu, '$1').replace(/([([{«“]) +/gu, '$1');
}

function absoluteSegments(chunk: StitchChunk, result: ChunkResult, durationS: number) {
  const lo = clamp(chunk.startS, 0, durationS);
  const hi = clamp(chunk.startS + chunk.durationS, lo, durationS);
  const raw = result.segments.length > 0 ? result.segments : [{ start: 0, end: chunk.durationS, text: result.text }];
  return raw
    .filter((s) => s.text.trim() !== '')
    .map((s) => {
      const start = clamp(chunk.startS + s.start, lo, hi);
      return { start, end: clamp(chunk.startS + s.end, start, hi), text: s.text.trim() };
    });
}

/**
 * The engine's own word times, absolute, each tied to the segment holding its middle (the nearest one when a
 * word falls between segments). Null when the engine gave none.
 */
function realWords(chunk: StitchChunk, result: ChunkResult, segments: Piece['segments'], durationS: number) {
  if (!result.words || result.words.length === 0 || segments.length === 0) return null;
  const lo = clamp(chunk.startS, 0, durationS);
  const hi = clamp(chunk.startS + chunk.durationS, lo, durationS);
  const distance = (s: { start: number; end: number }, t: number) =>
    t < s.start ? s.start - t : Math.max(0, t - s.end);
  return result.words
    .filter((w) => w.word.trim() !== '')
    .map((w) => {
      const start = clamp(chunk.startS + w.start, lo, hi);
      const end = clamp(chunk.startS + w.end, start, hi);
      const mid = (start + end) / 2;
      let seg = 0;
      segments.forEach((s, i) => {
        if (distance(s, mid) < distance(segments[seg] as (typeof segments)[number], mid)) seg = i;
      });
      const text = w.word.trim();
      return { text, norm: normaliseWord(text), start, end, seg };
    });
}

function toPiece(chunk: StitchChunk, durationS: number): Piece {
  if (chunk.status !== 'done' || chunk.result === null) {
    return { chunk, words: null, realWords: false, segments: [], timing: 'chunk', lo: 0, hi: 0 };
  }
  const segments = absoluteSegments(chunk, chunk.result, durationS);
  const real = realWords(chunk, chunk.result, segments, durationS);
  const words = real ?? segments.flatMap((s, seg) => segmentWords(s.text, s.start, s.end).map((w) => ({ ...w, seg })));
  return { chunk, words, realWords: real !== null, segments, timing: chunk.result.timing, lo: 0, hi: words.length };
}

/** The kept words with the engine's times, when every transcribed piece had them; undefined otherwise. */
function transcriptWords(pieces: readonly Piece[], durationS: number): TranscriptWord[] | undefined {
  const spoken = pieces.filter((p) => p.words !== null);
  if (spoken.length === 0 || spoken.some((p) => !p.realWords)) return undefined;
  const out: TranscriptWord[] = [];
  let floor = 0;
  for (const p of spoken) {
    for (const w of (p.words ?? []).slice(p.lo, Math.max(p.lo, p.hi))) {
      const start = Math.min(durationS, round3(Math.max(w.start, floor)));
      floor = start;
      out.push({ start, end: Math.min(durationS, Math.max(round3(w.end), start)), word: w.text, chunk: p.chunk.index });
    }
  }
  return out;
}

function overlapOptions(a: Piece, b: Piece, windowS: number): OverlapOptions {
  if (a.timing === 'segment' && b.timing === 'segment') {
    return { toleranceS: Math.max(3, 2 * windowS), minRun: 2, allowSingleWord: true };
  }
  // Chunk-timed words are spread evenly over the chunk: look at the words the window can hold at each
  // cut edge (with room for the provider's pace varying), not at their estimated times.
  const rate = (p: Piece) => (p.words?.length ?? 0) / Math.max(1, p.chunk.durationS);
  const edgeWords = Math.ceil((windowS + 2) * Math.max(rate(a), rate(b)) * 1.5) + 2;
  return { toleranceS: Number.POSITIVE_INFINITY, minRun: 2, allowSingleWord: false, edgeWords };
}

function dedupe(a: Piece, b: Piece, overlapS: number): void {
  if (!a.words || !b.words || b.chunk.index !== a.chunk.index + 1) return;
  const start = b.chunk.startS;
  const end = Math.max(a.chunk.startS + a.chunk.durationS, start + overlapS);
  if (end - start < MIN_OVERLAP_S) return;
  const prev = a.words.slice(a.lo, a.hi);
  // The engine's word times place the seam; estimated ones are too coarse, so the text is aligned instead.
  const cut =
    a.realWords && b.realWords
      ? seamByWordTimes(prev, b.words, { start, end })
      : resolveOverlap(prev, b.words, { start, end }, overlapOptions(a, b, end - start));
  a.hi = a.lo + cut.keepPrev;
  b.lo = Math.max(b.lo, cut.skipNext);
}

function pieceSegments(p: Piece, durationS: number): TranscriptSegment[] {
  const index = p.chunk.index;
  if (!p.words) {
    const start = clamp(p.chunk.startS, 0, durationS);
    const end = clamp(p.chunk.startS + p.chunk.durationS, start, durationS);
    return [{ start, end, text: gapMarker(index), chunk: index }];
  }
  const kept = p.words.slice(p.lo, Math.max(p.lo, p.hi));
  const out: TranscriptSegment[] = [];
  p.segments.forEach((seg, i) => {
    const words = kept.filter((w) => w.seg === i);
    if (words.length === 0) return;
    const whole = words.length === p.words?.filter((w) => w.seg === i).length;
    if (whole) {
      out.push({ start: seg.start, end: seg.end, text: seg.text, chunk: index });
      return;
    }
    const first = words[0] as WordRef;
    const last = words.at(-1) as WordRef;
    out.push({ start: first.start, end: last.end, text: words.map((w) => w.text).join(' '), chunk: index });
  });
  return out;
}

function mostCommonLanguage(chunks: StitchChunk[]): string | null {
  const counts = new Map<string, number>();
  let best: string | null = null;
  for (const c of chunks) {
    const lang = c.status === 'done' ? c.result?.language : null;
    if (!lang) continue;
    const n = (counts.get(lang) ?? 0) + 1;
    counts.set(lang, n);
    if (best === null || n > (counts.get(best) ?? 0)) best = lang;
  }
  return best;
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}

function stitch(input: StitchInput, partial: boolean): Transcript {
  const durationS = Math.max(0, input.durationS);
  const ordered = [...input.chunks]
    .sort((a, b) => a.index - b.index)
    // While a job runs, chunks still in flight are simply not there yet; in the final transcript every
    // chunk that did not finish is a visible gap.
    .filter((c) => !partial || c.status === 'done' || c.status === 'failed');
  const pieces = ordered.map((c) => toPiece(c, durationS));
  for (let i = 1; i < pieces.length; i++) dedupe(pieces[i - 1] as Piece, pieces[i] as Piece, input.overlapS);

  const segments: TranscriptSegment[] = [];
  let floor = 0;
  for (const seg of pieces.flatMap((p) => pieceSegments(p, durationS))) {
    const start = Math.min(durationS, round3(Math.max(seg.start, floor)));
    const end = Math.min(durationS, Math.max(round3(seg.end), start));
    floor = start;
    segments.push({ start, end, text: seg.text, chunk: seg.chunk });
  }
  const words = transcriptWords(pieces, durationS);
  return {
    job_id: input.jobId,
    text: joinText(segments.map((s) => s.text)),
    language: mostCommonLanguage(ordered),
    duration_s: durationS,
    segments,
    timing: transcriptTiming(ordered),
    ...(words ? { words } : {}),
  };
}

/** Whether the transcript's times are the provider's segment times or only chunk bounds. */
function transcriptTiming(chunks: readonly StitchChunk[]): NonNullable<Transcript['timing']> {
  const kinds = new Set(chunks.flatMap((c) => (c.result ? [c.result.timing] : [])));
  if (kinds.size > 1) return 'mixed';
  return kinds.has('chunk') ? 'chunk' : 'segment';
}

/** The final transcript: every chunk in order, absolute times, overlaps said once, failed chunks marked. */
export function stitchTranscript(input: StitchInput): Transcript {
  return stitch(input, false);
}

/** The transcript of the chunks finished so far (done or failed), for `?partial=true` while a job runs. */
export function stitchPartial(input: StitchInput): Transcript {
  return stitch(input, true);
}
