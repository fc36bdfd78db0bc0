import type { Mp3StreamMeasure } from '../chunker/mp3-duration.ts';
import type { Config } from '../config.ts';
import type { Registry } from 'prom-client';
import type { JobEvents } from '../jobs/events.ts';
import type { JobFeed } from '../jobs/job-feed.ts';
import type { JobQueue } from '../jobs/runner.ts';
import type { JobStore } from '../jobs/job-store.ts';
import type { AudioInfo, CostEstimate, JobRequest } from '../jobs/types.ts';
import type { DirPool } from '../resources/dir-pool.ts';
import type { JobDirs } from '../resources/job-dirs.ts';
import type { PressureGauge } from '../resources/pressure-gauge.ts';
import type { StorageGuard } from '../resources/storage-guard.ts';
import type { UploadLimits } from '../resources/upload-limits.ts';
import type { UploadStore } from '../storage/upload-store.ts';
import type { HealthReport } from './health-report.ts';

export interface ValidatedRequest {
  request: JobRequest;
  dryRun: boolean;
}

export interface AcceptedMedia {
  audio: AudioInfo;
  estimate: CostEstimate;
  plannedChunks: number;
}

/** A model this service can run, as GET /v1/models lists it. */
export interface ModelListing {
  id: string;
  /** The engine that runs it (a configured backend's name once there are several). */
  provider: string;
  /** The model a request that names none gets. */
  default: boolean;
  /** Translation into English (POST /v1/audio/translations). */
  translation: boolean;
  /** Segment times from the engine (otherwise one segment per chunk, timed by its length). */
  segmentTimes: boolean;
  /** Word times when asked (timestamp_granularities[]=word). */
  wordTimes: boolean;
  /** ISO-639-1 codes it recognises, or null for any. */
  languages: readonly string[] | null;
}

/** What the HTTP layer needs from the pipeline: narrow, so routes stay thin and tests can build the app around real parts. */
export interface Services {
  config: Config;
  store: JobStore;
  dirs: JobDirs;
  /** Where an accepted upload is made durable before the job is reported, and deleted with its job. */
  uploads: Pick<UploadStore, 'save' | 'remove'>;
  /** Leases of job directories, bounded in number and upload bytes; a new upload takes one or gets SERVER_BUSY. */
  dirPool: DirPool;
  runner: JobQueue;
  /** The per-key upload slots and rate count: this process's, or with REDIS_URL shared by every host. */
  uploadLimits: UploadLimits;
  /** Live events of a job (progress, each chunk's final text, the end), read from the store. */
  feed: JobFeed;
  /** Admission before the body is read (disk, memory); throws SERVER_BUSY / INSUFFICIENT_STORAGE. */
  admit(expectedBytes: number | null): Promise<void>;
  validateFields(fields: Record<string, string>): ValidatedRequest;
  validateMedia(input: {
    file: string;
    filename: string;
    sizeBytes: number;
    request: JobRequest;
    /** The upload's frame walk as it streamed in: an mp3 is then measured already (validate/media-validator.ts). */
    walked?: Pick<Mp3StreamMeasure, 'result'>;
    /** Work for the event loop while the media check's child processes run (validate/media-validator.ts). */
    whileChecking?: () => void;
  }): Promise<AcceptedMedia>;
  /** The models a job may name, the default first; what /v1/models lists and the OpenAI routes check against. */
  listModels(): readonly ModelListing[];
  health(): Promise<HealthReport>;
  /** Memory and disk pressure, sampled by the HTTP layer; critical pressure starts an emergency cleanup. */
  pressure: PressureGauge;
  /** Whether job writes are paused for lack of space: running jobs show it as progress.waiting. */
  storage: Pick<StorageGuard, 'waiting'>;
  /** The HTTP layer reports uploads, accepted jobs and refused uploads here (metrics). */
  events: Pick<JobEvents, 'uploadBytes' | 'accepted' | 'uploadRefused'>;
  /** What GET /metrics serves. */
  metricsRegistry: Registry;
  /** Orphan sweep and resuming unfinished jobs. */
  start(): Promise<void>;
  close(): Promise<void>;
}
