import { AppError } from '../errors.ts';

/** Without a signing secret a receiver could not tell our calls from anyone's: callbacks are refused at upload. */
export function assertCallbackAccepted(callbackUrl: string | null, secret: string | undefined): void {
  if (callbackUrl !== null && secret === undefined) {
    throw new AppError(
      'INVALID_FIELD',
      'callback_url is not available: this server has no WEBHOOK_SECRET to sign callbacks with.',
      {
        details: { field: 'callback_url' },
      },
    );
  }
}
