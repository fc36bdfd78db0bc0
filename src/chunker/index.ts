export type { AudioStreamInfo, ChunkStream, MediaProbe, SlicedChunk } from './types.ts';
export { ALLOWED_DEMUXERS, FORMAT_WHITELIST, demuxerOf, isAllowedDemuxer } from './containers.ts';
export type { AllowedDemuxer } from './containers.ts';
export { createProber, toMediaProbe } from './ffprobe.ts';
export type { FfprobeJson, Prober, ProberDeps } from './ffprobe.ts';
export { createDecodeChecker, measureDecodedDuration } from './decode-check.ts';
export type {
  CheckOptions,
  CheckResult,
  DecodeChecker,
  DecodeCheckerDeps,
  MeasureOptions,
  MeasureResult,
} from './decode-check.ts';
export { laneTargetS, planCutPoints, planSplits, planSplitsByWindows, plannedChunkCount } from './cut-points.ts';
export { createCutPlanner } from './cut-planner.ts';
export type { CutPlanRequest, CutPlanner } from './cut-planner.ts';
export { seeksExactly } from './seek-exact.ts';
export type { CutPlan, Silence, CutPointOptions } from './cut-points.ts';
export { createSilenceDetector } from './silence-detect.ts';
export type { DetectOptions, SilenceDetector, SilenceDetectorDeps } from './silence-detect.ts';
export {
  CHUNK_FORMATS,
  CHUNK_SAMPLE_RATE,
  chunkEncoding,
  copyFormatFor,
  isChunkFormat,
  maxChunkSecondsForBytes,
} from './chunk-format.ts';
export type { ChunkEncoding, ChunkFormat, ChunkIntake, CopyableSource } from './chunk-format.ts';
export { chooseChunkRecipe, COPY_BYTE_MARGIN } from './chunk-recipe.ts';
export type { ChunkMode, ChunkRecipe, ChunkRecipeInput } from './chunk-recipe.ts';
export { capChunkBytes, piecesFor } from './byte-cap.ts';
export type { ByteCapOptions } from './byte-cap.ts';
export { parseWavHeader, wavHeader, withOverlap } from './overlap-lead.ts';
export type { OverlapLeadOptions, WavLayout } from './overlap-lead.ts';
export { createSlicer } from './slicer.ts';
export type { SliceHandle, SliceOptions, SliceState, Slicer, SlicerDeps } from './slicer.ts';
export { chunkPlanRecord, createChunkSource } from './chunk-source.ts';
export { createWindowScanSlots } from './scan-slots.ts';
export type {
  ChunkPlan,
  ChunkPlanRecord,
  ChunkReader,
  ChunkSource,
  ChunkSourceConfig,
  ChunkSubject,
  OpenOptions,
  PlannedSubject,
  StoredChunkPlan,
} from './chunk-source.ts';
