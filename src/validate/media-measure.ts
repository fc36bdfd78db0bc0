import type { CheckResult, DecodeChecker, MeasureResult } from '../chunker/decode-check.ts';
import type { Mp3StreamMeasure } from '../chunker/mp3-duration.ts';
import type { MediaProbe } from '../chunker/types.ts';
import { AppError } from '../errors.ts';
import { settle, unsettle, type Settled } from './settle.ts';

type Checker = Pick<DecodeChecker, 'check' | 'measureDecodedDuration'>;

/*
 * The duration a file is judged on and the start/end decode test: measured from the file after it arrived, or,
 * for an mp3 whose frames were walked as it streamed in, from that walk, with the decode test started at once.
 */

/**
 * A decode test run at the header's duration stands for one at the measured duration when the two are this close:
 * its end window (the last 5 s before the claimed end, half of which must decode) then still covers the real end.
 */
const SAME_END_S = 0.5;

/** A measured duration this far below the header's (relative, plus seconds) means the file was cut short. */
const TRUNCATION_RATIO = 0.9;
const TRUNCATION_SLACK_S = 1;

function outOfRange(durationS: number, maxDurationS: number, atLeast = false): AppError {
  const seconds = Math.round(durationS * 1000) / 1000;
  return new AppError(
    'DURATION_OUT_OF_RANGE',
    durationS <= 0
      ? 'The file holds no audio (its duration is 0 s); upload a recording with sound in it.'
      : atLeast
        ? `The recording is longer than ${maxDurationS} s, the most this server accepts; split it into shorter files.`
        : `The recording is ${Math.round(durationS)} s long; this server accepts at most ${maxDurationS} s. Split it into shorter files.`,
    { details: { duration_s: seconds, max_duration_s: maxDurationS } },
  );
}

/**
 * Pure: the duration a job is judged on. With a measurement, what decodes (rejecting a file that holds much
 * less than its header promises, i.e. a truncated one); without, the header. Throws DURATION_OUT_OF_RANGE
 * outside (0, maxDurationS] and MEDIA_CORRUPT for damage.
 */
export function judgeDuration(headerS: number, measured: MeasureResult | null, maxDurationS: number): number {
  if (measured === null) {
    if (!(headerS > 0)) throw outOfRange(0, maxDurationS);
    if (headerS > maxDurationS) throw outOfRange(headerS, maxDurationS);
    return headerS;
  }
  const decodedS = measured.decodedS;
  if (measured.overLimit || decodedS > maxDurationS) throw outOfRange(decodedS, maxDurationS, true);
  if (!(decodedS > 0)) {
    // A header promising sound that does not decode is damage; a header promising nothing is an empty recording.
    if (headerS > 0) {
      throw new AppError('MEDIA_CORRUPT', 'No audio in the file can be decoded; re-encode it or upload another copy.', {
        details: { reason: 'decode_failed', decoded_s: 0, header_s: headerS },
      });
    }
    throw outOfRange(0, maxDurationS);
  }
  if (Number.isFinite(headerS) && decodedS < headerS * TRUNCATION_RATIO - TRUNCATION_SLACK_S) {
    throw new AppError(
      'MEDIA_CORRUPT',
      `The file holds ${decodedS.toFixed(1)} s of audio but its header says ${headerS.toFixed(1)} s; ` +
        'it looks truncated. Upload the complete file.',
      { details: { reason: 'truncated', decoded_s: decodedS, header_s: headerS } },
    );
  }
  return decodedS;
}

/** What decodeAhead started: the walk's measure, and the decode test at it (null when the measure refuses the file). */
export interface DecodeAhead {
  measured: MeasureResult;
  decoded: Promise<Settled<CheckResult>> | null;
  /** Stops the test if it still runs; settles when it has ended. */
  stop(): Promise<unknown>;
}

/**
 * The duration the file is judged on (measured, or the header's) and the start/end decode test. For an mp3 walked
 * as it arrived (`ahead`, when the probe agrees it is an mp3), the walk's measure and the test started beside the
 * probe, taken in the same order. Else the test needs the duration only for where the end is: run at the header's
 * duration beside the measure, it is kept when the measure lands near the header (the usual file) and run again at
 * the measured end otherwise. It has its own controller, so it is stopped when the measure refuses the file.
 */
export async function measureAndDecode(
  deps: { decodeChecker: Checker; maxDurationS: number; measureBy: 'demux' | 'decode' },
  input: { file: string; probe: MediaProbe; measuring: boolean; ahead: DecodeAhead | null; signal?: AbortSignal },
): Promise<{ measured: MeasureResult | null; durationS: number; decoded: CheckResult }> {
  const { decodeChecker, maxDurationS } = deps;
  const { file, probe, signal, ahead } = input;
  if (ahead !== null && probe.demuxer === 'mp3') {
    const durationS = judgeDuration(probe.durationS, ahead.measured, maxDurationS);
    // The test is started unless the measure refuses the file, which judgeDuration has just done.
    if (ahead.decoded === null) throw new TypeError('decodeAhead: no decode test for a measure that passed');
    return { measured: ahead.measured, durationS, decoded: unsettle(await ahead.decoded) };
  }
  const early = new AbortController();
  const stopEarly = () => early.abort(signal?.reason);
  signal?.addEventListener('abort', stopEarly, { once: true });
  const decodeAt = (durationS: number, s: AbortSignal | undefined) =>
    decodeChecker.check(file, { demuxer: probe.demuxer, durationS, maxDurationS, ...(s ? { signal: s } : {}) });
  const earlyCheck =
    input.measuring && Number.isFinite(probe.durationS) && probe.durationS > 0
      ? settle(decodeAt(probe.durationS, early.signal))
      : null;
  try {
    const measured = input.measuring
      ? await decodeChecker.measureDecodedDuration(file, {
          demuxer: probe.demuxer,
          maxDurationS,
          mode: deps.measureBy,
          ...(signal ? { signal } : {}),
        })
      : null;
    const durationS = judgeDuration(probe.durationS, measured, maxDurationS);
    const reuse = earlyCheck !== null && Math.abs(durationS - probe.durationS) <= SAME_END_S;
    const decoded = reuse ? unsettle(await earlyCheck) : await decodeAt(durationS, signal);
    return { measured, durationS, decoded };
  } finally {
    stopEarly();
    signal?.removeEventListener('abort', stopEarly);
    // Not left running (nor unhandled) when the measure refused the file or the end moved.
    await earlyCheck;
  }
}

/**
 * An mp3 walked as it streamed in, when its walk stands for the file's (the same bytes, a layout the walk is sure
 * of): its measure, as measureDecodedDuration gives it, and the start/end decode test at that duration, started
 * now. The test needs nothing from the probe, so it runs beside it and is taken in its turn; it has its own
 * controller, so it is stopped when anything before it refuses the file.
 */
export function decodeAhead(
  deps: { decodeChecker: Checker; maxDurationS: number },
  input: { file: string; sizeBytes: number; walked?: Pick<Mp3StreamMeasure, 'result'>; signal?: AbortSignal },
): DecodeAhead | null {
  const walked = input.walked?.result();
  if (!walked?.walk.ok || walked.bytes !== input.sizeBytes) return null;
  const measured = { decodedS: walked.walk.seconds, overLimit: walked.walk.overLimit, errorLines: 0 };
  const ahead = new AbortController();
  const stopAhead = () => ahead.abort(input.signal?.reason);
  input.signal?.addEventListener('abort', stopAhead, { once: true });
  // A file the measure refuses (too long, or no audio) is not decoded at all.
  const decoded =
    measured.overLimit || !(measured.decodedS > 0)
      ? null
      : settle(
          deps.decodeChecker.check(input.file, {
            demuxer: 'mp3',
            durationS: measured.decodedS,
            maxDurationS: deps.maxDurationS,
            mp3ByteAt: walked.byteAt,
            signal: ahead.signal,
          }),
        );
  return {
    measured,
    decoded,
    stop() {
      stopAhead();
      input.signal?.removeEventListener('abort', stopAhead);
      return decoded ?? Promise.resolve();
    },
  };
}
