import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { isJobId } from '../jobs/ids.ts';

export interface JobDirs {
  readonly root: string;
  jobDir(id: string): string;
  uploadPath(id: string): string;
  chunksDir(id: string): string;
  /** Creates the job's directory and its chunks directory. */
  create(id: string): Promise<void>;
  remove(id: string): Promise<void>;
  removeUpload(id: string): Promise<void>;
  removeChunks(id: string): Promise<void>;
  /** Deletes every job directory whose id the store does not know (half-written uploads of a dead process). */
  sweepOrphans(known: Set<string>): Promise<string[]>;
}

/**
 * Every file of a job lives under DATA_DIR/jobs/<id>/, named by us: nothing a client sends ever becomes part of
 * a path, and deleting a job is deleting one directory.
 */
export function createJobDirs(deps: { dataDir: string; logger: Logger }): JobDirs {
  const root = path.join(deps.dataDir, 'jobs');
  const jobDir = (id: string): string => {
    if (!isJobId(id)) throw new Error(`not a job id: ${JSON.stringify(id)}`);
    return path.join(root, id);
  };
  return {
    root,
    jobDir,
    uploadPath: (id) => path.join(jobDir(id), 'upload'),
    chunksDir: (id) => path.join(jobDir(id), 'chunks'),
    async create(id) {
      await mkdir(path.join(jobDir(id), 'chunks'), { recursive: true });
    },
    async remove(id) {
      await rm(jobDir(id), { recursive: true, force: true });
    },
    async removeUpload(id) {
      await rm(path.join(jobDir(id), 'upload'), { force: true });
    },
    async removeChunks(id) {
      await rm(path.join(jobDir(id), 'chunks'), { recursive: true, force: true });
    },
    async sweepOrphans(known) {
      await mkdir(root, { recursive: true });
      const removed: string[] = [];
      for (const name of await readdir(root)) {
        if (known.has(name)) continue;
        await rm(path.join(root, name), { recursive: true, force: true });
        removed.push(name);
      }
      if (removed.length > 0) deps.logger.info({ removed: removed.length }, 'removed orphaned job directories');
      return removed;
    },
  };
}
