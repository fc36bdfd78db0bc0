import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { createS3Uploads, localUploads, type UploadStore } from './upload-store.ts';

/**
 * The upload store the configuration asks for. The AWS SDK (about 30 MiB of RSS once loaded) is imported only when
 * STORAGE_URL is set: the default single process on local disk does not pay for it.
 */
export async function createUploadStore(
  config: Pick<Config, 'objectStore' | 'pressure'>,
  logger: Logger,
  options: { putLimitMs?: (bytes: number) => number } = {},
): Promise<UploadStore> {
  if (!config.objectStore) return localUploads;
  const { createS3ObjectStore } = await import('./object-store.ts');
  return createS3Uploads({
    objects: createS3ObjectStore(config.objectStore),
    logger: logger.child({ component: 'object-store' }),
    retryAfterS: config.pressure.retryAfterS,
    ...options,
  });
}
