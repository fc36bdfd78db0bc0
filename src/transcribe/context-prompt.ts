/**
 * Context chaining (`context=sequential`): the tail of the previous chunk's text goes at the end of the next
 * chunk's prompt, so names and spellings carry over the cut. Whisper reads only the last 224 tokens of a prompt,
 * so the tail goes last and the whole is kept under about that many characters' worth.
 */

/** About the last two sentences: enough for names and style, short enough to leave the user's prompt room. */
export const CONTEXT_TAIL_CHARS = 200;
/** 224 tokens at roughly 4 characters each. */
export const MAX_PROMPT_CHARS = 896;

/** The last `maxChars` of a text, starting on a word boundary; null when there is no text. */
export function contextTail(text: string | null, maxChars: number = CONTEXT_TAIL_CHARS): string | null {
  const t = (text ?? '').replace(/\s+/g, ' ').trim();
  if (t === '') return null;
  if (t.length <= maxChars) return t;
  const cut = t.slice(-maxChars);
  const space = cut.indexOf(' ');
  // A tail that is one long word is kept whole rather than dropped.
  return space >= 0 && space < cut.length - 1 ? cut.slice(space + 1) : cut;
}

/**
 * The prompt for the next chunk: the user's prompt, then the previous chunk's tail. Over the cap, the user's
 * prompt loses its beginning, which is also what the model itself would drop.
 */
export function chainedPrompt(
  userPrompt: string | null,
  previousText: string | null,
  maxChars: number = MAX_PROMPT_CHARS,
): string | null {
  const tail = contextTail(previousText, Math.min(CONTEXT_TAIL_CHARS, maxChars));
  const user = userPrompt?.trim() ? userPrompt.trim() : null;
  if (tail === null) return userPrompt;
  if (user === null) return tail;
  const room = maxChars - tail.length - 1;
  if (room <= 0) return tail;
  return `${user.length > room ? user.slice(-room).trimStart() : user} ${tail}`;
}
