import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';

/** Naming of one slicing run's chunk files: `<prefix><5-digit index>.<ext>` inside outDir. */
export interface ChunkNaming {
  outDir: string;
  prefix: string;
  extension: string;
}

/** The pattern handed to ffmpeg's segment muxer. */
export function segmentPattern(n: ChunkNaming): string {
  return path.join(n.outDir, `${n.prefix}%05d.${n.extension}`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Index of a chunk file name of this run, or null for any other file. */
export function chunkIndexOf(n: ChunkNaming, fileName: string): number | null {
  const m = new RegExp(`^${escapeRegExp(n.prefix)}(\\d{5,})\\.${escapeRegExp(n.extension)}$`).exec(fileName);
  return m?.[1] ? Number(m[1]) : null;
}

/**
 * Removes this run's chunk files whose index is at least `fromIndex` (0: all of them). Other files
 * in outDir are left alone: the directory belongs to the caller.
 */
export async function removeChunkFiles(n: ChunkNaming, fromIndex: number): Promise<void> {
  let names: string[];
  try {
    names = await readdir(n.outDir);
  } catch {
    return;
  }
  await Promise.all(
    names
      .filter((name) => {
        const i = chunkIndexOf(n, name);
        return i !== null && i >= fromIndex;
      })
      .map((name) => rm(path.join(n.outDir, name), { force: true })),
  );
}

export interface SegmentListEntry {
  file: string;
  startS: number;
  endS: number;
}

/** One line of ffmpeg's csv segment list: `name,start,end` (a name with a comma comes quoted). */
export function parseSegmentListLine(line: string): SegmentListEntry | null {
  const m = /^(.*),(-?[\d.]+),(-?[\d.]+)\s*$/.exec(line);
  if (!m?.[1] || m[2] === undefined || m[3] === undefined) return null;
  let file = m[1];
  if (file.startsWith('"') && file.endsWith('"')) file = file.slice(1, -1).replace(/""/g, '"');
  const startS = Number(m[2]);
  const endS = Number(m[3]);
  if (!Number.isFinite(startS) || !Number.isFinite(endS)) return null;
  return { file, startS, endS };
}
