import subtitle from 'subtitle';
import { describe, expect, it } from 'vitest';
import {
  CUE_LIMITS,
  formatTimestamp,
  isTranscriptFormat,
  renderTranscript,
  segmentCues,
} from '../../src/transcribe/formats.ts';
import { gapMarker } from '../../src/transcribe/stitcher.ts';
import type { Transcript } from '../../src/transcribe/types.ts';

interface ParsedCue {
  start: number;
  end: number;
  text: string;
}

/** A deliberately strict reader: any block that is not exactly a well-formed cue fails the test. */
function strictParse(body: string, format: 'srt' | 'vtt'): ParsedCue[] {
  const sep = format === 'srt' ? ',' : '\\.';
  const ts = `(\\d{2,}):([0-5]\\d):([0-5]\\d)${sep}(\\d{3})`;
  const timing = new RegExp(`^${ts} --> ${ts}$`);
  let rest = body;
  if (format === 'vtt') {
    expect(rest.startsWith('WEBVTT\n\n') || rest === 'WEBVTT\n').toBe(true);
    rest = rest.slice('WEBVTT\n'.length).replace(/^\n/, '');
  }
  if (rest === '') return [];
  expect(rest.endsWith('\n')).toBe(true);
  expect(rest).not.toMatch(/\n\n\n/);
  return rest
    .slice(0, -1)
    .split('\n\n')
    .map((block, i) => {
      const lines = block.split('\n');
      if (format === 'srt') expect(lines.shift()).toBe(String(i + 1));
      const m = timing.exec(lines.shift() ?? '');
      expect(m, `cue ${i + 1} timing line`).not.toBeNull();
      const n = (m ?? []).slice(1).map(Number) as number[];
      const secs = (o: number) => (n[o] ?? 0) * 3600 + (n[o + 1] ?? 0) * 60 + (n[o + 2] ?? 0) + (n[o + 3] ?? 0) / 1000;
      expect(lines.length).toBeGreaterThanOrEqual(1);
      expect(lines.length).toBeLessThanOrEqual(2);
      return { start: secs(0), end: secs(4), text: lines.join('\n') };
    });
}

const transcript: Transcript = {
  job_id: 'job_1',
  text: 'Hello there. This is a test of the subtitle writer.',
  language: 'en',
  duration_s: 4000,
  segments: [
    { start: 0, end: 1.5, text: 'Hello there.', chunk: 0 },
    { start: 3723.25, end: 3725.5, text: 'This is a test of the subtitle writer.', chunk: 1 },
  ],
};

const LONG =
  'and mister john dashwood had then leisure to consider how much there might be prudently in his power to do ' +
  'for them he was not an ill disposed young man unless to be rather cold hearted and rather selfish is to be ill disposed';

describe('formatTimestamp', () => {
  it('writes hours, minutes, seconds and milliseconds with the format separator', () => {
    expect(formatTimestamp(3723.25, ',')).toBe('01:02:03,250');
    expect(formatTimestamp(0.0004, '.')).toBe('00:00:00.000');
    expect(formatTimestamp(59.9996, '.')).toBe('00:01:00.000');
  });

  it('lets hours grow past 24 and 99 instead of wrapping', () => {
    expect(formatTimestamp(25 * 3600, ',')).toBe('25:00:00,000');
    expect(formatTimestamp(100 * 3600 + 1.5, '.')).toBe('100:00:01.500');
  });
});

describe('renderTranscript srt', () => {
  it('parses back with the exact cue times and texts', () => {
    const { body, contentType } = renderTranscript(transcript, 'srt');
    expect(contentType).toMatch(/^application\/x-subrip/);
    const cues = strictParse(body, 'srt');
    expect(cues).toEqual([
      { start: 0, end: 1.5, text: 'Hello there.' },
      { start: 3723.25, end: 3725.5, text: 'This is a test of the subtitle writer.' },
    ]);
    const lib = subtitle.parseSync(body).filter((n) => n.type === 'cue');
    expect(lib.map((n) => n.data)).toEqual([
      { start: 0, end: 1500, text: 'Hello there.' },
      { start: 3_723_250, end: 3_725_500, text: 'This is a test of the subtitle writer.' },
    ]);
  });

  it('splits a long segment into short cues timed by characters', () => {
    const t: Transcript = { ...transcript, segments: [{ start: 10, end: 30, text: LONG, chunk: 0 }] };
    const cues = strictParse(renderTranscript(t, 'srt').body, 'srt');
    expect(cues.length).toBeGreaterThan(2);
    expect(cues[0]?.start).toBe(10);
    expect(cues.at(-1)?.end).toBe(30);
    expect(cues.map((c) => c.text.replace('\n', ' ')).join(' ')).toBe(LONG);
    for (const [i, c] of cues.entries()) {
      expect(c.text.replace('\n', ' ').length).toBeLessThanOrEqual(CUE_LIMITS.cueChars);
      expect(c.end - c.start).toBeLessThanOrEqual(CUE_LIMITS.cueSeconds + 0.001);
      if (i > 0) expect(c.start).toBeGreaterThanOrEqual(cues[i - 1]?.end ?? 0);
    }
  });

  it('keeps "-->" and blank lines in the text from breaking a cue', () => {
    const t: Transcript = { ...transcript, segments: [{ start: 0, end: 2, text: 'a --> b', chunk: 0 }] };
    const cues = strictParse(renderTranscript(t, 'srt').body, 'srt');
    expect(cues).toEqual([{ start: 0, end: 2, text: 'a -> b' }]);
  });
});

describe('renderTranscript vtt', () => {
  it('starts with WEBVTT and parses back with dot-separated times', () => {
    const { body, contentType } = renderTranscript(transcript, 'vtt');
    expect(contentType).toMatch(/^text\/vtt/);
    expect(body).toContain('01:02:03.250 --> 01:02:05.500');
    expect(strictParse(body, 'vtt').map((c) => [c.start, c.end])).toEqual([
      [0, 1.5],
      [3723.25, 3725.5],
    ]);
    const lib = subtitle.parseSync(body);
    expect(lib[0]).toEqual({ type: 'header', data: 'WEBVTT' });
    expect(lib.filter((n) => n.type === 'cue')).toHaveLength(2);
  });

  it('escapes markup characters in cue text', () => {
    const t: Transcript = { ...transcript, segments: [{ start: 0, end: 2, text: 'R&D <b>now</b>', chunk: 0 }] };
    expect(strictParse(renderTranscript(t, 'vtt').body, 'vtt')[0]?.text).toBe('R&amp;D &lt;b&gt;now&lt;/b&gt;');
  });

  it('renders an empty transcript as the header alone', () => {
    expect(renderTranscript({ ...transcript, segments: [], text: '' }, 'vtt').body).toBe('WEBVTT\n');
    expect(renderTranscript({ ...transcript, segments: [], text: '' }, 'srt').body).toBe('');
  });
});

describe('segmentCues', () => {
  it('wraps a cue longer than one line into two balanced lines', () => {
    const cues = segmentCues({ start: 0, end: 6, text: 'this line is long enough that it needs two lines here' });
    expect(cues).toHaveLength(1);
    const lines = cues[0]?.text.split('\n') ?? [];
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(CUE_LIMITS.lineChars);
  });

  it('splits by time when a short text is spoken slowly', () => {
    const cues = segmentCues({ start: 0, end: 20, text: 'one two three four five six' });
    expect(cues.length).toBeGreaterThanOrEqual(3);
    for (const c of cues) expect(c.end - c.start).toBeLessThanOrEqual(CUE_LIMITS.cueSeconds + 0.001);
  });
});

describe('renderTranscript txt and json', () => {
  it('returns the transcript unchanged as json', () => {
    const { body, contentType } = renderTranscript(transcript, 'json');
    expect(contentType).toMatch(/^application\/json/);
    expect(JSON.parse(body)).toEqual(transcript);
  });

  it('wraps text at 80 columns and starts a paragraph after a long pause or a gap marker', () => {
    const t: Transcript = {
      ...transcript,
      segments: [
        { start: 0, end: 20, text: LONG, chunk: 0 },
        { start: 20.5, end: 22, text: 'Same paragraph.', chunk: 0 },
        { start: 30, end: 32, text: 'After a pause.', chunk: 1 },
        { start: 32, end: 40, text: gapMarker(2), chunk: 2 },
        { start: 40, end: 42, text: 'After the gap.', chunk: 3 },
      ],
    };
    const { body, contentType } = renderTranscript(t, 'txt');
    expect(contentType).toMatch(/^text\/plain/);
    const paras = body.trimEnd().split('\n\n');
    expect(paras.map((p) => p.replace(/\n/g, ' '))).toEqual([
      `${LONG} Same paragraph.`,
      'After a pause.',
      '[inaudible: chunk 2 failed]',
      'After the gap.',
    ]);
    for (const line of body.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    expect(body.endsWith('.\n')).toBe(true);
  });
});

describe('isTranscriptFormat', () => {
  it('accepts the four formats and nothing else', () => {
    expect(['json', 'txt', 'srt', 'vtt'].every(isTranscriptFormat)).toBe(true);
    expect(isTranscriptFormat('pdf')).toBe(false);
  });
});

describe('word cues (cues=words)', () => {
  const t: Transcript = {
    job_id: 'job_w',
    text: 'Hello there. General Kenobi.',
    language: 'en',
    duration_s: 4,
    segments: [
      { start: 0, end: 1.5, text: 'Hello there.', chunk: 0 },
      { start: 2, end: 4, text: 'General Kenobi.', chunk: 1 },
    ],
    words: [
      { start: 0, end: 0.6, word: 'Hello', chunk: 0 },
      { start: 0.7, end: 1.5, word: ' there.', chunk: 0 },
      // A word that overruns the next one is cut at its start, as segment cues are.
      { start: 2, end: 3.2, word: 'General', chunk: 1 },
      { start: 3, end: 4, word: 'Kenobi.', chunk: 1 },
    ],
    timing: 'segment',
  };

  it.each(['srt', 'vtt'] as const)('%s: one cue per word at its own time', (format) => {
    const cues = strictParse(renderTranscript(t, format, { cues: 'words' }).body, format);
    expect(cues).toEqual([
      { start: 0, end: 0.6, text: 'Hello' },
      { start: 0.7, end: 1.5, text: 'there.' },
      { start: 2, end: 3, text: 'General' },
      { start: 3, end: 4, text: 'Kenobi.' },
    ]);
  });

  it('falls back to segment cues for a transcript without word times, and segment cues stay the default', () => {
    const withoutWords: Transcript = { ...t, words: undefined };
    const segmentCuesBody = renderTranscript(t, 'vtt').body;
    expect(renderTranscript(withoutWords, 'vtt', { cues: 'words' }).body).toBe(segmentCuesBody);
    expect(strictParse(segmentCuesBody, 'vtt').map((c) => c.text)).toEqual(['Hello there.', 'General Kenobi.']);
  });
});
