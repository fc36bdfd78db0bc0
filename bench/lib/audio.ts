import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { speechFixture } from '../../test/fixtures/speech.ts';
import { runOk } from './proc.ts';

export interface AudioFile {
  path: string;
  durationS: number;
  bytes: number;
  /** Seconds spent generating it in this run (0 when it came from the cache). */
  generatedMs: number;
}

/** 44.1 kHz stereo s16le. */
const WAV_BYTES_PER_S = 44_100 * 2 * 2;

/**
 * A low tone under pink noise, switched off for 1.5 s every 23 s and 0.7 s every 61 s: loud enough for
 * silencedetect (-30 dB) to see the gaps, so the silence-aware planner has cut points near every target.
 */
function sourceArgs(durationS: number): string[] {
  const gate = "volume=volume='if(lt(mod(t,23),1.5)+lt(mod(t,61),0.7),0,1)':eval=frame";
  return [
    '-f',
    'lavfi',
    '-i',
    `sine=frequency=220:sample_rate=44100:duration=${durationS}`,
    '-f',
    'lavfi',
    '-i',
    `anoisesrc=color=pink:amplitude=0.08:sample_rate=44100:seed=7:duration=${durationS}`,
    '-filter_complex',
    `[0:a][1:a]amix=inputs=2:normalize=0,${gate},aformat=channel_layouts=stereo[out]`,
    '-map',
    '[out]',
  ];
}

async function generate(file: string, durationS: number, codecArgs: string[]): Promise<number> {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.partial${path.extname(file)}`;
  const started = Date.now();
  await runOk('ffmpeg', ['-nostdin', '-hide_banner', '-v', 'error', '-y', ...sourceArgs(durationS), ...codecArgs, tmp]);
  // Renamed only when complete: an interrupted run never leaves a truncated file in the cache.
  renameSync(tmp, file);
  return Date.now() - started;
}

/** A 128 kb/s stereo mp3 of this length, generated once into cacheDir. */
export async function ensureMp3(cacheDir: string, durationS: number): Promise<AudioFile> {
  const file = path.join(cacheDir, `tone-${durationS}s-128k.mp3`);
  const generatedMs = existsSync(file) ? 0 : await generate(file, durationS, ['-c:a', 'libmp3lame', '-b:a', '128k']);
  return { path: file, durationS, bytes: statSync(file).size, generatedMs };
}

/** A 44.1 kHz stereo PCM WAV of at least `bytes` bytes, generated once into cacheDir. */
export async function ensureWav(cacheDir: string, bytes: number): Promise<AudioFile> {
  const durationS = Math.ceil(bytes / WAV_BYTES_PER_S);
  const file = path.join(cacheDir, `tone-${durationS}s-pcm.wav`);
  const generatedMs = existsSync(file) ? 0 : await generate(file, durationS, ['-c:a', 'pcm_s16le', '-ar', '44100']);
  return { path: file, durationS, bytes: statSync(file).size, generatedMs };
}

/**
 * Continuous sound, no pause anywhere (a music-like mix of two tones under pink noise, its level swaying): every
 * cut the planner makes is hard, so the job carries overlap. A 128 kb/s stereo mp3, generated once into cacheDir.
 */
export async function ensureContinuousMp3(cacheDir: string, durationS: number): Promise<AudioFile> {
  const file = path.join(cacheDir, `continuous-${durationS}s-128k.mp3`);
  let generatedMs = 0;
  if (!existsSync(file)) {
    mkdirSync(cacheDir, { recursive: true });
    const tmp = `${file}.partial.mp3`;
    const started = Date.now();
    const tone = (f: number) => ['-f', 'lavfi', '-i', `sine=frequency=${f}:sample_rate=44100:duration=${durationS}`];
    await runOk('ffmpeg', [
      ...['-nostdin', '-hide_banner', '-v', 'error', '-y', ...tone(196), ...tone(247)],
      ...['-f', 'lavfi', '-i', `anoisesrc=color=pink:amplitude=0.1:sample_rate=44100:seed=11:duration=${durationS}`],
      '-filter_complex',
      "[0:a][1:a][2:a]amix=inputs=3:normalize=0,volume='0.6+0.3*sin(2*PI*t/7)':eval=frame,aformat=channel_layouts=stereo[out]",
      ...['-map', '[out]', '-c:a', 'libmp3lame', '-b:a', '128k', tmp],
    ]);
    renameSync(tmp, file);
    generatedMs = Date.now() - started;
  }
  return { path: file, durationS, bytes: statSync(file).size, generatedMs };
}

/**
 * Speech with a pause after every sentence: the test fixture's five LibriVox clips (test/fixtures/speech.ts, ~32 s
 * of 16 kHz mono WAV) `loops` times over, generated once into cacheDir.
 */
export async function ensureSpeechWav(cacheDir: string, loops: number): Promise<AudioFile> {
  const speech = speechFixture();
  const file = path.join(cacheDir, `speech-x${loops}.wav`);
  let generatedMs = 0;
  if (!existsSync(file)) {
    mkdirSync(cacheDir, { recursive: true });
    const started = Date.now();
    const tmp = `${file}.partial.wav`;
    const loop = ['-stream_loop', String(loops - 1)];
    await runOk('ffmpeg', [
      '-nostdin',
      '-hide_banner',
      '-v',
      'error',
      '-y',
      ...loop,
      '-i',
      speech.wav,
      '-c',
      'copy',
      tmp,
    ]);
    renameSync(tmp, file);
    generatedMs = Date.now() - started;
  }
  return { path: file, durationS: speech.durationS * loops, bytes: statSync(file).size, generatedMs };
}
