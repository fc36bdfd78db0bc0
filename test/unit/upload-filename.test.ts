import { describe, expect, it } from 'vitest';
import { storedFilename, utf8Prefix } from '../../src/http/routes/upload-filename.ts';

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

describe('upload file names', () => {
  it('cuts on character boundaries only', () => {
    expect(utf8Prefix('aé', 2)).toBe('a');
    expect(utf8Prefix('a🎙b', 4)).toBe('a');
    expect(utf8Prefix('a🎙b', 5)).toBe('a🎙');
    expect(utf8Prefix('录音', 5)).toBe('录');
    expect(utf8Prefix('', 3)).toBe('');
    expect(utf8Prefix('abc', 0)).toBe('');
  });

  it('keeps a name that fits, and cuts every other one to at most 255 bytes of well-formed UTF-8', () => {
    expect(storedFilename('speech.mp3')).toBe('speech.mp3');
    const fits = 'x'.repeat(255);
    expect(storedFilename(fits)).toBe(fits);
    for (const unit of ['a', 'é', '录', '🎙']) {
      for (let n = 50; n < 400; n += 7) {
        for (const ext of ['', '.mp3', `.${'e'.repeat(20)}`]) {
          const cut = storedFilename(unit.repeat(n) + ext);
          expect(bytes(cut)).toBeLessThanOrEqual(255);
          expect(Buffer.from(cut, 'utf8').toString('utf8')).toBe(cut);
          expect((unit.repeat(n) + ext).startsWith(cut) || cut.endsWith('.mp3')).toBe(true);
        }
      }
    }
  });

  it('keeps a short extension over the end of the name, and a long one is cut like the rest', () => {
    expect(storedFilename(`${'a'.repeat(300)}.m4a`)).toBe(`${'a'.repeat(251)}.m4a`);
    const longExt = `a.${'e'.repeat(300)}`;
    expect(storedFilename(longExt)).toBe(longExt.slice(0, 255));
    // A leading dot is a hidden file's name, not an extension.
    expect(storedFilename(`.${'h'.repeat(300)}`)).toBe(`.${'h'.repeat(254)}`);
  });
});
