import type { Logger } from 'pino';
import { createDecodeChecker, createProber } from '../chunker/index.ts';
import type { Config } from '../config.ts';
import type { Services } from '../http/services.ts';
import type { SystemMonitor } from '../resources/system-monitor.ts';
import type { BackendRegistry } from '../transcribe/backends.ts';
import {
  createMediaValidator,
  createRequestValidator,
  createSystemValidator,
  createValidationGate,
} from '../validate/index.ts';
import { assertCallbackAccepted } from '../webhooks/callback-policy.ts';
import type { BackendStages } from './backend-stages.ts';

/** What an upload goes through before it is a job: admission while its body streams, then the validation gate. */
export type Admission = Pick<Services, 'admit' | 'validateFields' | 'validateMedia'>;

export function createAdmission(
  config: Pick<Config, 'probeTimeoutS' | 'maxDurationS' | 'model' | 'webhooks'>,
  deps: { logger: Logger; monitor: SystemMonitor; registry: BackendRegistry; stages: BackendStages },
): Admission {
  const { logger, monitor, registry, stages } = deps;
  const systemValidator = createSystemValidator({ monitor, logger });
  const gate = createValidationGate({
    logger,
    system: systemValidator,
    media: createMediaValidator({
      logger,
      prober: createProber({ logger, timeoutS: config.probeTimeoutS }),
      decodeChecker: createDecodeChecker({ logger, timeoutS: config.probeTimeoutS }),
      maxDurationS: config.maxDurationS,
      // Asked of the chunk source that will cut the job (its model's backend: its engine's chunk length, the
      // model's caps, the pool's lanes), so the first answers count the chunks the slicer then makes.
      planned: (subject) => stages.chunks.planned(subject),
    }),
    provider: stages.validator,
    estimator: stages.estimator,
    fields: createRequestValidator({
      defaultModel: config.model,
      knownModels: registry.modelIds(),
      languagesOf: (model) => registry.model(model)?.languages ?? null,
      allowPrivateCallbacks: config.webhooks.allowPrivate,
      callbackPorts: config.webhooks.ports,
    }),
  });

  return {
    async admit(expectedBytes) {
      // The provider's answer comes in while the body streams, so the gate finds it cached; a lazily imported SDK
      // is loaded meanwhile too, not with the first chunk's request.
      stages.warmProviders();
      stages.prepareProviders();
      await systemValidator.check({ sizeBytes: expectedBytes ?? 0, durationS: null, uploadStored: false });
    },
    validateFields(fields) {
      const validated = gate.validateFields(fields);
      assertCallbackAccepted(validated.request.callback_url, config.webhooks.secret);
      return validated;
    },
    async validateMedia(input) {
      const result = await gate.validate(input);
      return { audio: result.audio, estimate: result.estimate, plannedChunks: result.plannedChunks };
    },
  };
}
