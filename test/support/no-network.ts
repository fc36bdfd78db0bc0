/**
 * Never imported by a test: preloaded (`node --import`) into a child process that must work offline. Any TCP
 * connection or name lookup it attempts is refused and reported on stderr with NETWORK_ATTEMPT_MARK, which the
 * test looks for: a tool that swallows the refused connection (telemetry, update checks) still leaves the mark.
 */
import dns from 'node:dns';
import net from 'node:net';
import { NETWORK_ATTEMPT_MARK } from './no-network-mark.ts';

function refuse(what: string): never {
  process.stderr.write(`${NETWORK_ATTEMPT_MARK}: ${what}\n`);
  throw new Error(`${NETWORK_ATTEMPT_MARK}: ${what}`);
}

net.Socket.prototype.connect = function connect(...args: unknown[]): never {
  refuse(`connect ${JSON.stringify(args[0])}`);
};
Object.assign(dns, { lookup: (hostname: string) => refuse(`lookup ${hostname}`) });
Object.assign(dns.promises, { lookup: (hostname: string) => refuse(`lookup ${hostname}`) });
