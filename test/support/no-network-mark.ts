/** What test/support/no-network.ts writes to stderr when a process it guards tries to reach the network. */
export const NETWORK_ATTEMPT_MARK = 'NETWORK ATTEMPT REFUSED';
