import { AppError } from '../errors.ts';
import { DiskFullError, saysNoSpace } from '../resources/disk-full.ts';
import type { ChunkEncoding } from './chunk-format.ts';
import type { ChunkMode } from './chunk-recipe.ts';

export type StopReason = 'cancelled' | 'consumer' | 'timeout' | 'internal';

export interface SliceOutcome {
  stopReason: StopReason | null;
  internalError: AppError | null;
  ffmpegError: Error | null;
  announced: number;
  /** End of the last announced chunk, in source seconds. */
  lastEndS: number;
  expectedDurationS: number | undefined;
  maxDurationS: number;
  timeoutS: number;
  abortReason: unknown;
}

/** Pure: the error a finished slicing run ends with, or null when it produced the whole file. */
export function sliceError(o: SliceOutcome): AppError | null {
  const positionS = o.lastEndS;
  if (o.stopReason === 'cancelled' || o.stopReason === 'consumer') {
    return new AppError('CANCELLED', 'Slicing was cancelled.', { cause: o.abortReason });
  }
  if (o.stopReason === 'timeout') {
    return new AppError('MEDIA_CORRUPT', `Slicing took longer than ${o.timeoutS} s.`, {
      details: { reason: 'slice_timeout', positionS },
    });
  }
  if (o.internalError) return o.internalError;
  // A full volume is no fault of the file: the job waits for space and slices again.
  if (o.ffmpegError && saysNoSpace(o.ffmpegError.message)) return new DiskFullError('chunk files', o.ffmpegError);
  if (o.ffmpegError) {
    return new AppError('MEDIA_CORRUPT', `The audio could not be decoded past ${positionS.toFixed(1)} s.`, {
      details: { reason: 'decode_failed', positionS },
      cause: o.ffmpegError,
    });
  }
  if (o.announced === 0) {
    return new AppError('MEDIA_CORRUPT', 'No audio could be decoded from the file.', {
      details: { reason: 'no_audio_decoded', positionS: 0 },
    });
  }
  if (o.expectedDurationS !== undefined) {
    const expected = Math.min(o.expectedDurationS, o.maxDurationS);
    // ffmpeg ends a cut-off file with exit code 0: only the length tells.
    if (positionS < expected - Math.max(1, expected * 0.01)) {
      return new AppError(
        'MEDIA_CORRUPT',
        `The audio ends at ${positionS.toFixed(1)} s, before the expected ${expected.toFixed(1)} s: the file is truncated or damaged.`,
        {
          details: { reason: 'truncated', positionS },
        },
      );
    }
  }
  return null;
}

/** ffmpeg output options of the slicer (everything after the input, before the file pattern). */
export function sliceOutputArgs(
  opts: { cutPoints: readonly number[]; maxDurationS: number; mode?: ChunkMode },
  enc: ChunkEncoding,
): string[] {
  const segmentArgs =
    opts.cutPoints.length > 0
      ? ['-segment_times', opts.cutPoints.map((c) => c.toFixed(3)).join(',')]
      : // No cut: one segment longer than anything accepted.
        ['-segment_time', String(Math.ceil(opts.maxDurationS) + 1)];
  return [
    // Tags (and cover art) of the upload are of no use to a speech model and would be repeated in every chunk.
    '-map',
    '0:a:0',
    '-vn',
    '-sn',
    '-dn',
    '-map_metadata',
    '-1',
    '-t',
    String(opts.maxDurationS),
    ...(opts.mode === 'copy' ? ['-c:a', 'copy'] : enc.codecArgs),
    '-f',
    'segment',
    '-segment_format',
    enc.muxer,
    ...segmentArgs,
    '-reset_timestamps',
    '1',
    // The list goes to our stdout, one line the moment each file is closed.
    '-segment_list',
    'pipe:1',
    '-segment_list_type',
    'csv',
  ];
}
