import ISO6391 from 'iso-639-1';
import { AppError } from '../errors.ts';
import type { JobRequest } from '../jobs/types.ts';
import { checkCallbackUrl, type CallbackPorts } from './callback-url.ts';

/** How chunks see each other: 'sequential' passes the previous chunk's text as the next chunk's prompt. */
export type ContextMode = NonNullable<JobRequest['context']>;

/** Text fields of the multipart body as the route collected them; an array means the field came more than once. */
export type TextFields = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface RequestValidatorOptions {
  /** The configured model (config.model); used when the request names none. */
  defaultModel: string;
  /** Models the configured backends serve; the default model is always accepted too. */
  knownModels: readonly string[];
  /**
   * The ISO-639-1 codes a model recognises, or null for any (ModelInfo.languages).
   * @default every model takes any code
   */
  languagesOf?: (model: string) => readonly string[] | null;
  /**
   * Accept callback URLs on loopback/private/link-local addresses and localhost.
   * @default false
   */
  allowPrivateCallbacks?: boolean;
  /** Ports a callback URL may name (WEBHOOK_PORTS). @default defaultCallbackPorts(allowPrivateCallbacks) */
  callbackPorts?: CallbackPorts;
  /**
   * Whisper only reads the last 224 tokens of a prompt; 1000 characters is about that much English text with
   * room to spare, and keeps a prompt from becoming a channel for bulk data.
   * @default 1000
   */
  maxPromptChars?: number;
  /** UTF-8 bytes of the raw `metadata` field. @default 16384 */
  maxMetadataBytes?: number;
}

export interface ValidatedFields {
  request: JobRequest;
  dryRun: boolean;
  context: ContextMode;
  ms: number;
}

export interface RequestValidator {
  /** Throws AppError INVALID_FIELD (400) with `details.field` naming the first bad field. */
  validate(fields: TextFields): ValidatedFields;
}

export const ACCEPTED_FIELDS = [
  'language',
  'prompt',
  'model',
  'metadata',
  'callback_url',
  'max_cost_usd',
  'dry_run',
  'context',
] as const;
type FieldName = (typeof ACCEPTED_FIELDS)[number];

function invalid(field: string, message: string): AppError {
  return new AppError('INVALID_FIELD', message, { details: { field } });
}

/** A bounded, quoted echo of client input for messages. */
function quote(value: string, max = 40): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
}

function isFieldName(name: string): name is FieldName {
  return (ACCEPTED_FIELDS as readonly string[]).includes(name);
}

export function createRequestValidator(options: RequestValidatorOptions): RequestValidator {
  const maxPromptChars = options.maxPromptChars ?? 1000;
  const maxMetadataBytes = options.maxMetadataBytes ?? 16 * 1024;
  if (!Number.isInteger(maxPromptChars) || maxPromptChars < 1) {
    throw new TypeError(`maxPromptChars must be a positive integer, got ${String(maxPromptChars)}`);
  }
  if (!Number.isInteger(maxMetadataBytes) || maxMetadataBytes < 2) {
    throw new TypeError(`maxMetadataBytes must be an integer >= 2, got ${String(maxMetadataBytes)}`);
  }
  const models = new Set([options.defaultModel, ...options.knownModels]);

  /** The field's single value; an empty or blank value counts as not given, as HTML forms send empty inputs. */
  function single(fields: TextFields, name: FieldName): string | undefined {
    if (!Object.hasOwn(fields, name)) return undefined;
    const value = fields[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') {
      throw invalid(name, `${name} was sent ${value.length} times; send it once`);
    }
    return value.trim() === '' ? undefined : value;
  }

  function language(raw: string | undefined, forModel: string): string | null {
    if (raw === undefined) return null;
    const v = raw.trim();
    // `auto` says what leaving it out says: the backend detects the language (reported as detected_language).
    if (v === 'auto') return null;
    if (/^[A-Z]{2}$/i.test(v) && v !== v.toLowerCase() && ISO6391.validate(v.toLowerCase())) {
      throw invalid('language', `language must be lower-case: send ${quote(v.toLowerCase())} instead of ${quote(v)}`);
    }
    if (!/^[a-z]{2}$/.test(v) || !ISO6391.validate(v)) {
      throw invalid(
        'language',
        `language ${quote(v)} is not an ISO-639-1 code; send two lower-case letters such as "en" or "de", ` +
          'or "auto" (or leave it out) to let the provider detect the language',
      );
    }
    const languages = options.languagesOf?.(forModel) ?? null;
    if (languages !== null && !languages.includes(v)) {
      throw new AppError(
        'INVALID_FIELD',
        `language ${quote(v)} is not recognised by model ${quote(forModel)}; it recognises: ${languages.join(', ')}`,
        {
          details: { field: 'language', languages: [...languages] },
        },
      );
    }
    return v;
  }

  function prompt(raw: string | undefined): string | null {
    if (raw === undefined) return null;
    const chars = [...raw].length;
    if (chars > maxPromptChars) {
      throw invalid('prompt', `prompt has ${chars} characters; shorten it to at most ${maxPromptChars}`);
    }
    return raw;
  }

  function model(raw: string | undefined): string {
    if (raw === undefined) return options.defaultModel;
    const v = raw.trim();
    if (!models.has(v)) {
      throw new AppError('INVALID_FIELD', `model ${quote(v)} is not available; use one of: ${[...models].join(', ')}`, {
        details: { field: 'model', models: [...models] },
      });
    }
    return v;
  }

  function metadata(raw: string | undefined): Record<string, unknown> | null {
    if (raw === undefined) return null;
    const bytes = Buffer.byteLength(raw, 'utf8');
    if (bytes > maxMetadataBytes) {
      throw invalid('metadata', `metadata is ${bytes} bytes; keep it at most ${maxMetadataBytes} bytes of JSON`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw invalid('metadata', 'metadata is not valid JSON; send a JSON object such as {"ref":"abc"}');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      const kind = Array.isArray(parsed) ? 'an array' : parsed === null ? 'null' : `a ${typeof parsed}`;
      throw invalid('metadata', `metadata is ${kind}; send a JSON object such as {"ref":"abc"}`);
    }
    return parsed as Record<string, unknown>;
  }

  function callbackUrl(raw: string | undefined): string | null {
    if (raw === undefined) return null;
    const result = checkCallbackUrl(raw.trim(), {
      allowPrivate: options.allowPrivateCallbacks ?? false,
      ...(options.callbackPorts !== undefined && { ports: options.callbackPorts }),
    });
    if (!result.ok) throw invalid('callback_url', `callback_url ${result.reason}`);
    return result.url;
  }

  function maxCost(raw: string | undefined): number | null {
    if (raw === undefined) return null;
    const v = raw.trim();
    const n = /^(?:\d+(?:\.\d*)?|\.\d+)$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isFinite(n) || n <= 0) {
      throw invalid('max_cost_usd', `max_cost_usd ${quote(v)} is not a positive number of dollars; send e.g. "2.50"`);
    }
    return n;
  }

  function dryRun(raw: string | undefined): boolean {
    if (raw === undefined) return false;
    const v = raw.trim().toLowerCase();
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw invalid('dry_run', `dry_run ${quote(raw)} is not a boolean; send true, false, 1 or 0`);
  }

  function context(raw: string | undefined): ContextMode {
    if (raw === undefined) return 'none';
    const v = raw.trim();
    if (v === 'none' || v === 'sequential') return v;
    throw invalid('context', `context ${quote(v)} is not accepted; send "none" or "sequential"`);
  }

  return {
    validate(fields) {
      const started = performance.now();
      for (const name of Object.keys(fields)) {
        if (name === 'file') {
          throw invalid('file', 'file was sent as a text field; send the audio as a file part named "file"');
        }
        if (!isFieldName(name)) {
          throw invalid(
            name.slice(0, 64),
            `unknown field ${quote(name)}; the accepted fields are file, ${ACCEPTED_FIELDS.join(', ')}`,
          );
        }
      }
      // The model first: which languages are accepted depends on it.
      const chosenModel = model(single(fields, 'model'));
      const request: JobRequest = {
        language: language(single(fields, 'language'), chosenModel),
        prompt: prompt(single(fields, 'prompt')),
        model: chosenModel,
        metadata: metadata(single(fields, 'metadata')),
        callback_url: callbackUrl(single(fields, 'callback_url')),
        max_cost_usd: maxCost(single(fields, 'max_cost_usd')),
        context: context(single(fields, 'context')),
      };
      const result = {
        request,
        dryRun: dryRun(single(fields, 'dry_run')),
        context: request.context ?? 'none',
      };
      return { ...result, ms: performance.now() - started };
    },
  };
}
