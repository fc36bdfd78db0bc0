export { checkCallbackUrl, type CallbackUrlOptions, type CallbackUrlResult } from './callback-url.ts';
export {
  createCostEstimator,
  parsePriceOverrides,
  type CostEstimateResult,
  type CostEstimator,
  type CostEstimatorOptions,
  type PriceLookup,
} from './cost-estimator.ts';
export {
  createValidationGate,
  type CheckName,
  type CheckRecord,
  type GateInput,
  type GateResult,
  type ValidationGate,
  type ValidationGateDeps,
} from './gate.ts';
export {
  createMediaValidator,
  headerIsSuspicious,
  judgeDuration,
  type MediaDecodeChecker,
  type MediaProber,
  type MediaValidationInput,
  type MediaValidationResult,
  type MediaValidator,
  type MediaValidatorOptions,
} from './media-validator.ts';
export {
  createProviderValidator,
  type ProviderCheckResult,
  type ProviderStatus,
  type ProviderValidator,
  type ProviderValidatorOptions,
} from './provider-validator.ts';
export {
  ACCEPTED_FIELDS,
  createRequestValidator,
  type ContextMode,
  type RequestValidator,
  type RequestValidatorOptions,
  type TextFields,
  type ValidatedFields,
} from './request-validator.ts';
export {
  createSystemValidator,
  requiredDiskBytes,
  type SystemCheckInput,
  type SystemCheckResult,
  type SystemValidator,
  type SystemValidatorOptions,
} from './system-validator.ts';
