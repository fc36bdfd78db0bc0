import { infoFrameSkip, isInfoFrame, mp3FrameAt } from './mp3-frames.ts';
import { id3v2Size } from './seek-exact.ts';

/*
 * The frame walk of mp3-duration.ts as a machine fed the file's bytes in order, in pieces of any size: from a file
 * read block by block, or from an upload as it streams in (so the walk is done when the last byte arrives). Where
 * the audio ends (before an APE or ID3v1 tag) is known only from the file's last bytes, so the walk goes on as far
 * as the frames do and `finish(end)` answers for the end found then, from the frame boundaries it passed: what
 * walking up to `end` and no further gives.
 */

/** What walking an mp3's frames up to its audio end found (see mp3-duration.ts). */
export type Mp3Walk =
  | {
      ok: true;
      /** Seconds of audio in the frames walked (stopped a little past the limit). */
      seconds: number;
      frames: number;
      /** The frames go on past the limit: the file is too long, whatever its header says. */
      overLimit: boolean;
    }
  | { ok: false; reason: string; atByte: number };

export interface Mp3Walked {
  walk: Mp3Walk;
  /**
   * The byte offset of the first audio frame that starts at or after `atS` on the demuxer's timeline and lies whole
   * before where the walk ended; null when there is none; undefined when the boundaries kept no longer reach back
   * far enough to say (walk the file instead).
   */
  byteAt(atS: number): number | null | undefined;
}

/** Frame boundaries kept: ~107 s of 44.1 kHz audio, at least 290 KB of any bitrate, far more than the tags at the end. */
const KEPT = 4096;

/** A walk up to a given end, and the boundary it ended at (the frames before it are whole and inside the audio). */
interface Ended {
  walk: Mp3Walk;
  until: number;
}

function refused(reason: string, atByte: number): Ended {
  return { walk: { ok: false, reason, atByte }, until: atByte };
}

/** The walk refused at a frame that `end` cuts: its header, or the rest of it. */
function refusedInside(at: number, end: number): Ended {
  return refused(at + 4 > end ? 'fewer than 4 bytes left after the last frame' : 'the last frame is cut off', at);
}

export class Mp3FrameWalker {
  readonly #limitS: number;
  /** Bytes pushed so far: the offset of the next one. */
  #received = 0;
  /** The first 10 bytes (an ID3v2 header's size), until they are all in. */
  #head: Buffer[] | null = [];
  #start = 0;
  /** Where the next frame header is. */
  #pos = 0;
  /** Bytes from #pos held over from the previous piece (a header split between pieces; the first frame whole). */
  #pending: Buffer | null = null;
  #sampleRate = 0;
  #skip = 0;
  #samples = 0;
  #frames = 0;
  #stopped: { reason: string; size?: number } | null = null;
  #overLimit = false;
  // The last KEPT boundaries passed (a ring): where each is, and the samples and frames before it.
  readonly #at = new Float64Array(KEPT);
  readonly #samplesAt = new Float64Array(KEPT);
  readonly #framesAt = new Float64Array(KEPT);
  #kept = 0;
  #next = 0;
  /** Whether boundaries were dropped from the ring (the earliest ones are then unknown). */
  #dropped = false;

  constructor(options: { limitS: number }) {
    this.#limitS = options.limitS;
  }

  /** Stopped: not a plain layer III stream from here, or past the limit. Further bytes change nothing but the count. */
  get done(): boolean {
    return this.#stopped !== null || this.#overLimit;
  }

  /** The next bytes of the file, in order. */
  push(piece: Buffer): void {
    const base = this.#received;
    this.#received += piece.length;
    if (this.#head !== null) {
      this.#head.push(piece);
      const head = Buffer.concat(this.#head);
      if (head.length < 10) return;
      this.#head = null;
      this.#start = this.#pos = id3v2Size(head);
      this.#scan(head, 0);
      return;
    }
    if (this.done || this.#pos >= this.#received) return;
    if (this.#pending === null) {
      this.#scan(piece, base);
      return;
    }
    const joined = Buffer.concat([this.#pending, piece]);
    this.#pending = null;
    this.#scan(joined, this.#pos);
  }

  /** Every header in `buf` (which starts at byte `bufStart` of the file) from #pos on. */
  #scan(buf: Buffer, bufStart: number): void {
    const bufEnd = bufStart + buf.length;
    while (!this.done && this.#pos + 4 <= bufEnd) {
      const at = this.#pos - bufStart;
      const frame = mp3FrameAt(buf, at);
      if (!frame) {
        this.#stopped = { reason: 'not a layer III frame header where the previous frame ends' };
        return;
      }
      if (this.#sampleRate === 0) {
        // The first frame is looked at whole: the Xing/Info/VBRI frame describes the file and holds no audio, as the
        // demuxer treats it; the encoder delay its LAME tag names is not counted either (ffmpeg's figure starts after).
        if (at + frame.size > buf.length) break;
        const whole = buf.subarray(at, at + frame.size);
        this.#sampleRate = frame.sampleRate;
        const info = infoFrameSkip(whole);
        if (info !== null) {
          this.#skip = info;
          this.#pos += frame.size;
          this.#keep();
          continue;
        }
        if (isInfoFrame(whole)) {
          this.#stopped = { reason: 'an info frame the demuxer may not read as one', size: frame.size };
          return;
        }
        this.#keep();
      } else if (frame.sampleRate !== this.#sampleRate) {
        this.#stopped = { reason: 'the sample rate changes', size: frame.size };
        return;
      }
      this.#frames += 1;
      this.#samples += frame.samples;
      this.#pos += frame.size;
      this.#keep();
      if (this.#seconds(this.#samples) > this.#limitS) this.#overLimit = true;
    }
    if (!this.done && this.#pos < bufEnd) this.#pending = Buffer.from(buf.subarray(this.#pos - bufStart));
  }

  #keep(): void {
    const i = this.#next;
    this.#at[i] = this.#pos;
    this.#samplesAt[i] = this.#samples;
    this.#framesAt[i] = this.#frames;
    this.#next = (i + 1) % KEPT;
    if (this.#kept < KEPT) this.#kept += 1;
    else this.#dropped = true;
  }

  #seconds(samples: number): number {
    return this.#sampleRate > 0 ? Math.max(0, samples - this.#skip) / this.#sampleRate : 0;
  }

  /** The kept boundaries, oldest first, as ring indices. */
  *#boundaries(): Generator<number> {
    for (let k = 0; k < this.#kept; k++) yield (this.#next - this.#kept + k + KEPT) % KEPT;
  }

  /**
   * What walking the frames from the file's start up to `end` (where its audio ends: before its tags) finds, or
   * null when the boundaries kept do not reach back to `end` (the walk ran on through bytes past it).
   */
  finish(end: number): Mp3Walked | null {
    if (this.#head !== null) {
      // Fewer than 10 bytes in all: no ID3v2 tag; the frames are looked for from the first byte.
      const head = Buffer.concat(this.#head);
      this.#head = null;
      this.#scan(head, 0);
    }
    const ended = this.#walkTo(end);
    return ended === null ? null : { walk: ended.walk, byteAt: (atS) => this.#byteAt(atS, ended.until) };
  }

  /** The walk up to `end`, and the boundary it ended at. */
  #walkTo(end: number): Ended | null {
    const start = Math.min(this.#received, this.#start);
    if (end <= start) return refused('no room for audio between the tags', start);
    const pos = this.#pos;
    if (pos <= end && (this.#overLimit || pos === end))
      return this.#ok(pos, this.#samples, this.#frames, this.#overLimit);
    if (pos < end) return this.#stoppedBefore(end);
    // The walk went on past `end`: the last boundary at or before it says what walking to `end` finds.
    const before = this.#keptBefore(end);
    if (before === null) {
      // Nothing dropped: `end` lies inside the first frame.
      return this.#dropped ? null : refusedInside(start, end);
    }
    const at = this.#at[before] ?? 0;
    return at === end
      ? this.#ok(at, this.#samplesAt[before] ?? 0, this.#framesAt[before] ?? 0, false)
      : refusedInside(at, end);
  }

  /** The walk stopped (or waits) at #pos, before `end`. */
  #stoppedBefore(end: number): Ended {
    const pos = this.#pos;
    const stopped = this.#stopped;
    // Not stopped: the walk waits for the rest of its first frame, which the audio ends inside.
    const cutOff = stopped === null || (stopped.size !== undefined && pos + stopped.size > end);
    return pos + 4 > end || cutOff ? refusedInside(pos, end) : refused(stopped.reason, pos);
  }

  #ok(until: number, samples: number, frames: number, overLimit: boolean): Ended {
    return { walk: { ok: true, seconds: this.#seconds(samples), frames, overLimit }, until };
  }

  /** The ring index of the last boundary kept at or before `end`. */
  #keptBefore(end: number): number | null {
    let before: number | null = null;
    for (const i of this.#boundaries()) {
      if ((this.#at[i] ?? 0) > end) break;
      before = i;
    }
    return before;
  }

  #byteAt(atS: number, until: number): number | null | undefined {
    let first = true;
    for (const i of this.#boundaries()) {
      const at = this.#at[i] ?? 0;
      if (at >= until) break;
      // The first one kept after others were dropped: an earlier one may have been the answer.
      if (this.#seconds(this.#samplesAt[i] ?? 0) >= atS) return first && this.#dropped ? undefined : at;
      first = false;
    }
    return null;
  }
}
