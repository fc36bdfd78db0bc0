import type { ChunkResult } from './types.ts';

/** Phrases Whisper-style models are known to produce on silence or music, whole-chunk. */
const SILENCE_PHRASES = [
  /^thank(s| you)( (so|very) much)?( for watching| for listening)?[.!]?$/i,
  /^(please )?(like and )?subscribe[.!]?$/i,
  /^subtitles by the amara\.org community$/i,
  /^(transcribed|subtitled|captions?) by .{0,40}$/i,
  /^you$/i,
];

/** Faster than anyone speaks: about 3 words per second is brisk; 7 is not speech. */
const MAX_WORDS_PER_SECOND = 7;
const MIN_REPEATS = 4;

function words(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}'\s]/gu, ' ')
    .split(/\s+/)
    .filter(Boolean);
}

/** The longest run of one n-gram (n = 1..4) repeated back to back, as [repeats, n]. */
function longestRepeat(ws: string[]): [number, number] {
  let best: [number, number] = [1, 1];
  for (let n = 1; n <= 4; n++) {
    for (let start = 0; start + 2 * n <= ws.length; start++) {
      let repeats = 1;
      while (
        start + (repeats + 1) * n <= ws.length &&
        ws.slice(start + repeats * n, start + (repeats + 1) * n).join(' ') === ws.slice(start, start + n).join(' ')
      ) {
        repeats += 1;
      }
      if (repeats * n > best[0] * best[1]) best = [repeats, n];
    }
  }
  return best;
}

/**
 * Why a chunk's text looks like a model hallucination rather than speech, or null when it looks fine. Cheap and
 * conservative: a false alarm only costs one more request for that chunk.
 */
export function degenerateReason(result: ChunkResult, durationS: number): string | null {
  const text = result.text.trim();
  if (text === '') return null;
  const ws = words(text);
  if (durationS >= 3 && ws.length / durationS > MAX_WORDS_PER_SECOND) return 'too_many_words';
  const [repeats, n] = longestRepeat(ws);
  if (repeats >= MIN_REPEATS && repeats * n >= Math.max(8, ws.length / 2)) return 'repeated_ngram';
  if (SILENCE_PHRASES.some((re) => re.test(text))) return 'silence_phrase';
  return null;
}
