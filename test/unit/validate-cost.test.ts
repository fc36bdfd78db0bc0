import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import { createCostEstimator, parsePriceOverrides } from '../../src/validate/cost-estimator.ts';

const logger = pino({ level: 'silent' });

function budgetError(run: () => unknown): AppError {
  try {
    run();
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error('expected BUDGET_EXCEEDED');
}

describe('cost estimator', () => {
  it('prices duration minutes at the catalogue price of the provider model', () => {
    const e = createCostEstimator({ logger, provider: 'openai' });
    const r = e.estimate({ durationS: 600, model: 'whisper-1', plannedChunks: 1, overlapS: 0 });
    expect(r.estimate).toEqual({ cost_usd: 0.06, provider: 'openai', model: 'whisper-1' });
    expect(r.pricePerMinuteUsd).toBe(0.006);
    expect(r.priced).toBe(true);
    expect(
      e.estimate({ durationS: 600, model: 'gpt-4o-mini-transcribe', plannedChunks: 1, overlapS: 0 }).estimate.cost_usd,
    ).toBe(0.03);
  });

  it('prices the local model at zero', () => {
    const e = createCostEstimator({ logger, provider: 'local' });
    expect(
      e.estimate({ durationS: 3600, model: 'pocketsphinx-en-us', plannedChunks: 6, overlapS: 4 }).estimate.cost_usd,
    ).toBe(0);
  });

  it('prices an unknown OpenAI-compatible model at the highest known price and says it is unpriced', () => {
    const r = createCostEstimator({ logger, provider: 'openai' }).estimate({
      durationS: 60,
      model: 'my-whisper',
      plannedChunks: 1,
      overlapS: 0,
    });
    expect(r.priced).toBe(false);
    expect(r.pricePerMinuteUsd).toBe(0.006);
  });

  it('adds the overlap each chunk after the first re-sends', () => {
    const e = createCostEstimator({ logger, provider: 'openai' });
    const r = e.estimate({ durationS: 1800, model: 'whisper-1', plannedChunks: 3, overlapS: 1 });
    expect(r.billedS).toBe(1802);
    expect(r.estimate.cost_usd).toBe(0.1802);
  });

  it('refuses a negative overlap', () => {
    const e = createCostEstimator({ logger, provider: 'openai' });
    expect(() => e.estimate({ durationS: 60, model: 'whisper-1', plannedChunks: 2, overlapS: -1 })).toThrow(/overlapS/);
  });

  it('lets PRICE_PER_MINUTE_JSON override the catalogue, provider:model before bare model', () => {
    const e = createCostEstimator({
      logger,
      provider: 'openai',
      priceOverridesJson: '{"whisper-1":0.01,"openai:gpt-4o-transcribe":0.02,"gpt-4o-transcribe":0.5}',
    });
    expect(e.estimate({ durationS: 60, model: 'whisper-1', plannedChunks: 1, overlapS: 0 }).estimate.cost_usd).toBe(
      0.01,
    );
    expect(
      e.estimate({ durationS: 60, model: 'gpt-4o-transcribe', plannedChunks: 1, overlapS: 0 }).estimate.cost_usd,
    ).toBe(0.02);
  });

  it.each([
    ['not json', '{whisper:1}', /not valid JSON/],
    ['an array', '[0.006]', /JSON object/],
    ['a negative price', '{"whisper-1":-1}', /whisper-1/],
    ['a string price', '{"whisper-1":"0.006"}', /whisper-1/],
  ])('refuses PRICE_PER_MINUTE_JSON that is %s', (_, raw, message) => {
    expect(() => parsePriceOverrides(raw)).toThrow(message);
  });

  it('reads an empty PRICE_PER_MINUTE_JSON as no overrides', () => {
    expect(parsePriceOverrides('  ').size).toBe(0);
    expect(parsePriceOverrides(undefined).size).toBe(0);
  });
});

describe('budget check', () => {
  const e = createCostEstimator({ logger, provider: 'openai', maxJobCostUsd: 1 });
  const estimate = { cost_usd: 0.5, provider: 'openai' as const, model: 'whisper-1' };

  it('passes an estimate within the request budget and the server cap', () => {
    expect(e.checkBudget(estimate, 0.5).ms).toBeGreaterThanOrEqual(0);
    expect(() => e.checkBudget(estimate, null)).not.toThrow();
  });

  it('answers 422 BUDGET_EXCEEDED above the request max_cost_usd', () => {
    const err = budgetError(() => e.checkBudget(estimate, 0.49));
    expect(err.code).toBe('BUDGET_EXCEEDED');
    expect(err.statusCode).toBe(422);
    expect(err.details).toEqual({ estimate_usd: 0.5, max_cost_usd: 0.49, limit: 'request' });
    expect(err.message).toContain('max_cost_usd');
  });

  it('answers 422 BUDGET_EXCEEDED above the server cap even without a request budget', () => {
    const err = budgetError(() => e.checkBudget({ ...estimate, cost_usd: 1.2 }, null));
    expect(err.details).toEqual({ estimate_usd: 1.2, max_cost_usd: 1, limit: 'server' });
  });

  it('refuses a non-positive server cap', () => {
    expect(() => createCostEstimator({ logger, provider: 'openai', maxJobCostUsd: 0 })).toThrow(/maxJobCostUsd/);
  });
});
