/** A transcript as lower-case words, punctuation dropped: what word error rates are counted on. */
export function words(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^a-z' ]/g, ' ')
    .split(/\s+/)
    .filter(Boolean);
}

/** Word-level edit distance (substitutions, insertions and deletions). */
export function wordDistance(a: readonly string[], b: readonly string[]): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(
        (row[j] ?? 0) + 1,
        (next[j - 1] ?? 0) + 1,
        (row[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    row = next;
  }
  return row[b.length] ?? 0;
}

/** Word error rate of `hyp` against the reference `ref`. */
export function wordErrorRate(ref: readonly string[], hyp: readonly string[]): number {
  return ref.length === 0 ? 0 : wordDistance(ref, hyp) / ref.length;
}
