import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globals: false,
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests spawn ffmpeg and pocketsphinx; on 2 cores more workers only add contention.
    maxWorkers: 2,
    globalSetup: ['test/global-setup.ts'],
  },
});
