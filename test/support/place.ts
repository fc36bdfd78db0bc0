/**
 * Where a test server runs: the address it listens on (and is reached at) and how a command is started there.
 * LOOPBACK is this machine as the tests always used it; a network namespace (test/support/netns.ts) is another
 * host, whose `wrap` prefixes `ip netns exec <ns>`.
 */
export interface Place {
  host: string;
  /** The command line that runs `file args` at this place. */
  wrap(file: string, args: readonly string[]): [string, string[]];
}

export const LOOPBACK: Place = { host: '127.0.0.1', wrap: (file, args) => [file, [...args]] };
