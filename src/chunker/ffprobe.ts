import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
import { FORMAT_WHITELIST, demuxerOf, isAllowedDemuxer } from './containers.ts';
import { killedFromOutside, runProcess, toolKilledError } from './run-process.ts';
import type { AudioStreamInfo, MediaProbe } from './types.ts';

export interface ProberDeps {
  logger: Logger;
  /** Wall-clock limit for one probe. */
  timeoutS: number;
  /** @default 'ffprobe' (from PATH) */
  ffprobePath?: string;
  /** ffprobe's JSON beyond this is refused (a file with thousands of streams). @default 1 MiB */
  maxOutputBytes?: number;
}

export interface Prober {
  probe(file: string, opts?: { signal?: AbortSignal }): Promise<MediaProbe>;
}

/** The part of ffprobe's `-of json -show_format -show_streams` output we read. */
export interface FfprobeJson {
  format?: {
    format_name?: string;
    format_long_name?: string;
    duration?: string;
    size?: string;
    bit_rate?: string;
  };
  streams?: Array<{
    index?: number;
    codec_type?: string;
    codec_name?: string;
    sample_rate?: string;
    channels?: number;
    bit_rate?: string;
    duration?: string;
  }>;
}

function num(value: string | number | undefined): number | null {
  if (value === undefined) return null;
  const n = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(n) ? n : null;
}

function unsupported(reason: string, message: string): AppError {
  return new AppError('UNSUPPORTED_MEDIA', message, { details: { reason } });
}

/**
 * Pure mapping from ffprobe's JSON to MediaProbe; throws UNSUPPORTED_MEDIA when the container is
 * missing or not allowed. Exported for tests with frozen probe outputs.
 */
export function toMediaProbe(json: FfprobeJson): MediaProbe {
  const format = json.format;
  const formatName = format?.format_name;
  if (format === undefined || formatName === undefined || formatName === '') {
    throw unsupported('not_recognised', 'The file is not a recognised audio or video format.');
  }
  if (!isAllowedDemuxer(formatName)) {
    throw unsupported(
      'container_not_allowed',
      `The container "${formatName}" is not accepted; upload an audio file (mp3, wav, flac, ogg, m4a, webm...).`,
    );
  }
  const streams = json.streams ?? [];
  const audioStreams = streams.filter((s) => s.codec_type === 'audio');
  const first = audioStreams[0];
  const audio: AudioStreamInfo | null =
    first === undefined
      ? null
      : {
          index: first.index ?? 0,
          codec: first.codec_name ?? 'unknown',
          sampleRate: num(first.sample_rate) ?? 0,
          channels: first.channels ?? 0,
          bitRate: num(first.bit_rate),
        };
  // Some raw streams carry no container duration; the longest stream duration is the next best claim.
  const streamDuration = Math.max(0, ...streams.map((s) => num(s.duration) ?? 0));
  return {
    formatName,
    demuxer: demuxerOf(formatName),
    formatLongName: format.format_long_name ?? '',
    durationS: num(format.duration) ?? streamDuration,
    sizeBytes: num(format.size) ?? 0,
    bitRate: num(format.bit_rate),
    streamCount: streams.length,
    audioStreamCount: audioStreams.length,
    videoStreamCount: streams.filter((s) => s.codec_type === 'video').length,
    audio,
  };
}

/** Maps ffprobe's last stderr line to a reason a client can act on. */
function failureReason(stderr: string): { reason: string; message: string } {
  if (/Format not on whitelist/i.test(stderr)) {
    return {
      reason: 'container_not_allowed',
      message: 'The file is a playlist, script or other container that is not accepted; upload an audio file.',
    };
  }
  return {
    reason: 'not_recognised',
    message: 'The file is not a recognised audio or video format, or its data is invalid.',
  };
}

export function createProber(deps: ProberDeps): Prober {
  const bin = deps.ffprobePath ?? 'ffprobe';
  const log = deps.logger;
  return {
    async probe(file, opts = {}) {
      // -protocol_whitelist/-format_whitelist: the probe must not follow a playlist or script to
      // another file or URL, whatever the upload claims to be.
      const args = [
        '-v',
        'error',
        '-protocol_whitelist',
        'file',
        '-format_whitelist',
        FORMAT_WHITELIST,
        '-of',
        'json',
        '-show_format',
        '-show_streams',
        '-i',
        file,
      ];
      log.debug({ cmd: bin, args }, 'ffprobe');
      const r = await runProcess(bin, args, {
        timeoutS: deps.timeoutS,
        signal: opts.signal,
        maxStdoutBytes: deps.maxOutputBytes ?? 1024 * 1024,
        stderrTailBytes: 8 * 1024,
      });
      if (r.aborted) throw new AppError('CANCELLED', 'The probe was cancelled.', { cause: opts.signal?.reason });
      if (r.spawnError)
        throw new AppError('INTERNAL', `ffprobe could not be started: ${r.spawnError.message}`, {
          cause: r.spawnError,
        });
      const killed = killedFromOutside(r);
      if (killed) throw toolKilledError('ffprobe', killed, "reading the file's headers");
      if (r.timedOut) {
        throw new AppError(
          'MEDIA_CORRUPT',
          `Reading the file's headers took longer than ${deps.timeoutS} s; the file is damaged or not a normal media file.`,
          { details: { reason: 'probe_timeout' } },
        );
      }
      if (r.stdoutOverflow)
        throw unsupported('probe_output_too_large', 'The file declares more streams or metadata than is accepted.');
      const stderr = r.stderrTail.trim();
      if (r.code !== 0) {
        if (/No such file or directory/.test(stderr)) {
          throw new AppError('INTERNAL', `ffprobe: input missing: ${file}`);
        }
        log.debug({ code: r.code, stderr }, 'ffprobe refused the file');
        const { reason, message } = failureReason(stderr);
        throw unsupported(reason, message);
      }
      let json: FfprobeJson;
      try {
        json = JSON.parse(r.stdout) as FfprobeJson;
      } catch (err) {
        throw new AppError('INTERNAL', 'ffprobe printed output that is not JSON.', { cause: err });
      }
      return toMediaProbe(json);
    },
  };
}
