import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseApiKeys } from '../../src/config.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';

const file = (text: string) => ({ path: '/etc/keys', text });

describe('parseApiKeys', () => {
  it('names API_KEYS by position and reads name:key lines, skipping blanks and comments', () => {
    const { keys, issues } = parseApiKeys(
      ' k1 ,k2,',
      file('# team keys\n\nalice: secret-a\r\nbob:secret:with:colons\n'),
    );
    expect(issues).toEqual([]);
    expect(keys).toEqual([
      { name: 'env-1', key: 'k1' },
      { name: 'env-2', key: 'k2' },
      { name: 'alice', key: 'secret-a' },
      { name: 'bob', key: 'secret:with:colons' },
    ]);
  });

  it('reports each bad line by number without quoting the key', () => {
    const { issues } = parseApiKeys(
      undefined,
      file('nocolon-secret-1\nbad name:secret-2\nok:\nalice:a1\nalice:a2\ncarol:a1\n'),
    );
    expect(issues).toEqual([
      'API_KEYS_FILE: /etc/keys line 1: expected "name:key"',
      'API_KEYS_FILE: /etc/keys line 2: the name must be 1 to 64 letters, digits, "_", "." or "-"',
      'API_KEYS_FILE: /etc/keys line 3: the key must be printable ASCII without spaces',
      'API_KEYS_FILE: the name "alice" is used twice',
      'API_KEYS_FILE: the key named "carol" is also given another name',
    ]);
    expect(issues.join('\n')).not.toMatch(/secret-1|secret-2|a1|a2/);
  });

  it('is open mode (no keys) with neither variable', () => {
    expect(parseApiKeys(undefined, undefined)).toEqual({ keys: [], issues: [] });
  });
});

describe('API_KEYS_FILE in loadConfig', () => {
  it('loads the named keys, and refuses a file it cannot read or parse with a ConfigError', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cs-keys-'));
    try {
      const good = path.join(dir, 'keys');
      await writeFile(good, 'ci:key-ci-0123456789\n');
      const config = loadConfig({
        DATA_DIR: dir,
        TRANSCRIBE_PROVIDER: 'local',
        API_KEYS: 'plain-key',
        API_KEYS_FILE: good,
      });
      expect(config.apiKeys.map((k) => k.name)).toEqual(['env-1', 'ci']);
      expect(() =>
        loadConfig({ DATA_DIR: dir, TRANSCRIBE_PROVIDER: 'local', API_KEYS_FILE: path.join(dir, 'missing') }),
      ).toThrow(/API_KEYS_FILE: cannot read .*ENOENT/);
      const bad = path.join(dir, 'bad');
      await writeFile(bad, 'just-a-key\n');
      expect(() => loadConfig({ DATA_DIR: dir, TRANSCRIBE_PROVIDER: 'local', API_KEYS_FILE: bad })).toThrow(
        ConfigError,
      );
      // The metrics token is the operator's view of /health: no tenant's key may be it (the key is not quoted).
      for (const keys of [{ API_KEYS: 'a-key-0123456789,shared-0123456789' }, { API_KEYS_FILE: good }]) {
        const token = 'API_KEYS' in keys ? 'shared-0123456789' : 'key-ci-0123456789';
        const refused = (() => {
          try {
            loadConfig({ DATA_DIR: dir, TRANSCRIBE_PROVIDER: 'local', ...keys, METRICS_TOKEN: token });
          } catch (err) {
            return err;
          }
          return null;
        })();
        expect(refused).toBeInstanceOf(ConfigError);
        expect((refused as ConfigError).issues).toEqual(['METRICS_TOKEN: must differ from every API key']);
      }
      expect(
        loadConfig({ DATA_DIR: dir, TRANSCRIBE_PROVIDER: 'local', API_KEYS_FILE: good, METRICS_TOKEN: 'other-0123' })
          .metricsToken,
      ).toBe('other-0123');
      // A token no client can send (a space or a control character inside) is refused, not left to lock /metrics.
      for (const token of ['two words', 'tab\there', 'caf\u00e9-token']) {
        expect(() => loadConfig({ DATA_DIR: dir, TRANSCRIBE_PROVIDER: 'local', METRICS_TOKEN: token })).toThrow(
          /METRICS_TOKEN: must be printable ASCII without spaces/,
        );
      }
      expect(
        loadConfig({ DATA_DIR: dir, TRANSCRIBE_PROVIDER: 'local', UPLOAD_RATE_LIMIT_PER_MINUTE: '0' })
          .uploadRateLimitPerMinute,
      ).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
