import { describe, expect, it } from 'vitest';
import { withoutDirectories } from '../../src/errors.ts';

describe('withoutDirectories (a tool error line as a tenant reads it)', () => {
  it('cuts every absolute path to its file name and leaves the rest of the line', () => {
    expect(withoutDirectories('open \'/data/jobs/job_a/chunk-0001.wav\' and /usr/share/x/en-us/ at "/a b"')).toBe(
      'open \'chunk-0001.wav\' and  at "a b"',
    );
    expect(withoutDirectories('/srv/cs/data/jobs/job_x/upload.mp3: Invalid data found when processing input')).toBe(
      'upload.mp3: Invalid data found when processing input',
    );
    expect(withoutDirectories('Error while decoding stream #0:0: Invalid data found when processing input')).toBe(
      'Error while decoding stream #0:0: Invalid data found when processing input',
    );
    expect(withoutDirectories('ratio 1/2 and 3/4')).toBe('ratio 1/2 and 3/4');
  });
});
