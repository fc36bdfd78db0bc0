import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import type { Place } from './place.ts';
import { until } from './until.ts';

/**
 * Hosts as Linux network namespaces, for tests that must prove nothing passes between two processes but the
 * network: each host has its own loopback and one interface on a bridge (in a namespace of its own), addressed in
 * 198.18.0.0/15, the range reserved for network tests (RFC 2544). The namespaces have no route anywhere else, so no
 * process in them can reach beyond the bridge. The test process itself joins the bridge by one veth with the
 * subnet's .254, to drive the hosts as a client would. Everything is named `cs<pid>-…` (the root veth `cs<pid>`):
 * a run removes what it made in remove(), and at the start whatever an earlier run left behind when it was killed
 * (its pid no longer lives). Needs root (CI runs as root): without it, creating the hosts throws, so the test fails.
 */

export interface NetnsHost extends Place {
  /** The name the test gave it (db, api, w1, …). */
  name: string;
  /** The namespace's name for `ip netns`. */
  ns: string;
}

export interface Netns {
  /** `cs<pid>`: every namespace and interface of this run starts with it. */
  prefix: string;
  /** The subnet of this run, e.g. 198.18.37.0/24. */
  subnet: string;
  /** The test process's own address on the bridge. */
  rootAddress: string;
  host(name: string): NetnsHost;
  /** Spawns `cmd args` inside the host's namespace (`ip netns exec`, which execs it: the child's pid is the command's). */
  exec(host: NetnsHost, cmd: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
  /** The pids of every process in the host's namespace now. */
  pids(host: NetnsHost): number[];
  /** Power-off: SIGKILL to every process in the namespace (no SIGTERM), until none is left. */
  killAll(host: NetnsHost): Promise<void>;
  /** Kills what still runs in the namespaces and deletes them and the root veth. Idempotent. */
  remove(): Promise<void>;
}

const NAME = /^cs(\d+)-[a-z0-9]+$/;
const ROOT_LINK = /^cs(\d+)$/;

function ip(args: readonly string[]): string {
  const result = spawnSync('ip', args, { encoding: 'utf8', timeout: 30_000 });
  if (result.error) throw new Error(`ip ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${result.stderr.trim()}`);
  return result.stdout;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const namespaces = (): string[] =>
  ip(['netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
const nsPids = (ns: string): number[] =>
  ip(['netns', 'pids', ns])
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((pid) => pid !== process.pid);

async function killNamespace(ns: string): Promise<void> {
  await until(
    () => {
      const pids = nsPids(ns);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Gone meanwhile.
        }
      }
      return pids.length === 0;
    },
    `every process in namespace ${ns} to die`,
    { timeoutMs: 10_000, everyMs: 50 },
  );
}

async function deleteNamespace(ns: string): Promise<void> {
  // A namespace deleted with processes left in it lives on unnamed: kill them first.
  await killNamespace(ns);
  ip(['netns', 'delete', ns]);
}

/** What a killed earlier run (its pid dead) left: its namespaces and root veth. */
async function removeLeftovers(): Promise<void> {
  for (const ns of namespaces()) {
    const m = NAME.exec(ns);
    if (m && !alive(Number(m[1]))) await deleteNamespace(ns);
  }
  for (const line of ip(['-o', 'link', 'show']).split('\n')) {
    const name = /^\d+: ([^:@]+)/.exec(line)?.[1] ?? '';
    const m = ROOT_LINK.exec(name);
    if (m && !alive(Number(m[1]))) ip(['link', 'delete', name]);
  }
}

/** A /24 of 198.18.0.0/15 no interface of this machine uses (runs in parallel each get their own). */
function freeSubnet(): string {
  const used = new Set(
    [...ip(['-o', '-4', 'addr', 'show']).matchAll(/inet (198\.1[89]\.\d+)\.\d+/g)].map((m) => m[1] ?? ''),
  );
  for (let i = 0; i < 512; i++) {
    const n = (process.pid + i) % 512;
    const net = `198.${18 + (n >> 8)}.${n & 255}`;
    if (!used.has(net)) return net;
  }
  throw new Error('no free /24 left in 198.18.0.0/15');
}

function assertRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'network namespaces need root: this test makes hosts with `ip netns add` and must run as root (CI does); ' +
        `running as uid ${String(process.getuid?.())}`,
    );
  }
  const probe = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) throw new Error('`ip` (iproute2) is not installed: apt-get install iproute2');
}

/**
 * Makes one namespace per name (at most 200, names of lower-case letters and digits), all on one bridge, the
 * loopback up in each; host i gets <subnet>.(i+1).
 */
export async function createNetns(names: readonly string[]): Promise<Netns> {
  assertRoot();
  if (names.length > 200 || names.some((n) => !/^[a-z0-9]{1,8}$/.test(n) || n === 'br')) {
    throw new Error(`host names must be 1-8 lower-case letters or digits, not "br": ${names.join(', ')}`);
  }
  try {
    await removeLeftovers();
  } catch (err) {
    throw new Error(`cannot make network namespaces (ip netns): ${(err as Error).message}`, { cause: err });
  }
  const prefix = `cs${process.pid}`;
  const net = freeSubnet();
  const bridgeNs = `${prefix}-br`;
  const made: string[] = [];
  const hosts = new Map<string, NetnsHost>();
  let removed = false;

  const remove = async () => {
    if (removed) return;
    removed = true;
    // Hosts first: their processes die with their interface still there, then the bridge and the root veth with it.
    for (const ns of made.reverse()) await deleteNamespace(ns).catch(() => undefined);
    spawnSync('ip', ['link', 'delete', prefix]);
  };

  try {
    ip(['netns', 'add', bridgeNs]);
    made.push(bridgeNs);
    ip(['-n', bridgeNs, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', bridgeNs, 'link', 'set', 'br0', 'up']);
    const plug = (port: string) => {
      ip(['-n', bridgeNs, 'link', 'set', port, 'master', 'br0']);
      ip(['-n', bridgeNs, 'link', 'set', port, 'up']);
    };
    for (const [i, name] of names.entries()) {
      const ns = `${prefix}-${name}`;
      ip(['netns', 'add', ns]);
      made.push(ns);
      const address = `${net}.${i + 1}`;
      // Both ends made inside their namespaces: the names need be unique only there.
      ip(['link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', `v-${name}`, 'netns', bridgeNs]);
      ip(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
      plug(`v-${name}`);
      hosts.set(name, {
        name,
        ns,
        host: address,
        wrap: (file, args) => ['ip', ['netns', 'exec', ns, file, ...args]],
      });
    }
    ip(['link', 'add', prefix, 'type', 'veth', 'peer', 'name', 'v-root', 'netns', bridgeNs]);
    ip(['addr', 'add', `${net}.254/24`, 'dev', prefix]);
    ip(['link', 'set', prefix, 'up']);
    plug('v-root');
  } catch (err) {
    await remove();
    throw new Error(`cannot make network namespaces (ip netns): ${(err as Error).message}`, { cause: err });
  }

  return {
    prefix,
    subnet: `${net}.0/24`,
    rootAddress: `${net}.254`,
    host(name) {
      const h = hosts.get(name);
      if (!h) throw new Error(`no host ${name} (made: ${[...hosts.keys()].join(', ')})`);
      return h;
    },
    exec(host, cmd, args, options = {}) {
      const [file, argv] = host.wrap(cmd, args);
      return spawn(file, argv, options);
    },
    pids: (host) => nsPids(host.ns),
    killAll: (host) => killNamespace(host.ns),
    remove,
  };
}
