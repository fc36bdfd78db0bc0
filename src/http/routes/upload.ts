import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type } from '../json-schema.ts';
import { ACCEPTED_JOB_EXAMPLE, DRY_RUN_EXAMPLE } from '../examples.ts';
import { errorResponses, jsonResponse } from '../response-schemas.ts';
import { DryRunEstimate, UploadForm, UploadHeaders } from '../schemas.ts';
import { publicAudio, toJobResource } from '../job-resource.ts';
import type { JobRecord } from '../../jobs/types.ts';
import { RATE_LIMITED_ROUTE } from '../plugins/upload-rate-limit.ts';
import type { Services } from '../services.ts';
import { UPLOAD_ERROR_CODES, type JobUploads, type UploadRoute } from './upload-job.ts';

export default async function uploadRoutes(
  app: FastifyInstance,
  opts: { services: Services; uploads: JobUploads },
): Promise<void> {
  const { services, uploads } = opts;
  const form: UploadRoute = { fields: (received) => services.validateFields(received.fields) };

  const schema = {
    summary: 'Upload a recording and start a job',
    description:
      'multipart/form-data with one `file` part and optional fields. The form is streamed to disk and checked by the ' +
      'route itself (size while it streams, then the fields, then the media), so this schema documents it without ' +
      'being applied. With dry_run=true: 200 with the estimate, nothing kept. A body that stalls or arrives too ' +
      'slowly is refused with 408. A repeated Idempotency-Key is read whole and compared with the request that first ' +
      'used it: the same request answers that job, another one 422 IDEMPOTENCY_KEY_REUSED.',
    operationId: 'createJob',
    tags: ['jobs'],
    consumes: ['multipart/form-data'],
    body: UploadForm,
    headers: UploadHeaders,
    response: {
      202: jsonResponse(
        'Accepted; Location names the job. A replayed Idempotency-Key answers the same job.',
        Type.Ref('JobResource'),
        ACCEPTED_JOB_EXAMPLE,
        {
          location: Type.String({ description: 'The job: /v1/jobs/{id}.' }),
          'idempotent-replayed': Type.Literal('true', {
            description: 'Sent when an earlier upload with the same Idempotency-Key answers.',
          }),
        },
      ),
      200: jsonResponse('dry_run=true: the estimate; nothing was kept.', DryRunEstimate, DRY_RUN_EXAMPLE),
      ...errorResponses(...UPLOAD_ERROR_CODES),
    },
  };

  app.post(
    '/v1/jobs',
    {
      schema,
      config: RATE_LIMITED_ROUTE,
      // The schema is for the document: the streamed form and its header are validated by the handler, in order.
      validatorCompiler: () => () => true,
    },
    async (request, reply) => {
      const outcome = await uploads.accept(request, reply, form);
      if (outcome.kind === 'dry_run') {
        const { media } = outcome;
        return reply.code(200).send({
          dry_run: true,
          audio: publicAudio(media.audio),
          estimate: media.estimate,
          chunks_planned: media.plannedChunks,
        });
      }
      if (outcome.replayed) reply.header('idempotent-replayed', 'true');
      return sendJob(services, reply, outcome.job);
    },
  );
}

async function sendJob(services: Services, reply: FastifyReply, job: JobRecord) {
  const resource = toJobResource(job, await services.store.listChunkStates(job.id), Date.now());
  return reply.code(202).header('location', resource.links.self).send(resource);
}
