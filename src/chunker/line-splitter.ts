/** A line longer than this is cut to it by default: no tool's line worth reading is near it. */
export const MAX_LINE_CHARS = 64 * 1024;

export interface LineSplitter {
  push(chunk: string): void;
  /** Hands on the unfinished last line, if any. */
  end(): void;
}

/**
 * Splits a child's output into lines, keeping the unfinished last line for the next call. A line past
 * `maxLineChars` is handed on cut to that length and the rest of it dropped: a tool printing without a newline
 * would otherwise grow the kept line without bound (and re-split it on every chunk, quadratic in its length).
 */
export function lineSplitter(onLine: (line: string) => void, maxLineChars = MAX_LINE_CHARS): LineSplitter {
  let rest = '';
  // The line being gathered passed the cap: what follows of it, up to its newline, is dropped.
  let cut = false;
  return {
    push(chunk) {
      const parts = chunk.split(/\r\n|\r|\n/);
      const last = parts.pop() ?? '';
      for (const part of parts) {
        onLine(cut ? rest : (rest + part).slice(0, maxLineChars));
        rest = '';
        cut = false;
      }
      if (cut) return;
      rest += last;
      if (rest.length > maxLineChars) {
        rest = rest.slice(0, maxLineChars);
        cut = true;
      }
    },
    end() {
      if (rest !== '') onLine(rest);
      rest = '';
      cut = false;
    },
  };
}
