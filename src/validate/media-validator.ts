import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { isAllowedDemuxer } from '../chunker/containers.ts';
import type { DecodeChecker } from '../chunker/decode-check.ts';
import type { Prober } from '../chunker/ffprobe.ts';
import type { Mp3StreamMeasure } from '../chunker/mp3-duration.ts';
import type { Planned, PlannedSubject } from '../chunker/chunk-source.ts';
import type { MediaProbe } from '../chunker/types.ts';
import { AppError } from '../errors.ts';
import type { AudioInfo } from '../jobs/types.ts';
import { decodeAhead, measureAndDecode, type DecodeAhead } from './media-measure.ts';

export { judgeDuration } from './media-measure.ts';

export type MediaProber = Pick<Prober, 'probe'>;
export type MediaDecodeChecker = Pick<DecodeChecker, 'check' | 'measureDecodedDuration'>;

export interface MediaValidatorOptions {
  logger: Logger;
  prober: MediaProber;
  decodeChecker: MediaDecodeChecker;
  /** Checked again here in case the prober's allow-list slips. @default chunker/containers.ts isAllowedDemuxer */
  isAllowedDemuxer?: (formatName: string) => boolean;
  /**
   * What the chunk source of the job's model will plan (chunk-source.ts planned): its chunk count (the job's
   * progress total, the dry run's chunks_planned and the estimate's overlap until it does) and the seconds each
   * chunk after a hard cut repeats (for the estimate).
   */
  planned: (subject: PlannedSubject) => Planned;
  maxDurationS: number;
  /** More streams than this is not a recording. @default 16 */
  maxStreams?: number;
  /**
   * When to measure the duration by decoding the whole file (up to maxDurationS + 1 s) instead of trusting
   * the header: 'always', or 'suspicious' (header duration missing, or the stream's header bitrate x duration
   * off from the file size by more than a factor of 1.5). Measured on 2 cores: an hour of mp3 decodes in
   * about 3.1 s, of AAC in 2.2 s, of 16 kHz WAV in 0.3 s, so 'always' costs up to ~20 s for a 6 h mp3.
   * 'always' keeps a header from understating the duration past the limit and the budget.
   * @default 'always'
   */
  measure?: 'always' | 'suspicious';
  /**
   * How the duration is measured: 'demux' reads packet timestamps without decoding (a 20 min mp3 in ~0.2 s
   * instead of ~2.5 s); 'decode' runs the decoder over every frame. A lying header is caught either way (the
   * packets end where the audio ends); damaged frames in the middle are not, but the start/end test-decode
   * still runs, and the slicer fails with the position if the middle does not decode.
   * @default 'demux'
   */
  measureBy?: 'demux' | 'decode';
}

export interface MediaValidationInput {
  file: string;
  filename: string;
  signal?: AbortSignal;
  /** The frame walk of the upload as it streamed in: an mp3's measure, and its end window's frame, known at once. */
  walked?: Pick<Mp3StreamMeasure, 'result'>;
  /**
   * The caller's own work, run on the event loop once the probe's and the decode test's child processes are
   * started: the loop would only wait for them (see http/app.ts).
   */
  whileChecking?: () => void;
  /** The job's model, whose chunk source plans its chunks. */
  model: string;
  /** The job's chunks go one at a time (context=sequential): they are not evened out over the pool's lanes. */
  sequential?: boolean;
}

export interface MediaValidationResult {
  audio: AudioInfo;
  probe: MediaProbe;
  /** Bits per second: the container's, else the audio stream's, else null. */
  bitrate: number | null;
  planned: Planned;
  /** What the duration is judged on: the measured seconds, or the decode check's figure when not measured. */
  decodedS: number;
  durationSource: 'header' | 'measured';
  ms: number;
}

export interface MediaValidator {
  /** Throws 415 UNSUPPORTED_MEDIA, 422 MEDIA_CORRUPT or 422 DURATION_OUT_OF_RANGE. */
  validate(input: MediaValidationInput): Promise<MediaValidationResult>;
}

/** Header claims this much more or less than the bytes can hold: not to be trusted. */
const BITRATE_MISMATCH = 1.5;
/** Pure: whether the header's duration cannot be taken at face value. */
export function headerIsSuspicious(probe: MediaProbe, sizeBytes: number): boolean {
  const d = probe.durationS;
  if (!Number.isFinite(d) || d <= 0) return true;
  // The stream's bitrate comes from the codec header; ffprobe's format bitrate is derived from size / duration.
  const bitRate = probe.audio?.bitRate ?? null;
  if (bitRate === null || bitRate <= 0 || probe.videoStreamCount > 0) return false;
  const ratio = ((bitRate / 8) * d) / sizeBytes;
  return ratio > BITRATE_MISMATCH || ratio < 1 / BITRATE_MISMATCH;
}

function unsupported(message: string, details: Record<string, unknown> = {}): AppError {
  return new AppError('UNSUPPORTED_MEDIA', message, { details });
}

export function createMediaValidator(options: MediaValidatorOptions): MediaValidator {
  const { logger, prober, decodeChecker, maxDurationS, planned } = options;
  const maxStreams = options.maxStreams ?? 16;
  const measureMode = options.measure ?? 'always';
  const measureBy = options.measureBy ?? 'demux';
  const allowed = options.isAllowedDemuxer ?? isAllowedDemuxer;
  if (!(maxDurationS > 0)) throw new TypeError(`maxDurationS must be > 0, got ${String(maxDurationS)}`);

  return {
    async validate({ file, filename, signal, walked, whileChecking, model, sequential = false }) {
      const started = performance.now();
      const sizeBytes = (await stat(file)).size;
      if (sizeBytes === 0) throw unsupported('The file is empty; upload an audio recording.', { reason: 'empty_file' });
      // The walk is what measuring an mp3 'always', by 'demux', comes to.
      const ahead =
        measureMode === 'always' && measureBy === 'demux'
          ? decodeAhead({ decodeChecker, maxDurationS }, { file, sizeBytes, walked, ...(signal ? { signal } : {}) })
          : null;
      try {
        return await checkMedia({
          file,
          filename,
          sizeBytes,
          started,
          ahead,
          model,
          sequential,
          ...(signal ? { signal } : {}),
          ...(whileChecking ? { whileChecking } : {}),
        });
      } finally {
        // Not left running (nor unhandled) when the file was refused before its turn, or was not an mp3 after all.
        await ahead?.stop();
      }
    },
  };

  async function checkMedia(input: {
    file: string;
    filename: string;
    sizeBytes: number;
    started: number;
    ahead: DecodeAhead | null;
    model: string;
    sequential: boolean;
    signal?: AbortSignal;
    whileChecking?: () => void;
  }): Promise<MediaValidationResult> {
    const { file, filename, sizeBytes, started, ahead, model, sequential, signal } = input;
    const probe = await probeWhile(prober, file, signal, input.whileChecking);
    if (!allowed(probe.formatName) || !allowed(probe.demuxer)) {
      throw unsupported(
        `The container "${probe.formatName}" is not accepted; upload common audio such as mp3, m4a, wav, ogg or flac.`,
        {
          reason: 'container_not_allowed',
          format: probe.formatName,
        },
      );
    }
    if (probe.audio === null || probe.audioStreamCount === 0) {
      throw unsupported('The file has no audio stream; upload a file with sound in it.', {
        reason: 'no_audio_stream',
        format: probe.demuxer,
      });
    }
    if (probe.streamCount > maxStreams) {
      throw unsupported(
        `The file has ${probe.streamCount} streams; at most ${maxStreams} are accepted. Export the audio alone.`,
        {
          reason: 'too_many_streams',
          streams: probe.streamCount,
        },
      );
    }

    const suspicious = headerIsSuspicious(probe, sizeBytes);
    const measuring = measureMode === 'always' || suspicious;
    const { measured, durationS, decoded } = await measureAndDecode(
      { decodeChecker, maxDurationS, measureBy },
      { file, probe, measuring, ahead, ...(signal ? { signal } : {}) },
    );
    if (measured) logger.debug({ headerS: probe.durationS, measured, suspicious }, 'measured duration');
    if (!decoded.ok) {
      logger.info({ reason: decoded.reason, demuxer: probe.demuxer }, 'decode check failed');
      throw new AppError(
        'MEDIA_CORRUPT',
        'The audio cannot be decoded at its start or its end; the file is damaged. Re-encode it or upload another copy.',
        { details: { reason: 'decode_check_failed' } },
      );
    }

    const audio: AudioInfo = {
      filename,
      size_bytes: sizeBytes,
      duration_s: Math.round(durationS * 1000) / 1000,
      format: probe.demuxer,
      codec: probe.audio.codec,
      sample_rate: probe.audio.sampleRate,
      channels: probe.audio.channels,
      demuxer: probe.demuxer,
    };
    return {
      audio,
      probe,
      bitrate: probe.bitRate ?? probe.audio.bitRate,
      planned: planned({ model, audio, sequential }),
      decodedS: measured?.decodedS ?? decoded.decodedS,
      durationSource: measured === null ? 'header' : 'measured',
      ms: performance.now() - started,
    };
  }
}

/** The probe, with the caller's work run on the event loop once it (and the decode test) started. */
async function probeWhile(
  prober: MediaProber,
  file: string,
  signal: AbortSignal | undefined,
  work: (() => void) | undefined,
): Promise<MediaProbe> {
  if (!work) return await prober.probe(file, signal ? { signal } : {});
  const stop = new AbortController();
  const probing = prober.probe(file, { signal: signal ? AbortSignal.any([signal, stop.signal]) : stop.signal });
  // Handled now so that a throw from the caller's work cannot leave it unhandled; awaited below.
  probing.catch(() => undefined);
  try {
    // After the microtasks queued so far: the decode test's end window is started behind one (its frame's byte
    // offset is awaited), and the work would otherwise hold it back.
    await new Promise((resolve) => setImmediate(resolve));
    work();
  } catch (err) {
    // Not left reading a file the caller is about to remove.
    stop.abort(err);
    await probing.catch(() => undefined);
    throw err;
  }
  return await probing;
}
