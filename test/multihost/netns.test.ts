import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Client } from 'pg';
import { FAKE_OPENAI_KEY } from '../fake-openai/types.ts';
import { startFakeOpenAIProcess } from '../support/fake-openai-process.ts';
import { createNetns, type Netns } from '../support/netns.ts';
import { startTestPostgres } from '../support/postgres-server.ts';
import { startTestRedis } from '../support/redis-server.ts';
import { runCommand } from '../support/run-command.ts';
import { startS3Process } from '../support/s3-server.ts';

/** Runs `node -e script` in the host's namespace; resolves with its stdout (it prints what it could reach). */
async function nodeIn(netns: Netns, host: string, script: string): Promise<string> {
  const child = netns.exec(netns.host(host), process.execPath, ['-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((resolve) => child.once('close', resolve));
  return out.trim();
}

/** A script that tries a TCP connection and prints `open` or the error code. */
const probe = (host: string, port: number) =>
  `const s=require('net').connect(${port},'${host}');s.setTimeout(3000,()=>{console.log('timeout');s.destroy()});` +
  `s.on('connect',()=>{console.log('open');s.destroy()});s.on('error',e=>console.log(e.code))`;

const links = () => spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout;
const namespaces = () => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;

describe('hosts as network namespaces (test/support/netns.ts)', () => {
  let netns: Netns | undefined;
  afterAll(async () => netns?.remove());

  it('joins the hosts on one bridge, each with its own loopback, and removes everything it made', async () => {
    netns = await createNetns(['a', 'b']);
    const a = netns.host('a');
    // A listener on a's address and one on a's loopback.
    const server = netns.exec(
      a,
      process.execPath,
      [
        '-e',
        `const n=require('net');n.createServer(s=>s.end()).listen(7000,'${a.host}');` +
          `n.createServer(s=>s.end()).listen(7001,'127.0.0.1',()=>console.log('up'))`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise((resolve) => server.stdout?.once('data', resolve));
    expect(netns.pids(a)).toContain(server.pid);
    expect(await nodeIn(netns, 'b', probe(a.host, 7000))).toBe('open');
    // b's loopback is its own: a's 127.0.0.1 listener is not there.
    expect(await nodeIn(netns, 'b', probe('127.0.0.1', 7001))).toBe('ECONNREFUSED');
    expect(await nodeIn(netns, 'a', probe('127.0.0.1', 7001))).toBe('open');
    // The test process reaches the hosts through its veth; the hosts have no route beyond the bridge.
    expect(await nodeIn(netns, 'b', probe('198.51.100.1', 80))).toBe('ENETUNREACH');

    await netns.killAll(a);
    expect(netns.pids(a)).toEqual([]);
    await netns.remove();
    expect(namespaces()).not.toContain(`${netns.prefix}-`);
    expect(links()).not.toMatch(new RegExp(`: ${netns.prefix}[@:]`));
  });

  it("removes what a killed earlier run left (its pid dead), and nothing of a live run's", async () => {
    const dead = spawn('true');
    await new Promise((resolve) => dead.once('exit', resolve));
    const stale = `cs${dead.pid}`;
    spawnSync('ip', ['netns', 'add', `${stale}-db`]);
    spawnSync('ip', ['link', 'add', stale, 'type', 'veth', 'peer', 'name', `${stale}p`]);
    const live = `cs${process.ppid}-db`;
    spawnSync('ip', ['netns', 'add', live]);
    try {
      expect(namespaces()).toContain(`${stale}-db`);
      netns = await createNetns(['a']);
      expect(namespaces()).not.toContain(`${stale}-db`);
      expect(links()).not.toMatch(new RegExp(`: ${stale}[@:]`));
      expect(namespaces()).toContain(live);
    } finally {
      spawnSync('ip', ['netns', 'delete', live]);
      spawnSync('ip', ['netns', 'delete', `${stale}-db`]);
      spawnSync('ip', ['link', 'delete', stale]);
      await netns?.remove();
    }
  });

  it('runs the test servers on a host, reached at its address', async () => {
    netns = await createNetns(['db']);
    const db = netns.host('db');
    const pg = await startTestPostgres({ place: db, port: 5432 });
    const redis = await startTestRedis({ place: db, port: 6379 });
    const s3 = await startS3Process(db, 9000);
    const fake = await startFakeOpenAIProcess(db, { port: 8080, controlPort: 8081 });
    try {
      expect([pg.urlOf('x'), redis.url, s3.endpoint, fake.url]).toEqual([
        `postgres://chunkscribe@${db.host}:5432/x`,
        `redis://${db.host}:6379`,
        `http://${db.host}:9000`,
        `http://${db.host}:8080/v1`,
      ]);
      const client = new Client({ connectionString: pg.urlOf(await pg.createDatabase()) });
      await client.connect();
      expect((await client.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      await client.end();
      const listing = await fetch(`${s3.endpoint}/${s3.bucket}`);
      expect([listing.status, await listing.text()]).toEqual([200, expect.stringContaining('<ListBucketResult')]);
      expect(await s3.objects()).toEqual([]);
      const models = await fetch(`${fake.url}/models`, { headers: { authorization: `Bearer ${FAKE_OPENAI_KEY}` } });
      expect(models.status).toBe(200);
      const [entry] = await fake.requests();
      expect(entry).toMatchObject({ path: '/v1/models', remoteAddress: netns.rootAddress, status: 200 });
      // Every one of them runs in the namespace: a power-off of the host takes them all.
      expect(netns.pids(db).length).toBeGreaterThanOrEqual(4);
    } finally {
      await fake.close();
      await s3.close();
      await redis.stop();
      await pg.stop();
      await netns.remove();
    }
  });

  it('fails, saying why, where namespaces cannot be made (not root)', async () => {
    const harness = path.resolve(import.meta.dirname, '../support/netns.ts');
    const run = await runCommand('runuser', [
      '-u',
      'nobody',
      '--',
      process.execPath,
      '--input-type=module',
      '-e',
      `await import(${JSON.stringify(harness)}).then((m) => m.createNetns(['a']))`,
    ]);
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain('network namespaces need root');
  });
});
