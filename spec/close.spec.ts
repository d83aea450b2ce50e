// close() releases everything the store opened (no socket, no timer keeps the process alive afterwards), and a refused
// port fails with its own words, not as a timeout; each in a process of its own, on the stores opened by URL.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CLUSTER_URL,
  ETCD_URL,
  MEMCACHE_URL,
  mustRun,
  MYSQL_URL,
  POSTGRES_URL,
  REDIS_URL,
  reachable,
  VALKEY_CLUSTER_URL,
  VALKEY_URL,
  BACKENDS,
} from './support/servers.js';

const INDEX = join(import.meta.dirname, '..', 'dist', 'esm', 'index.js');

// After close(), sockets get a moment to finish closing; what is still there then (but the child's own
// stdio pipes) would keep the process alive: a 2 s timer left by a driver shows up as a Timeout.
const HELPERS = `
const settle = () => new Promise((resolve) => setTimeout(resolve, 200));
const left = () => process.getActiveResourcesInfo().filter((kind) => kind !== 'PipeWrap' && kind !== 'TTYWrap');
`;

/**
 * Runs `body` (an async function body with `kvSession` in scope) in a new Node process; its last stdout line, parsed.
 */
function inChild(body: string): unknown {
  const script = `import { kvSession } from ${JSON.stringify(INDEX)};\n${HELPERS}\n${body}`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  const line = result.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`child printed no JSON (exit ${result.status}):\n${result.stdout}\n${result.stderr}`);
  }
}

const STORES: ReadonlyArray<readonly [string, string]> = [
  ['redis', REDIS_URL],
  ['redis-cluster', CLUSTER_URL],
  ['valkey', VALKEY_URL],
  ['valkey-cluster', VALKEY_CLUSTER_URL],
  ['postgres', POSTGRES_URL],
  ['mariadb', MYSQL_URL],
  ['memcached', MEMCACHE_URL],
  ['etcd', ETCD_URL],
];

describe.each(STORES)('close() on %s', (name, url) => {
  it('leaves no socket and no timer behind: the process could exit at once', async (context) => {
    if (!(await reachable(url))) {
      const backend = BACKENDS.find((b) => b.name === name);
      if (backend !== undefined && mustRun(backend)) throw new Error(`${name} is required at ${url}`);
      return context.skip(`${name} not reachable at ${url}`);
    }
    // What is left behind is tested, not how fast a child process connects: 10 s for its first connection (a Redis
    // Cluster's took over 2 s once in CI, beside the rest of the suite).
    const left = inChild(`
      const sessions = kvSession({ store: ${JSON.stringify(url)}, keyPrefix: 'close-spec:', storeTimeout: 10000 });
      await sessions.ready();
      await sessions.close();
      await settle();
      console.log(JSON.stringify(left()));
    `);
    expect(left).toEqual([]);
  });
});

describe('a refused port', () => {
  it.each([
    ['redis', 'redis://127.0.0.1:1'],
    ['postgres', 'postgres://postgres@127.0.0.1:1/test'],
  ])('on %s fails ready() naming the refusal, not as a timeout, and leaves nothing behind', (_, url) => {
    const outcome = inChild(`
      const sessions = kvSession({ store: ${JSON.stringify(url)}, storeTimeout: 5000 });
      let message;
      try { await sessions.ready(); } catch (error) { message = error.message; }
      await sessions.close();
      await settle();
      console.log(JSON.stringify({ message, left: left() }));
    `) as { message: string; left: string[] };
    expect(outcome.message).toMatch(/ECONNREFUSED/);
    expect(outcome.message).not.toMatch(/did not answer/);
    expect(outcome.left).toEqual([]);
  });
});

describe('ready() with a store that never answers', () => {
  it('rejects within about storeTimeout, in a process with nothing else to keep it alive', () => {
    const script = `import { kvSession } from ${JSON.stringify(INDEX)};
      const never = () => new Promise(() => {});
      const sessions = kvSession({ store: { get: never, set: never, delete: never }, storeTimeout: 1500 });
      const started = Date.now();
      const outcome = await sessions.ready().then(() => 'resolved', (error) => error.code);
      console.log(JSON.stringify({ outcome, ms: Date.now() - started }));`;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    // Exit code 13 is Node's "unsettled top-level await": the process ended with ready() pending.
    expect(result.status).toBe(0);
    const { outcome, ms } = JSON.parse(result.stdout.trim()) as { outcome: string; ms: number };
    expect(outcome).toBe('SESSION_STORE_TIMEOUT');
    // One storeTimeout, not two (the probe started by kvSession() is the one awaited).
    expect(ms).toBeLessThan(2700);
  });
});
