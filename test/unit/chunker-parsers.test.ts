import { afterEach, describe, expect, it, vi } from 'vitest';
import { chunkIndexOf, parseSegmentListLine } from '../../src/chunker/chunk-files.ts';
import { ALLOWED_DEMUXERS, demuxerOf, isAllowedDemuxer } from '../../src/chunker/containers.ts';
import { parseProgressLine } from '../../src/chunker/decode-check.ts';
import { toMediaProbe } from '../../src/chunker/ffprobe.ts';
import type { FfprobeJson } from '../../src/chunker/ffprobe.ts';
import { createRunClock } from '../../src/chunker/run-clock.ts';
import { createSilenceParser } from '../../src/chunker/silence-detect.ts';
import { AppError } from '../../src/errors.ts';

describe('isAllowedDemuxer', () => {
  it('accepts comma lists that name an allowed demuxer', () => {
    expect(isAllowedDemuxer('mov,mp4,m4a,3gp,3g2,mj2')).toBe(true);
    expect(isAllowedDemuxer('matroska,webm')).toBe(true);
    expect(isAllowedDemuxer('mp3')).toBe(true);
  });

  it('refuses playlists, scripts, image sequences, subtitles and raw data', () => {
    for (const name of [
      'hls',
      'applehttp',
      'dash',
      'concat',
      'sdp',
      'rtp',
      'image2',
      'image2pipe',
      'png_pipe',
      'tty',
      'data',
      'srt',
      'webvtt',
      'ass',
      'lavfi',
      'ffmetadata',
      'mpjpeg',
      '',
    ]) {
      expect(isAllowedDemuxer(name)).toBe(false);
    }
    expect(ALLOWED_DEMUXERS).not.toContain('hls');
  });

  it('forces the first name of the list', () => {
    expect(demuxerOf('mov,mp4,m4a,3gp,3g2,mj2')).toBe('mov');
    expect(demuxerOf('matroska,webm')).toBe('matroska');
  });
});

describe('toMediaProbe', () => {
  const mp3Stereo: FfprobeJson = {
    format: {
      format_name: 'mp3',
      format_long_name: 'MP2/3',
      duration: '32.261224',
      size: '516224',
      bit_rate: '128010',
    },
    streams: [
      { index: 0, codec_type: 'audio', codec_name: 'mp3', sample_rate: '44100', channels: 2, bit_rate: '128000' },
    ],
  };
  const noAudioStreams: FfprobeJson = {
    format: { format_name: 'mov,mp4,m4a,3gp,3g2,mj2', duration: '2.000000', size: '9000' },
    streams: [{ index: 0, codec_type: 'video', codec_name: 'mpeg4' }],
  };
  const hlsPlaylist: FfprobeJson = { format: { format_name: 'hls', duration: '40.0' }, streams: [] };

  it('maps the first audio stream and the container', () => {
    expect(toMediaProbe(mp3Stereo)).toEqual({
      formatName: 'mp3',
      demuxer: 'mp3',
      formatLongName: 'MP2/3',
      durationS: 32.261224,
      sizeBytes: 516224,
      bitRate: 128010,
      streamCount: 1,
      audioStreamCount: 1,
      videoStreamCount: 0,
      audio: { index: 0, codec: 'mp3', sampleRate: 44100, channels: 2, bitRate: 128000 },
    });
  });

  it('reports audio null for a video-only file', () => {
    const p = toMediaProbe(noAudioStreams);
    expect(p.audio).toBeNull();
    expect(p.demuxer).toBe('mov');
    expect(p.bitRate).toBeNull();
  });

  it('throws UNSUPPORTED_MEDIA for a container outside the allow-list or an empty answer', () => {
    expect(() => toMediaProbe(hlsPlaylist)).toThrow(AppError);
    expect(() => toMediaProbe({})).toThrow(/not a recognised/);
  });
});

describe('parseSegmentListLine', () => {
  it('reads name, start and end of a csv line', () => {
    expect(parseSegmentListLine('chunk-00001.wav,10.008000,20.520000')).toEqual({
      file: 'chunk-00001.wav',
      startS: 10.008,
      endS: 20.52,
    });
    expect(parseSegmentListLine('"a,b.wav",0.000000,1.500000')).toEqual({ file: 'a,b.wav', startS: 0, endS: 1.5 });
  });

  it('returns null for anything else', () => {
    expect(parseSegmentListLine('')).toBeNull();
    expect(parseSegmentListLine('progress=continue')).toBeNull();
  });

  it("recognises only this run's chunk names", () => {
    const n = { outDir: '/x', prefix: 'chunk-', extension: 'wav' };
    expect(chunkIndexOf(n, 'chunk-00012.wav')).toBe(12);
    expect(chunkIndexOf(n, 'chunk-00012.mp3')).toBeNull();
    expect(chunkIndexOf(n, 'upload')).toBeNull();
  });
});

describe('createSilenceParser', () => {
  it('pairs silence_start and silence_end lines and drops a silence left open', () => {
    const p = createSilenceParser();
    for (const line of [
      '[silencedetect @ 0x1] silence_start: -0.002',
      '[silencedetect @ 0x1] silence_end: 0.52 | silence_duration: 0.522',
      'size=N/A time=00:00:05.00',
      '[silencedetect @ 0x1] silence_start: 7.25',
      '[silencedetect @ 0x1] silence_end: 8.75 | silence_duration: 1.5',
      '[silencedetect @ 0x1] silence_start: 31.9',
    ])
      p.push(line);
    expect(p.result()).toEqual([
      { start: 0, end: 0.52 },
      { start: 7.25, end: 8.75 },
    ]);
  });
});

describe('parseProgressLine', () => {
  it("reads out_time_us in seconds and treats ffmpeg's pre-start sentinel as 0", () => {
    expect(parseProgressLine('out_time_us=16092494')).toBeCloseTo(16.092494, 6);
    expect(parseProgressLine('out_time_us=-9223372036854775807')).toBe(0);
    expect(parseProgressLine('out_time=00:00:16.092494')).toBeNull();
  });
});

describe('createRunClock', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('does not count paused time toward the limit', () => {
    vi.useFakeTimers();
    let now = 0;
    const expired = vi.fn();
    const clock = createRunClock(1000, expired, () => now);
    clock.start();
    now = 600;
    vi.advanceTimersByTime(600);
    clock.pause();
    now = 10_600;
    vi.advanceTimersByTime(10_000);
    expect(expired).not.toHaveBeenCalled();
    clock.resume();
    vi.advanceTimersByTime(399);
    expect(expired).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(expired).toHaveBeenCalledTimes(1);
  });
});
