import { open } from 'node:fs/promises';

/**
 * Demuxers whose input seeking lands on the right sample: the times a windowed silence scan reports are
 * then the file's own. PCM containers by arithmetic, flac/ogg/mov/matroska by their sample-numbered
 * packets or index; a constant-bitrate mp3 (checked below) by its bitrate, to within one 26 ms frame, well
 * inside any pause worth cutting in. Raw aac and VBR mp3 seek by an estimate (mp3 by its 100-entry TOC),
 * off by seconds on a long file: those are scanned whole.
 */
const EXACT: ReadonlySet<string> = new Set(['wav', 'w64', 'aiff', 'au', 'caf', 'flac', 'ogg', 'mov', 'matroska']);

/** Bytes read from the start of an mp3 to find its Info/Xing frame (after any ID3v2 tag). */
const HEAD_BYTES = 4096;

/**
 * The size of a leading ID3v2 tag (header included), or 0. A header ffmpeg does not take for one (ff_id3v2_match:
 * a version byte of 0xff, a size byte with its high bit set) is none: skipping it here would hide from the walk
 * audio that ffmpeg's demuxer finds and plays.
 */
export function id3v2Size(head: Buffer): number {
  if (head.length < 10 || head.toString('latin1', 0, 3) !== 'ID3') return 0;
  if (head[3] === 0xff || head[4] === 0xff || head.subarray(6, 10).some((b) => b >= 0x80)) return 0;
  // Four 7-bit "syncsafe" bytes, plus the 10-byte header and a 10-byte footer when flagged.
  const size = ((head[6] ?? 0) << 21) | ((head[7] ?? 0) << 14) | ((head[8] ?? 0) << 7) | (head[9] ?? 0);
  const footer = ((head[5] ?? 0) & 0x10) !== 0 ? 10 : 0;
  return 10 + size + footer;
}

/**
 * Pure: whether an mp3 whose first frame (after its ID3v2 tag) is `frame` seeks exactly. An "Info" frame is
 * what LAME and ffmpeg write for constant bitrate, where ffmpeg seeks by bitrate; "Xing" (VBR) or no frame
 * at all leaves it to estimate.
 */
export function mp3IsConstantBitrate(frame: Buffer): boolean {
  const first = frame.subarray(0, 200).toString('latin1');
  return first.includes('Info') && !first.includes('Xing');
}

/** Whether a windowed silence scan of this upload reports the file's own times. */
export async function seeksExactly(file: string, demuxer: string): Promise<boolean> {
  if (EXACT.has(demuxer)) return true;
  if (demuxer !== 'mp3') return false;
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(10);
    await fh.read(head, 0, 10, 0);
    const frame = Buffer.alloc(HEAD_BYTES);
    const { bytesRead } = await fh.read(frame, 0, HEAD_BYTES, id3v2Size(head));
    // The frame sync must come first: junk between the tag and the audio means the file is not plain.
    return frame[0] === 0xff && ((frame[1] ?? 0) & 0xe0) === 0xe0 && mp3IsConstantBitrate(frame.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}
