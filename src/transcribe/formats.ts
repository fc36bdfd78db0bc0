import { isGapMarker, joinText } from './stitcher.ts';
import type { Transcript, TranscriptSegment } from './types.ts';

export const TRANSCRIPT_FORMATS = ['json', 'txt', 'srt', 'vtt'] as const;
export type TranscriptFormat = (typeof TRANSCRIPT_FORMATS)[number];

/** What one subtitle cue holds: a segment's text (split to fit CUE_LIMITS), or one word at its own time. */
export const CUE_MODES = ['segments', 'words'] as const;
export type CueMode = (typeof CUE_MODES)[number];

export interface RenderOptions {
  /** srt and vtt: `words` gives a cue per word where the transcript has word times. @default 'segments' */
  cues?: CueMode;
}

export interface RenderedTranscript {
  body: string;
  contentType: string;
}

export interface Cue {
  start: number;
  end: number;
  /** One or two lines joined by '\n'. */
  text: string;
}

/** Common subtitle guidance: two lines of about 42 characters, on screen for at most about 7 seconds. */
export const CUE_LIMITS = { lineChars: 42, cueChars: 84, cueSeconds: 7 } as const;
const TXT_WIDTH = 80;
/** A pause this long (s) between segments starts a new paragraph in the txt rendering. */
const PARAGRAPH_PAUSE_S = 2;
const PARAGRAPH_MAX_CHARS = 600;

export function isTranscriptFormat(value: string): value is TranscriptFormat {
  return (TRANSCRIPT_FORMATS as readonly string[]).includes(value);
}

/** Splits text into at most two lines, breaking at the space nearest the middle. */
function twoLines(text: string): string {
  if (text.length <= CUE_LIMITS.lineChars) return text;
  const mid = text.length / 2;
  let best = -1;
  for (let i = text.indexOf(' '); i !== -1; i = text.indexOf(' ', i + 1)) {
    if (best === -1 || Math.abs(i - mid) < Math.abs(best - mid)) best = i;
  }
  return best === -1 ? text : `${text.slice(0, best)}\n${text.slice(best + 1)}`;
}

/** Greedy word packing: groups whose joined length stays within `limit` (a longer word stands alone). */
function pack(words: string[], limit: number): string[][] {
  const groups: string[][] = [];
  let cur: string[] = [];
  let len = 0;
  for (const w of words) {
    const next = cur.length === 0 ? w.length : len + 1 + w.length;
    if (cur.length > 0 && next > limit) {
      groups.push(cur);
      cur = [w];
      len = w.length;
    } else {
      cur.push(w);
      len = next;
    }
  }
  if (cur.length > 0) groups.push(cur);
  return groups;
}

/** One segment as cues within CUE_LIMITS, each timed by its share of the segment's characters. */
export function segmentCues(seg: Pick<TranscriptSegment, 'start' | 'end' | 'text'>): Cue[] {
  const text = seg.text.replace(/\s+/g, ' ').trim();
  if (text === '') return [];
  const duration = Math.max(0, seg.end - seg.start);
  const total = text.length;
  // Time is proportional to characters, so the time limit is a character limit too.
  const byTime = duration > 0 ? Math.floor((CUE_LIMITS.cueSeconds * total) / duration) : total;
  const limit = Math.max(1, Math.min(CUE_LIMITS.cueChars, byTime));
  const words = text.split(' ');
  let groups = pack(words, limit);
  if (groups.length > 1) {
    // Even out the cues so the last one is not a two-word leftover.
    const balanced = pack(words, Math.ceil((total - (groups.length - 1)) / groups.length));
    if (balanced.length === groups.length) groups = balanced;
  }
  const cues: Cue[] = [];
  let offset = 0;
  for (const g of groups) {
    const piece = g.join(' ');
    const start = seg.start + (duration * offset) / total;
    offset += piece.length;
    const end = seg.start + (duration * offset) / total;
    offset += 1;
    cues.push({ start, end, text: twoLines(piece) });
  }
  return cues;
}

/** All cues in order; a cue ends no later than the next one starts, so players never stack them. */
export function transcriptCues(t: Transcript, mode: CueMode = 'segments'): Cue[] {
  const cues =
    mode === 'words' && t.words !== undefined && t.words.length > 0
      ? t.words.map((w) => ({ start: w.start, end: Math.max(w.start, w.end), text: w.word.trim() }))
      : t.segments.flatMap((s) => segmentCues(s));
  return cues.map((c, i) => {
    const next = cues[i + 1];
    const end = next && next.start > c.start ? Math.min(c.end, next.start) : c.end;
    return { start: c.start, end: Math.max(c.start, end), text: c.text };
  });
}

/** `HH:MM:SS,mmm` (srt) or `HH:MM:SS.mmm` (vtt); hours grow past two digits rather than wrap. */
export function formatTimestamp(seconds: number, separator: ',' | '.'): string {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  const pad = (v: number, n = 2) => String(v).padStart(n, '0');
  return `${pad(h)}:${pad(m)}:${pad(s)}${separator}${pad(ms % 1000, 3)}`;
}

/** A cue line of "-->" would be read as a timing line; a blank line would end the cue. */
function safeCueText(text: string): string {
  return text.replace(/-->/g, '->').replace(/\n\s*\n/g, '\n');
}

function escapeVtt(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function renderSrt(t: Transcript, mode: CueMode): string {
  return transcriptCues(t, mode)
    .map(
      (c, i) =>
        `${i + 1}\n${formatTimestamp(c.start, ',')} --> ${formatTimestamp(c.end, ',')}\n${safeCueText(c.text)}\n`,
    )
    .join('\n');
}

function renderVtt(t: Transcript, mode: CueMode): string {
  const cues = transcriptCues(t, mode).map(
    (c) => `${formatTimestamp(c.start, '.')} --> ${formatTimestamp(c.end, '.')}\n${escapeVtt(safeCueText(c.text))}\n`,
  );
  // WebVTT has a place for a remark players ignore: say that the times inside a chunk are estimated.
  const note =
    t.timing === 'chunk' || t.timing === 'mixed'
      ? ['NOTE The model gave no segment times: cue times within each chunk are estimated from its length.\n']
      : [];
  return ['WEBVTT\n', ...note, ...cues].join('\n');
}

function wrap(text: string, width: number): string {
  const lines: string[] = [];
  for (const group of pack(text.split(' '), width)) lines.push(group.join(' '));
  return lines.join('\n');
}

/** Paragraphs break at long pauses, at gap markers and chunk failures, and when one grows too long. */
function paragraphs(t: Transcript): string[] {
  const out: string[] = [];
  let cur: string[] = [];
  let curLen = 0;
  let prevEnd: number | null = null;
  for (const seg of t.segments) {
    const text = seg.text.trim();
    if (text === '') continue;
    const pause = prevEnd !== null && seg.start - prevEnd >= PARAGRAPH_PAUSE_S;
    const full = curLen >= PARAGRAPH_MAX_CHARS && /[.!?…。！？]["'”’)]*$/u.test(cur.at(-1) ?? '');
    const gap = isGapMarker(text) || isGapMarker(cur.at(-1) ?? '');
    if (cur.length > 0 && (pause || full || gap)) {
      out.push(joinText(cur));
      cur = [];
      curLen = 0;
    }
    cur.push(text);
    curLen += text.length + 1;
    prevEnd = seg.end;
  }
  if (cur.length > 0) out.push(joinText(cur));
  return out;
}

function renderTxt(t: Transcript): string {
  const paras = t.segments.length > 0 ? paragraphs(t) : [t.text];
  const body = paras
    .filter((p) => p.trim() !== '')
    .map((p) => wrap(p, TXT_WIDTH))
    .join('\n\n');
  return body === '' ? '' : `${body}\n`;
}

export function renderTranscript(
  t: Transcript,
  format: TranscriptFormat,
  options: RenderOptions = {},
): RenderedTranscript {
  const cues = options.cues ?? 'segments';
  switch (format) {
    case 'json':
      return { body: JSON.stringify(t), contentType: 'application/json; charset=utf-8' };
    case 'txt':
      return { body: renderTxt(t), contentType: 'text/plain; charset=utf-8' };
    case 'srt':
      return { body: renderSrt(t, cues), contentType: 'application/x-subrip; charset=utf-8' };
    case 'vtt':
      return { body: renderVtt(t, cues), contentType: 'text/vtt; charset=utf-8' };
  }
}
