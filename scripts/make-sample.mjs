// Writes data/samples/sample.wav: LibriVox speech from Debian's pocketsphinx-testdata joined with short pauses
// (about 30 s), the recording the README's curl walkthrough uses. Prints its path.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

const dir = path.resolve(process.env.DATA_DIR ?? 'data', 'samples');
const out = path.join(dir, 'sample.wav');
if (!existsSync(out)) {
  mkdirSync(dir, { recursive: true });
  const src = '/usr/share/pocketsphinx/test/data/librivox';
  const ids = ['0870', '0880', '0890', '0920', '0930'].map(
    (n) => `${src}/sense_and_sensibility_01_austen_64kb-${n}.wav`,
  );
  const pads = ids.map((_, i) => `[${i}:a]apad=pad_dur=1.5[a${i}]`).join(';');
  const concat = `${ids.map((_, i) => `[a${i}]`).join('')}concat=n=${ids.length}:v=0:a=1[out]`;
  execFileSync('ffmpeg', [
    '-hide_banner',
    '-loglevel',
    'error',
    '-y',
    ...ids.flatMap((f) => ['-i', f]),
    '-filter_complex',
    `${pads};${concat}`,
    '-map',
    '[out]',
    '-ar',
    '16000',
    '-ac',
    '1',
    out,
  ]);
}
console.log(out);
