// Types of what eslint.config.js exports besides the config, for test/unit/import-layers.test.ts.
import type { Linter } from 'eslint';

export interface Layer {
  name: string;
  /** Folders under src/ in this layer. */
  dirs?: string[];
  /** Single modules (paths from src/) in this layer. */
  files?: string[];
}

export const LAYERS: Layer[];
export const CLI_DIR: string;
export const CLI_SHARES: string[];
export const CLI_TYPE_SHARES: string[];

declare const config: Linter.Config[];
export default config;
