import { isIPv4, isIPv6 } from 'node:net';

/**
 * Pure: the client an address counts as, wherever something is budgeted per client address (failed credentials,
 * open mode's uploads and event streams). An IPv6 client is its /64, the block one host or home is given (SLAAC
 * and privacy addresses rotate inside it at will), so rotating addresses neither buys more budget nor floods a
 * table; an IPv4-mapped address is its IPv4 address. Anything else counts as it is written.
 */
export function clientOf(address: string): string {
  const bare = address.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare)?.[1];
  if (mapped !== undefined && isIPv4(mapped)) return mapped;
  if (!isIPv6(bare)) return address;
  const [head = '', tail] = bare.toLowerCase().split('::');
  const groups = (part: string | undefined): string[] => (part ? part.split(':') : []);
  const front = groups(head);
  // An IPv4 tail (64:ff9b::198.18.0.1) stands for the last two groups, never the first four.
  const back = groups(tail);
  const all =
    tail === undefined ? front : [...front, ...Array<string>(8 - front.length - back.length).fill('0'), ...back];
  return `${all
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
