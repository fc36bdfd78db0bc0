import os from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { capChunkBytes } from './byte-cap.ts';
import type { ChunkFormat, ChunkIntake } from './chunk-format.ts';
import { chooseChunkRecipe, type ChunkMode, type ChunkRecipe, type ChunkRecipeInput } from './chunk-recipe.ts';
import { createCutPlanner } from './cut-planner.ts';
import { laneTargetS, plannedChunkCount } from './cut-points.ts';
import { sliceMp3 } from './mp3-slicer.ts';
import { readAhead } from './read-ahead.ts';
import { createWindowScanSlots, type ScanSlots } from './scan-slots.ts';
import { seeksExactly } from './seek-exact.ts';
import { withOverlap } from './overlap-lead.ts';
import { createSilenceDetector } from './silence-detect.ts';
import { createSlicer } from './slicer.ts';
import type { ChunkStream } from './types.ts';

/** The engine that reads the chunk files, as far as cutting them goes. */
export interface ChunkReader {
  /** Which source formats it takes as they are, and what a re-encode writes for it (the engine's declaration). */
  intake: ChunkIntake;
  /** A model's request caps. */
  caps(model: string): ChunkRecipeInput['model'];
}

/** What is cut into chunks: the upload, what the validator measured of it, and the model the chunks go to. */
export interface ChunkSubject {
  file: string;
  audio: ChunkRecipeInput['audio'];
  model: string;
  /** Its chunks go one at a time (context=sequential): there are no lanes to even them out over. */
  sequential?: boolean;
}

/** A subject as far as its chunk count goes: the audio and the model, not the file (the validator has no job yet). */
export type PlannedSubject = Omit<ChunkSubject, 'file'>;

/** The one decision of how a fresh job is chunked: where the cuts fall, and how the chunk files are made. */
export interface ChunkPlan {
  /** Seconds, strictly increasing: N cuts make N + 1 chunks. Empty for a lazy plan. */
  cuts: number[];
  /** Cuts that fell on no silence (a word may be split there; overlap repairs it); null: not known (lazy). */
  hardCuts: number | null;
  recipe: ChunkRecipe;
  /**
   * The cut points are planned while the file is cut (open() plans them), so the first chunk goes out after one
   * window's scan instead of the whole plan; `plannedChunks` is the count expected meanwhile.
   */
  lazy?: { plannedChunks: number };
}

/**
 * The plan as kept with the job (JSON), so a resumed job cuts the rest the same way: the cuts themselves are the
 * job's chunk rows.
 */
export interface ChunkPlanRecord {
  mode: ChunkMode;
  format: ChunkFormat;
  /** The byte cap a chunk that comes out larger is split again to fit; null: none (JSON has no Infinity). */
  maxBytes: number | null;
  overlapS: number;
  /** Null: not known. */
  hardCuts: number | null;
  /** Why this recipe, for the log. */
  reason: string;
  /** Cut points planned while slicing (an mp3 copy that seeks exactly): the stored chunks are only those cut so far. */
  lazy?: boolean;
}

/** A record as read back: plans stored by earlier versions lack the byte cap, and the oldest the overlap and hard cuts. */
export type StoredChunkPlan = Omit<ChunkPlanRecord, 'maxBytes' | 'overlapS' | 'hardCuts'> &
  Partial<Pick<ChunkPlanRecord, 'maxBytes' | 'overlapS' | 'hardCuts'>>;

export interface OpenOptions {
  /** Directory for the chunk files; the caller owns it. */
  outDir: string;
  /**
   * Where the chunks start (after the first), in seconds: the plan's cuts, or the stored chunks of a resumed job
   * (for a lazy plan, the cuts made so far: the rest are planned behind the last of them).
   */
  cutPoints: readonly number[];
  /** Chunks handed out and not yet released before cutting pauses. */
  lookahead: number;
  /** Chunks the pool sends at once: the first cuts it waits for are planned before the rest. @default 3 */
  inFlight?: number;
  signal: AbortSignal;
}

/** What a job's plan is expected to make, known before the audio is scanned for pauses. */
export interface Planned {
  /**
   * The chunks: the job's first progress total, the dry run's chunks_planned and the estimate's overlap count
   * them (a pause near a target can still move a cut, not the count).
   */
  chunks: number;
  /**
   * The seconds each chunk after the first starts with when a cut misses every pause (the hard cut's recipe: its
   * overlap, an mp3's rounded to whole frames; 0 where the chunks cannot carry one), sent (and billed) twice: the
   * estimate counts it at every planned cut, since before slicing nobody knows which cuts find a pause.
   */
  overlapS: number;
}

export interface ChunkSource {
  /** What a plan is expected to make, before it is made (see Planned). */
  planned(subject: PlannedSubject): Planned;
  /** A fresh job's plan: the cut points (found in the audio's pauses) and the recipe, decided together once. */
  planChunks(subject: ChunkSubject, signal: AbortSignal): Promise<ChunkPlan>;
  /**
   * The plan a resumed job keeps. A plan stored before the whole decision was kept (or none, for the oldest jobs)
   * is decided again from its hard cuts, as those versions did on every start.
   */
  resume(subject: ChunkSubject, stored: StoredChunkPlan | null): ChunkPlanRecord;
  /** The chunk files as ffmpeg cuts them, each split again if over the byte cap, each carrying its overlap. */
  open(subject: ChunkSubject, plan: ChunkPlanRecord, opts: OpenOptions): ChunkStream;
}

export type ChunkSourceConfig = Pick<
  Config,
  'chunkSeconds' | 'chunkOverlapSeconds' | 'maxDurationS' | 'ffmpegTimeoutS'
> & {
  /**
   * The lanes of the job pool a short file's chunks are evened out over (cut-points laneTargetS); 1: the chunk
   * length is taken as it is. @default 1
   */
  evenLanes?: number;
};

/** The record kept with the job for a plan's recipe. */
export function chunkPlanRecord(recipe: ChunkRecipe, hardCuts: number | null, lazy = false): ChunkPlanRecord {
  const { mode, format, maxBytes, overlapS, reason } = recipe;
  const record = { mode, format, maxBytes: Number.isFinite(maxBytes) ? maxBytes : null, overlapS, hardCuts, reason };
  return lazy ? { ...record, lazy } : record;
}

/** The recipe for the subject given how many cuts missed every pause (null: not known). */
function recipeOf(
  config: ChunkSourceConfig,
  reader: ChunkReader,
  subject: PlannedSubject,
  hardCuts: number | null,
): ChunkRecipe {
  return chooseChunkRecipe({
    intake: reader.intake,
    model: reader.caps(subject.model),
    audio: subject.audio,
    chunkSeconds: config.chunkSeconds,
    encodeFormat: reader.intake.encodeFormat,
    overlapS: config.chunkOverlapSeconds,
    hardCuts,
  });
}

/**
 * Pure: the length the cuts aim at and the longest chunk they may make, for the subject's model and audio. The
 * cuts keep within both recipes they may lead to (no cut missed a pause, or some did: overlap); a short file's
 * chunks are evened out over the lanes, unless they go one at a time. The plan, the lazy slicer and the count
 * shown before the plan is made all start from this one computation.
 */
function cutShapeOf(config: ChunkSourceConfig, reader: ChunkReader, subject: PlannedSubject) {
  const soft = recipeOf(config, reader, subject, 0);
  const hard = recipeOf(config, reader, subject, null);
  const durationS = subject.audio.duration_s;
  const maxChunkS = Math.min(soft.maxChunkS, hard.maxChunkS);
  const lanes = subject.sequential ? 1 : (config.evenLanes ?? 1);
  const targetS = laneTargetS(durationS, Math.min(soft.targetS, hard.targetS), lanes, { maxChunkS });
  return { soft, hard, durationS, targetS, maxChunkS };
}

/** The chunks the cuts make where no pause moves them: the count expected before (or while) they are planned. */
function chunkCountOf(shape: ReturnType<typeof cutShapeOf>): number {
  return plannedChunkCount(shape.durationS, shape.targetS, { maxChunkS: shape.maxChunkS });
}

/** What the cut planner needs of a subject. */
function cutRequestOf(config: ChunkSourceConfig, reader: ChunkReader, subject: ChunkSubject, signal: AbortSignal) {
  const shape = cutShapeOf(config, reader, subject);
  const { soft, hard, durationS, targetS, maxChunkS } = shape;
  return {
    soft,
    hard,
    plannedChunks: chunkCountOf(shape),
    req: {
      file: subject.file,
      demuxer: subject.audio.demuxer,
      maxDurationS: config.maxDurationS,
      signal,
      durationS,
      targetS,
      maxChunkS,
      searchWindowS: Math.min(config.chunkSeconds / 4, 60),
    },
  };
}

/** Plan, slicer, byte cap and overlap lead assembled once from the config: the pipeline asks, it does not assemble. */
export function createChunkSource(
  config: ChunkSourceConfig,
  deps: { logger: Logger; reader: ChunkReader; scanSlots?: ScanSlots },
): ChunkSource {
  const { logger, reader } = deps;
  const timeoutS = config.ffmpegTimeoutS;
  const slicer = createSlicer({ logger, timeoutS });
  // A windowed scan is all decoding: one ffmpeg per core (up to 4), shared by every job's scans (every backend's,
  // when given), plans a long file that much sooner without scans ahead of need slowing one a chunk waits for.
  const parallelRuns = Math.min(4, os.availableParallelism());
  const slots = deps.scanSlots ?? createWindowScanSlots();
  const silences = createSilenceDetector({ logger, timeoutS, parallelRuns, slots });
  const cutPlanner = createCutPlanner({ silences, logger });

  const recipeFor = (subject: ChunkSubject, hardCuts: number | null): ChunkRecipe =>
    recipeOf(config, reader, subject, hardCuts);
  const cutRequest = (subject: ChunkSubject, signal: AbortSignal) => cutRequestOf(config, reader, subject, signal);

  return {
    async planChunks(subject, signal) {
      // The recipe depends on the cuts (overlap only when a cut misses every pause) and the cuts on the recipe's
      // caps: the cuts keep within both recipes they may lead to, then the cuts pick one.
      const { soft, hard, plannedChunks, req } = cutRequest(subject, signal);
      if (hard.mode === 'copy' && hard.format === 'mp3' && soft.mode === 'copy' && soft.format === 'mp3') {
        // An mp3 copy carries overlap for free (whole frames copied), so it needs no cuts to choose its recipe:
        // cutting starts at once, with the overlap, while the cut points are found (sliceMp3, planCutsInOrder).
        if (await seeksExactly(subject.file, subject.audio.demuxer)) {
          const reason = `${hard.reason}; cut points planned while slicing`;
          return { cuts: [], hardCuts: null, recipe: { ...hard, reason }, lazy: { plannedChunks } };
        }
      }
      const { cuts, hardCuts } = await cutPlanner.planCuts(req);
      return { cuts, hardCuts, recipe: hardCuts === 0 ? soft : hard };
    },

    planned: (subject) => ({
      chunks: chunkCountOf(cutShapeOf(config, reader, subject)),
      overlapS: recipeOf(config, reader, subject, null).overlapS,
    }),

    resume(subject, stored) {
      if (stored && stored.maxBytes !== undefined && stored.overlapS !== undefined && stored.hardCuts !== undefined) {
        return { ...stored, maxBytes: stored.maxBytes, overlapS: stored.overlapS, hardCuts: stored.hardCuts };
      }
      const hardCuts = stored?.hardCuts ?? null;
      return chunkPlanRecord(recipeFor(subject, hardCuts), hardCuts);
    },

    open(subject, plan, opts) {
      const { signal } = opts;
      if (plan.lazy) {
        // The mp3 slicer puts each chunk's lead in front and keeps it under the byte cap itself: the chunk is one
        // byte range of the upload, copied once.
        // Planning stops with the slicer (its end, a failure, a restart after a full disk), the scan under way
        // included: reading on to the next cut would wait for that scan, and those it leads to, first.
        const planning = new AbortController();
        const cuts = readAhead(
          cutPlanner.cutsInOrder({
            ...cutRequest(subject, AbortSignal.any([signal, planning.signal])).req,
            after: opts.cutPoints,
            ...(opts.inFlight !== undefined && { firstNeeded: opts.inFlight }),
          }),
          { onStop: () => planning.abort() },
        );
        return sliceMp3({
          input: subject.file,
          outDir: opts.outDir,
          cuts,
          leadS: plan.overlapS,
          maxBytes: plan.maxBytes ?? Infinity,
          lookahead: opts.lookahead,
          maxDurationS: config.maxDurationS,
          expectedDurationS: subject.audio.duration_s,
          signal,
          logger,
        });
      }
      const sliced = slicer.slice({
        input: subject.file,
        demuxer: subject.audio.demuxer,
        outDir: opts.outDir,
        cutPoints: opts.cutPoints,
        format: plan.format,
        mode: plan.mode,
        lookahead: opts.lookahead,
        maxDurationS: config.maxDurationS,
        expectedDurationS: subject.audio.duration_s,
        signal,
      });
      const capped = capChunkBytes(sliced, { maxBytes: plan.maxBytes ?? Infinity, logger, timeoutS, signal });
      return withOverlap(capped, { overlapS: plan.overlapS, logger });
    },
  };
}
