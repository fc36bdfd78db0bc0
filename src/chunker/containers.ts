/**
 * Demuxers an upload may be read with. Everything else is refused, above all the demuxers that open
 * other files or URLs on the uploader's behalf (hls, dash, concat, image2 sequences, sdp, rtp) and the
 * ones that turn any bytes into "media" (tty, data, subtitles): ffmpeg would otherwise guess them from
 * the content, whatever the file name says.
 *
 * mpeg/mpegts and avi are allowed: camcorder and broadcast recordings arrive in them and none of them
 * references outside data. mov is safe here because its external-reference support (`enable_drefs`)
 * is off by default.
 */
export const ALLOWED_DEMUXERS = [
  'mp3',
  'wav',
  'flac',
  'ogg',
  'mov',
  'matroska',
  'aac',
  'amr',
  'amrnb',
  'amrwb',
  'aiff',
  'w64',
  'caf',
  'au',
  'ape',
  'wv',
  'asf',
  'mpeg',
  'mpegts',
  'avi',
] as const;

export type AllowedDemuxer = (typeof ALLOWED_DEMUXERS)[number];

const allowed: ReadonlySet<string> = new Set(ALLOWED_DEMUXERS);

/** The value for ffprobe/ffmpeg `-format_whitelist`. */
export const FORMAT_WHITELIST = ALLOWED_DEMUXERS.join(',');

/**
 * True when ffprobe's `format_name` (one name, or a comma list such as "mov,mp4,m4a,3gp,3g2,mj2")
 * names an allowed demuxer. Matches any name of the list, as ffmpeg's own whitelist check does.
 */
export function isAllowedDemuxer(formatName: string): boolean {
  return formatName
    .split(',')
    .map((n) => n.trim())
    .some((n) => allowed.has(n));
}

/** The name to force with `-f`: the first of ffprobe's comma list ("mov" for mp4, "matroska" for webm). */
export function demuxerOf(formatName: string): string {
  return formatName.split(',')[0]?.trim() ?? '';
}
