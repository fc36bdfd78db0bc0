import { describe, expect, it } from 'vitest';
import { heardEdgeS, inPieces, piecesOf } from '../../src/chunker/scan-pieces.ts';

describe('piecesOf', () => {
  it('decodes a window without a heard stretch whole', () => {
    expect(piecesOf({ fromS: 10, toS: 40 }, 0.5)).toEqual([{ fromS: 10, toS: 40 }]);
  });

  it('decodes what lies outside the heard stretch, and its edges', () => {
    expect(piecesOf({ fromS: 10, toS: 40, heard: { fromS: 20, toS: 30 } }, 0.5)).toEqual([
      { fromS: 10, toS: 20.5 },
      { fromS: 29.5, toS: 40 },
    ]);
  });

  it('decodes one side where the heard stretch reaches an end of the window (the start of the file)', () => {
    expect(piecesOf({ fromS: 0, toS: 15, heard: { fromS: 0, toS: 5 } }, 0.5)).toEqual([{ fromS: 4.5, toS: 15 }]);
    expect(piecesOf({ fromS: 100, toS: 120, heard: { fromS: 110, toS: 130 } }, 0.5)).toEqual([
      { fromS: 100, toS: 110.5 },
    ]);
  });

  it('decodes nothing of a window heard whole, and all of one whose heard stretch is too short to skip', () => {
    expect(piecesOf({ fromS: 10, toS: 20, heard: { fromS: 5, toS: 25 } }, 0.5)).toEqual([]);
    expect(piecesOf({ fromS: 10, toS: 40, heard: { fromS: 20, toS: 21 } }, 0.5)).toEqual([{ fromS: 10, toS: 40 }]);
    expect(piecesOf({ fromS: 10, toS: 40, heard: { fromS: 50, toS: 60 } }, 0.5)).toEqual([{ fromS: 10, toS: 40 }]);
  });

  it('goes past the shortest reported silence into the heard stretch', () => {
    expect(heardEdgeS(0.3)).toBeGreaterThan(0.3);
  });
});

describe('inPieces', () => {
  it("folds each piece's silences back into its window's list, in order", () => {
    const windows = [
      { fromS: 10, toS: 40, heard: { fromS: 20, toS: 30 } },
      { fromS: 50, toS: 60 },
      { fromS: 70, toS: 80, heard: { fromS: 60, toS: 90 } },
    ];
    const { pieces, gather } = inPieces(windows, 0.5);
    expect(pieces).toEqual([
      { fromS: 10, toS: 20.5 },
      { fromS: 29.5, toS: 40 },
      { fromS: 50, toS: 60 },
    ]);
    const a = { start: 12, end: 13 };
    const b = { start: 35, end: 36 };
    const c = { start: 55, end: 56 };
    expect(gather([[a], [b], [c]])).toEqual([[a, b], [c], []]);
  });
});
