import type { Logger } from 'pino';
import { AppError } from '../errors.ts';
import type { CostEstimate } from '../jobs/types.ts';
import { isKnownModel, resolveModel } from '../transcribe/models.ts';
import type { ProviderName } from '../transcribe/types.ts';

/** USD per minute of audio for a provider's model, or undefined when the catalogue does not know it. */
export type PriceLookup = (provider: ProviderName, model: string) => number | undefined;

export interface CostEstimatorOptions {
  logger: Logger;
  provider: ProviderName;
  /**
   * @default the catalogue (src/transcribe/models.ts); an OpenAI-compatible model it does not know is priced
   * at the highest known OpenAI price, so an estimate never undershoots.
   */
  priceLookup?: PriceLookup;
  /**
   * Whether the price priceLookup gives for a model is a real one (else a stand-in, logged once).
   * @default true with a priceLookup, else whether the catalogue knows the model
   */
  isPriced?: (model: string) => boolean;
  /**
   * Raw PRICE_PER_MINUTE_JSON: an object of USD per minute keyed by "provider:model" or by bare model name,
   * e.g. {"whisper-1":0.006,"openai:gpt-4o-mini-transcribe":0.003}. Overrides the catalogue.
   */
  priceOverridesJson?: string;
  /** Server-wide cap on one job's estimate in USD. @default none */
  maxJobCostUsd?: number | null;
}

export interface CostEstimateInput {
  durationS: number;
  model: string;
  /** The chunks the plan is expected to make (chunk-source.ts plannedChunks). */
  plannedChunks: number;
  /**
   * Seconds each chunk after a hard cut starts with of the one before (chunk-source.ts planned().overlapS), which
   * the provider bills again. Every planned cut counts: which ones find a pause is known only once the file is cut.
   */
  overlapS: number;
}

export interface CostEstimateResult {
  estimate: CostEstimate;
  pricePerMinuteUsd: number;
  /** False when neither the overrides nor the catalogue know the model (the price is a stand-in). */
  priced: boolean;
  /** The most seconds of audio the chunks will carry: the duration and the overlap at every planned cut. */
  billedS: number;
  ms: number;
}

export interface CostEstimator {
  /** Prices the most the chunks will send, so the estimate (and the budget checks on it) never undershoots. */
  estimate(input: CostEstimateInput): CostEstimateResult;
  /** Throws 422 BUDGET_EXCEEDED when the estimate is above the request's max_cost_usd or the server cap. */
  checkBudget(estimate: CostEstimate, maxCostUsd: number | null): { ms: number };
}

/** Parses PRICE_PER_MINUTE_JSON; throws TypeError quoting the bad entry (a configuration mistake, found at start). */
export function parsePriceOverrides(raw: string | undefined): Map<string, number> {
  const prices = new Map<string, number>();
  if (raw === undefined || raw.trim() === '') return prices;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new TypeError(`PRICE_PER_MINUTE_JSON is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TypeError('PRICE_PER_MINUTE_JSON must be a JSON object of USD per minute, e.g. {"whisper-1":0.006}');
  }
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new TypeError(
        `PRICE_PER_MINUTE_JSON[${JSON.stringify(key)}] must be a number >= 0, got ${JSON.stringify(value)}`,
      );
    }
    prices.set(key, value);
  }
  return prices;
}

/** Rounded to a millionth of a dollar so sums and comparisons do not show float noise. */
function usd(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}

export function createCostEstimator(options: CostEstimatorOptions): CostEstimator {
  const { logger, provider } = options;
  const overrides = parsePriceOverrides(options.priceOverridesJson);
  const cap = options.maxJobCostUsd ?? null;
  if (cap !== null && !(cap > 0)) throw new TypeError(`maxJobCostUsd must be > 0, got ${String(cap)}`);
  const warnedUnpriced = new Set<string>();

  const lookup: PriceLookup = options.priceLookup ?? ((p, m) => resolveModel(p, m).pricePerMinuteUsd);
  const catalogued =
    options.isPriced ?? ((model: string) => options.priceLookup !== undefined || isKnownModel(provider, model));

  function priceOf(model: string): { price: number | undefined; priced: boolean } {
    const override = overrides.get(`${provider}:${model}`) ?? overrides.get(model);
    if (override !== undefined) return { price: override, priced: true };
    const price = lookup(provider, model);
    return { price, priced: price !== undefined && catalogued(model) };
  }

  return {
    estimate({ durationS, model, plannedChunks, overlapS }) {
      const started = performance.now();
      if (!(overlapS >= 0)) throw new TypeError(`overlapS must be >= 0, got ${String(overlapS)}`);
      const { price, priced } = priceOf(model);
      if (!priced && !warnedUnpriced.has(model)) {
        warnedUnpriced.add(model);
        logger.warn(
          { provider, model, pricePerMinuteUsd: price ?? 0 },
          'no price known for model; set PRICE_PER_MINUTE_JSON',
        );
      }
      const billedS = durationS + Math.max(0, plannedChunks - 1) * overlapS;
      const pricePerMinuteUsd = price ?? 0;
      return {
        estimate: { cost_usd: usd((billedS / 60) * pricePerMinuteUsd), provider, model },
        pricePerMinuteUsd,
        priced,
        billedS,
        ms: performance.now() - started,
      };
    },
    checkBudget(estimate, maxCostUsd) {
      const started = performance.now();
      const limits: Array<['request' | 'server', number]> = [];
      if (maxCostUsd !== null) limits.push(['request', maxCostUsd]);
      if (cap !== null) limits.push(['server', cap]);
      for (const [limit, max] of limits) {
        if (estimate.cost_usd > max) {
          const what = limit === 'request' ? 'your max_cost_usd' : "this server's limit per job";
          throw new AppError(
            'BUDGET_EXCEEDED',
            `The estimated cost $${estimate.cost_usd.toFixed(4)} is above ${what} ($${max}); ` +
              (limit === 'request' ? 'raise max_cost_usd or send a shorter recording.' : 'send a shorter recording.'),
            { details: { estimate_usd: estimate.cost_usd, max_cost_usd: max, limit } },
          );
        }
      }
      return { ms: performance.now() - started };
    },
  };
}
