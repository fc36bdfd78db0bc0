/**
 * Word error rate: the word-level edit distance (substitutions, insertions, deletions) between a transcript and
 * its reference, over the reference's length. Case and punctuation do not count; an apostrophe inside a word
 * does ("don't" is not "dont"). Shared by the seam tests and the bench's seam cases.
 */

export function werWords(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9' ]+/g, ' ')
    .split(/\s+/)
    .map((w) => w.replace(/^'+|'+$/g, ''))
    .filter(Boolean);
}

/** Word-level edit distance, one row at a time. */
export function wordEdits(hypothesis: readonly string[], reference: readonly string[]): number {
  let row = Array.from({ length: reference.length + 1 }, (_, j) => j);
  for (let i = 1; i <= hypothesis.length; i++) {
    const next = [i];
    for (let j = 1; j <= reference.length; j++) {
      const same = hypothesis[i - 1] === reference[j - 1];
      next[j] = Math.min((row[j] as number) + 1, (next[j - 1] as number) + 1, (row[j - 1] as number) + (same ? 0 : 1));
    }
    row = next;
  }
  return row[reference.length] as number;
}

/** WER of `hypothesis` against `reference` (both plain text), as a fraction (0.25 = 25 %). */
export function wer(hypothesis: string, reference: string): number {
  const ref = werWords(reference);
  if (ref.length === 0) throw new Error('wer: the reference has no words');
  return wordEdits(werWords(hypothesis), ref) / ref.length;
}
