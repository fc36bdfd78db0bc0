import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { isJobId } from '../jobs/ids.ts';

export interface JobDirs {
  readonly root: string;
  jobDir(id: string): string;
  uploadPath(id: string): string;
  /**
   * Where one run of the job cuts its chunk files: a directory of its own per run epoch, so a runner that lost the
   * job (and still cleans up after itself) never touches the files of the run that took it over.
   */
  chunksDir(id: string, run: number): string;
  /**
   * Where one run keeps the upload it downloaded (the object store's, when this host had no copy): in its chunks
   * directory, so it goes with the run's own files, also when the run lost the job.
   */
  runUploadPath(id: string, run: number): string;
  /** Creates the job's directory, and the run's chunks directory when a run is named. */
  create(id: string, run?: number): Promise<void>;
  remove(id: string): Promise<void>;
  removeUpload(id: string): Promise<void>;
  /** The run's chunks directory; without a run, every run's (the cleanup's, for a job no runner holds). */
  removeChunks(id: string, run?: number): Promise<void>;
  /** Deletes every job directory whose id the store does not know (half-written uploads of a dead process). */
  sweepOrphans(known: Set<string>): Promise<string[]>;
  /** The job ids that have a directory now. */
  list(): Promise<string[]>;
  /**
   * True from `create` until `remove` in this process: an upload still streaming has a directory but no job row
   * yet, and a cleanup running while the service is up must not take it for an orphan.
   */
  inProcess(id: string): boolean;
  /** Bytes of the files under the job's directory (0 when it is gone). */
  usage(id: string): Promise<number>;
}

/** A run's chunks directory (`chunks-<epoch>`), or the one directory of releases before runs had their own. */
const isChunksDir = (name: string): boolean => /^chunks(-\d+)?$/.test(name);

/**
 * Every file of a job lives under DATA_DIR/jobs/<id>/, named by us: nothing a client sends ever becomes part of
 * a path, and deleting a job is deleting one directory.
 */
export function createJobDirs(deps: { dataDir: string; logger: Logger }): JobDirs {
  const root = path.join(deps.dataDir, 'jobs');
  const created = new Set<string>();
  const jobDir = (id: string): string => {
    if (!isJobId(id)) throw new Error(`not a job id: ${JSON.stringify(id)}`);
    return path.join(root, id);
  };
  const chunksDir = (id: string, run: number): string => path.join(jobDir(id), `chunks-${run}`);
  return {
    root,
    jobDir,
    uploadPath: (id) => path.join(jobDir(id), 'upload'),
    chunksDir,
    runUploadPath: (id, run) => path.join(chunksDir(id, run), 'upload'),
    async create(id, run) {
      created.add(id);
      await mkdir(run === undefined ? jobDir(id) : chunksDir(id, run), { recursive: true });
    },
    async remove(id) {
      await rm(jobDir(id), { recursive: true, force: true });
      created.delete(id);
    },
    async removeUpload(id) {
      await rm(path.join(jobDir(id), 'upload'), { force: true });
    },
    async removeChunks(id, run) {
      if (run !== undefined) {
        await rm(chunksDir(id, run), { recursive: true, force: true });
        return;
      }
      const names = await readdir(jobDir(id)).catch(() => []);
      for (const name of names.filter(isChunksDir))
        await rm(path.join(jobDir(id), name), { recursive: true, force: true });
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
    async list() {
      try {
        return (await readdir(root)).filter(isJobId);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      }
    },
    inProcess: (id) => created.has(id),
    async usage(id) {
      let names: string[];
      try {
        names = (await readdir(jobDir(id), { recursive: true })).map(String);
      } catch {
        return 0;
      }
      let bytes = 0;
      for (const name of names) {
        const s = await stat(path.join(jobDir(id), name)).catch(() => null);
        if (s?.isFile()) bytes += s.size;
      }
      return bytes;
    },
  };
}
