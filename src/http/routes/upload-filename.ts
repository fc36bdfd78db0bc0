/** Longest file name kept with a job, in UTF-8 bytes: what most file systems allow for one name. */
export const FILENAME_MAX_BYTES = 255;

/**
 * Longer names are refused rather than cut: no system names a file like that (255 UTF-16 units of a macOS name
 * are at most 765 UTF-8 bytes), so it is a client bug or an attack, and cutting it would hide either.
 */
export const FILENAME_REFUSED_ABOVE_BYTES = 1024;

/** An extension longer than this is not worth keeping over the start of the name. */
const KEPT_EXTENSION_MAX_BYTES = 16;

/** The longest start of `text` that takes at most `maxBytes` in UTF-8, never cutting a character in two. */
export function utf8Prefix(text: string, maxBytes: number): string {
  let bytes = 0;
  let end = 0;
  // for...of walks code points, so a surrogate pair is taken or left whole.
  for (const char of text) {
    bytes += Buffer.byteLength(char, 'utf8');
    if (bytes > maxBytes) break;
    end += char.length;
  }
  return text.slice(0, end);
}

/**
 * The name stored and echoed for an upload: at most FILENAME_MAX_BYTES of UTF-8, cut on a character boundary.
 * A short extension survives the cut, so the name still says what kind of file it was.
 */
export function storedFilename(name: string, maxBytes = FILENAME_MAX_BYTES): string {
  if (Buffer.byteLength(name, 'utf8') <= maxBytes) return name;
  const dot = name.lastIndexOf('.');
  const extension = dot > 0 ? name.slice(dot) : '';
  const extensionBytes = Buffer.byteLength(extension, 'utf8');
  if (extension === '' || extensionBytes > KEPT_EXTENSION_MAX_BYTES) return utf8Prefix(name, maxBytes);
  return utf8Prefix(name.slice(0, dot), maxBytes - extensionBytes) + extension;
}
