import { readFileSync } from 'node:fs';

/** A bearer key and the name jobs and logs know it by (the key itself is never stored or logged). */
export interface ApiKey {
  name: string;
  key: string;
}

const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const KEY_TEXT = /^[\x21-\x7e]+$/;

/** Whether `text` can be sent as a bearer credential as it is: printable ASCII without spaces. */
export const isBearerText = (text: string): boolean => KEY_TEXT.test(text);

/**
 * The keys of API_KEYS (comma-separated, named `env-1`, `env-2`, ... by position) and of API_KEYS_FILE (one
 * `name:key` a line; blank lines and lines starting with `#` are skipped). Returns the keys, or the problems
 * found, each naming the variable and line without quoting any key.
 */
export function parseApiKeys(
  envKeys: string | undefined,
  file: { path: string; text: string } | undefined,
): { keys: ApiKey[]; issues: string[] } {
  const keys: ApiKey[] = [];
  const issues: string[] = [];
  (envKeys ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '')
    .forEach((key, i) => keys.push({ name: `env-${i + 1}`, key }));

  if (file) {
    file.text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const at = `API_KEYS_FILE: ${file.path} line ${i + 1}`;
      const colon = line.indexOf(':');
      if (colon === -1) {
        issues.push(`${at}: expected "name:key"`);
        return;
      }
      const name = line.slice(0, colon).trim();
      const key = line.slice(colon + 1).trim();
      if (!KEY_NAME.test(name)) issues.push(`${at}: the name must be 1 to 64 letters, digits, "_", "." or "-"`);
      else if (!KEY_TEXT.test(key)) issues.push(`${at}: the key must be printable ASCII without spaces`);
      else keys.push({ name, key });
    });
  }

  const names = new Set<string>();
  const secrets = new Set<string>();
  for (const { name, key } of keys) {
    if (names.has(name)) issues.push(`API_KEYS_FILE: the name "${name}" is used twice`);
    if (secrets.has(key)) issues.push(`API_KEYS_FILE: the key named "${name}" is also given another name`);
    names.add(name);
    secrets.add(key);
  }
  return { keys, issues };
}

/** The keys of API_KEYS and of the file API_KEYS_FILE names (parseApiKeys), or why that file cannot be read. */
export function apiKeysOf(envKeys: string | undefined, file: string | undefined): { keys: ApiKey[]; issues: string[] } {
  if (file === undefined) return parseApiKeys(envKeys, undefined);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return {
      keys: [],
      issues: [`API_KEYS_FILE: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`],
    };
  }
  return parseApiKeys(envKeys, { path: file, text });
}
