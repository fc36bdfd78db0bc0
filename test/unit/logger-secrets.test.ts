import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';

const PASSWORD = 'redis-password-SECRET-0123';

/** What ioredis throws when AUTH fails: the failed command, with the password among its arguments, on the error. */
function replyError(): Error & { command: { name: string; args: string[] } } {
  return Object.assign(new Error('WRONGPASS invalid username-password pair or user is disabled.'), {
    name: 'ReplyError',
    command: { name: 'hello', args: ['3', 'AUTH', 'default', PASSWORD] },
  });
}

function capture() {
  const lines: string[] = [];
  const logger = createLogger({ logLevel: 'info' }, { write: (line: string) => void lines.push(line) });
  return { logger, lines };
}

describe('the logger never writes the arguments of a failed command', () => {
  it('drops command.args of an error however it is logged and however deep it sits, and leaves the error as it was', () => {
    const { logger, lines } = capture();
    const direct = replyError();
    logger.error({ err: direct }, 'redis error');
    logger.error(replyError());
    logger.error(
      { err: new AppError('INTERNAL', 'could not queue', { cause: replyError() }) },
      'wrapped, cause not enumerable',
    );
    logger.error(
      { err: Object.assign(new Error('wrapped'), { cause: { command: replyError().command } }) },
      'plain cause',
    );
    logger.error(
      {
        err: Object.assign(new Error('outer'), {
          inner: replyError(),
          details: { a: { b: [{ command: replyError().command }] } },
        }),
      },
      'nested',
    );
    logger.error({ err: new AggregateError([replyError(), replyError()], 'two failed') }, 'aggregate');
    logger.warn({ command: replyError().command }, 'top-level command');
    logger.warn({ redis: { command: replyError().command } }, 'command one level down');
    const deep = {
      err: Object.assign(new Error('deep'), {
        a: { b: { c: { d: { e: { f: { g: { h: { i: { command: replyError().command } } } } } } } } },
      }),
    };
    logger.error(deep, 'deeper than the serializer walks');

    expect(lines).toHaveLength(9);
    for (const line of lines) expect(line).not.toContain(PASSWORD);
    // The rest is still there: the error, its message, the command's name.
    const first = JSON.parse(lines[0]!) as { err: { type: string; message: string; command: unknown } };
    expect(first.err).toMatchObject({
      type: 'Error',
      message: 'WRONGPASS invalid username-password pair or user is disabled.',
      command: { name: 'hello', args: '[redacted]' },
    });
    expect((JSON.parse(lines[1]!) as { err: { command: unknown } }).err.command).toEqual({
      name: 'hello',
      args: '[redacted]',
    });
    expect((JSON.parse(lines[5]!) as { err: { aggregateErrors: unknown[] } }).err.aggregateErrors).toEqual([
      expect.objectContaining({ command: { name: 'hello', args: '[redacted]' } }),
      expect.objectContaining({ command: { name: 'hello', args: '[redacted]' } }),
    ]);
    // Logging copies: the error the code still holds keeps its command.
    expect(direct.command.args).toEqual(['3', 'AUTH', 'default', PASSWORD]);
  });

  it('writes circular errors once and still without command arguments', () => {
    const { logger, lines } = capture();
    const err = Object.assign(replyError(), { self: null as unknown });
    err.self = err;
    logger.error({ err }, 'circular');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain(PASSWORD);
  });
});
