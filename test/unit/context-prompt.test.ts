import { describe, expect, it } from 'vitest';
import {
  chainedPrompt,
  CONTEXT_TAIL_CHARS,
  contextTail,
  MAX_PROMPT_CHARS,
} from '../../src/transcribe/context-prompt.ts';

describe('context chaining prompt', () => {
  it('keeps a short previous text whole, with whitespace folded', () => {
    expect(contextTail('  he was not\nan ill disposed   young man ')).toBe('he was not an ill disposed young man');
    expect(contextTail(null)).toBeNull();
    expect(contextTail('   ')).toBeNull();
  });

  it('cuts a long previous text to its last words, starting on a word boundary', () => {
    const text = Array.from({ length: 100 }, (_, i) => `word${i}`).join(' ');
    const tail = contextTail(text)!;
    expect(tail.length).toBeLessThanOrEqual(CONTEXT_TAIL_CHARS);
    expect(tail.length).toBeGreaterThan(CONTEXT_TAIL_CHARS - 10);
    expect(text.endsWith(tail)).toBe(true);
    expect(tail.startsWith('word')).toBe(true);
  });

  it('puts the tail after the user prompt, and uses either alone when the other is missing', () => {
    expect(chainedPrompt('Names: Dashwood.', 'had then leisure to consider')).toBe(
      'Names: Dashwood. had then leisure to consider',
    );
    expect(chainedPrompt(null, 'had then leisure')).toBe('had then leisure');
    expect(chainedPrompt('Names: Dashwood.', null)).toBe('Names: Dashwood.');
    expect(chainedPrompt(null, null)).toBeNull();
  });

  it('stays under the cap by dropping the start of the user prompt, never the tail', () => {
    const user = `START ${'x'.repeat(2000)} END`;
    const previous = 'the previous chunk ended with these words';
    const p = chainedPrompt(user, previous)!;
    expect(p.length).toBeLessThanOrEqual(MAX_PROMPT_CHARS);
    expect(p.endsWith(` END ${previous}`)).toBe(true);
    expect(p).not.toContain('START');
  });
});
