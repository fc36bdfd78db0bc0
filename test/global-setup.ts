import { speechFixture } from './fixtures/speech.ts';

// Generated once before any test file runs, so parallel workers never race to write the same fixture.
export default function setup(): void {
  speechFixture();
}
