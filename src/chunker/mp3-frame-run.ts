/**
 * Bytes a frame takes in a run: its offset (8), size, samples and sample rate (2 each; a layer III frame is at most
 * 1,441 bytes, 1,152 samples, 48 kHz).
 */
const FRAME_BYTES = 14;

/**
 * mp3 frames in file order as columns of typed arrays (a struct of arrays), not an object each. The slicer's
 * frame walk reads runs ahead of the cutter and holds them for seconds, long enough for V8 to promote what they
 * hold to the old generation, where every object costs a mark-sweep: a run of 4,096 frames is 5 objects and one
 * 56 KiB backing store here, instead of 4,096 objects of ~90 bytes of heap. Entries past `length` are unused.
 */
export class Mp3FrameRun {
  /** Frames held: the first `length` entries of each column. */
  length = 0;
  /** Where each frame starts in the file (a double: files past 2 GiB). */
  readonly offsets: Float64Array;
  readonly sizes: Uint16Array;
  /** Samples per channel: 1152 (MPEG-1) or 576 (MPEG-2, 2.5). */
  readonly samples: Uint16Array;
  readonly sampleRates: Uint16Array;

  /** Room for `capacity` frames, in one allocation. */
  constructor(capacity: number) {
    const store = new ArrayBuffer(capacity * FRAME_BYTES);
    this.offsets = new Float64Array(store, 0, capacity);
    this.sizes = new Uint16Array(store, capacity * 8, capacity);
    this.samples = new Uint16Array(store, capacity * 10, capacity);
    this.sampleRates = new Uint16Array(store, capacity * 12, capacity);
  }

  /** Frames the run has room for. */
  get capacity(): number {
    return this.offsets.length;
  }

  /** Appends a frame; throws when the run is full (a caller that fills runs starts a new one at capacity). */
  push(offset: number, size: number, samples: number, sampleRate: number): void {
    const i = this.length;
    if (i >= this.capacity) throw new RangeError(`an mp3 frame run holds ${this.capacity} frames at most`);
    this.offsets[i] = offset;
    this.sizes[i] = size;
    this.samples[i] = samples;
    this.sampleRates[i] = sampleRate;
    this.length = i + 1;
  }

  /** Seconds of audio in frame `i`. */
  seconds(i: number): number {
    return (this.samples[i] ?? 0) / (this.sampleRates[i] ?? 0);
  }

  /** The byte just past frame `i`. */
  end(i: number): number {
    return (this.offsets[i] ?? 0) + (this.sizes[i] ?? 0);
  }

  /** The frames of `runs` in order, as one run. */
  static concat(runs: readonly Mp3FrameRun[]): Mp3FrameRun {
    const all = new Mp3FrameRun(runs.reduce((sum, r) => sum + r.length, 0));
    for (const r of runs) {
      all.offsets.set(r.offsets.subarray(0, r.length), all.length);
      all.sizes.set(r.sizes.subarray(0, r.length), all.length);
      all.samples.set(r.samples.subarray(0, r.length), all.length);
      all.sampleRates.set(r.sampleRates.subarray(0, r.length), all.length);
      all.length += r.length;
    }
    return all;
  }
}
