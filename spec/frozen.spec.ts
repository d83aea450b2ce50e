// A server that is up but does not answer (SIGSTOP, a hung process): the kernel accepts connections and
// bytes, nothing replies, nothing closes. close() must resolve and every operator command must exit within
// about storeTimeout plus a second, with nothing left holding the process. Each case runs in a process of its
// own, against a real server behind a proxy that stops forwarding (spec/support/fault-proxy.ts).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy, WRITES } from './support/fault-proxy.js';
import { MYSQL_URL, POSTGRES_URL, REDIS_URL, REQUIRE_SERVERS, reachable } from './support/servers.js';

const DIST = join(import.meta.dirname, '..', 'dist', 'esm');
const TIMEOUT = 1000;
// What "about storeTimeout plus a second" allows on a loaded 2-core machine.
const BOUND = TIMEOUT + 1000 + 800;

interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/**
 * Runs a Node process; `onLine` sees each stdout line as it comes and may answer once on its stdin (which then closes).
 */
function run(
  args: readonly string[],
  env: Record<string, string>,
  onLine?: (line: string, reply: (text: string) => void) => void,
): Promise<Outcome> {
  const started = Date.now();
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) onLine?.(line, (text) => child.stdin.end(text));
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

// In the child: what is still open after close() (but its own stdio pipes) would keep it alive.
const HELPERS = `
import { kvSession } from ${JSON.stringify(join(DIST, 'index.js'))};
const left = () => process.getActiveResourcesInfo().filter((kind) => kind !== 'PipeWrap' && kind !== 'TTYWrap');
const line = () => new Promise((resolve) => process.stdin.once('data', (data) => resolve(String(data).trim())));
const timed = async (work) => { const started = Date.now(); const outcome = await work.then(() => 'resolved', (error) => error.code ?? error.message); return { outcome, ms: Date.now() - started }; };
`;

const STORES = [
  { name: 'Redis', url: REDIS_URL, write: WRITES.redis },
  { name: 'PostgreSQL', url: POSTGRES_URL, write: WRITES.sql },
  { name: 'MariaDB', url: MYSQL_URL, write: WRITES.sql },
] as const;

describe.each(STORES)('$name up but not answering', ({ name, url, write }) => {
  let proxy: FaultProxy | undefined;
  let proxied = '';
  beforeAll(async () => {
    if (!(await reachable(url))) {
      if (REQUIRE_SERVERS) throw new Error(`${name} is required at ${url}`);
      return;
    }
    const target = new URL(url);
    proxy = await FaultProxy.start(`${target.hostname}:${target.port}`, { write });
    target.port = String(proxy.port);
    proxied = target.toString();
  });
  afterAll(async () => {
    await proxy?.close();
  });

  it('from its first connection: ready() fails within storeTimeout, close() resolves at once after, nothing is left', async (context) => {
    if (proxy === undefined) return context.skip(`${name} not reachable at ${url}`);
    proxy.freeze();
    const child = await run(
      [
        '--input-type=module',
        '-e',
        `${HELPERS}
      const sessions = kvSession({ store: ${JSON.stringify(proxied)}, keyPrefix: 'frozen-spec:', storeTimeout: ${TIMEOUT} });
      const ready = await timed(sessions.ready());
      const closed = await timed(sessions.close());
      await new Promise((resolve) => setTimeout(resolve, 200));
      console.log(JSON.stringify({ ready, closed, left: left() }));
    `,
      ],
      {},
    );
    proxy.freeze(false);
    const outcome = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}');
    expect(outcome.ready.outcome, child.stderr).toBe('SESSION_STORE_TIMEOUT');
    expect(outcome.ready.ms).toBeLessThan(BOUND);
    expect(outcome.closed).toMatchObject({ outcome: 'resolved' });
    expect(outcome.closed.ms).toBeLessThan(BOUND);
    expect(outcome.left).toEqual([]);
    expect(child.code).toBe(0);
  });

  it('after it stopped answering mid-life: a request gets 503 in time, close() resolves within storeTimeout, nothing is left', async (context) => {
    if (proxy === undefined) return context.skip(`${name} not reachable at ${url}`);
    const frozen = proxy;
    frozen.freeze(false);
    const child = await run(
      [
        '--input-type=module',
        '-e',
        `${HELPERS}
      const sessions = kvSession({ store: ${JSON.stringify(proxied)}, keyPrefix: 'frozen-spec:', storeTimeout: ${TIMEOUT}, keys: ['frozen-spec-key-0123456789'] });
      await sessions.ready();
      console.log('connected');
      await line();
      const revoke = await timed(sessions.revokeSession('A'.repeat(43)));
      console.log(JSON.stringify({ revoke }));
      const closed = await timed(sessions.close());
      await new Promise((resolve) => setTimeout(resolve, 200));
      console.log(JSON.stringify({ revoke, closed, left: left() }));
    `,
      ],
      {},
      (line, reply) => {
        if (line !== 'connected') return;
        frozen.freeze();
        reply('go\n');
      },
    );
    frozen.freeze(false);
    expect(child.code, `${child.stdout}\n${child.stderr}`).toBe(0);
    const outcome = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}');
    // A 503 either way: our deadline, or the driver's own timeout of the same length, whichever fires first.
    expect(outcome.revoke?.outcome, `${child.stdout}\n${child.stderr}`).toMatch(
      /^SESSION_STORE_(TIMEOUT|UNAVAILABLE)$/,
    );
    expect(outcome.revoke.ms).toBeLessThan(BOUND);
    expect(outcome.closed).toMatchObject({ outcome: 'resolved' });
    expect(outcome.closed.ms).toBeLessThan(BOUND);
    expect(outcome.left).toEqual([]);
    expect(child.code).toBe(0);
  });

  it('every operator command exits 1 within storeTimeout plus a second, saying the store timed out', async (context) => {
    if (proxy === undefined) return context.skip(`${name} not reachable at ${url}`);
    proxy.freeze();
    const env = { SESSION_STORE: proxied, SESSION_KEY_PREFIX: 'frozen-spec:', SESSION_STORE_TIMEOUT: `${TIMEOUT}ms` };
    const commands = [['stats'], ['list'], ['show', 'abcdef'], ['purge']];
    const outcomes = await Promise.all(commands.map((args) => run([join(DIST, 'cli', 'main.js'), ...args], env)));
    proxy.freeze(false);
    for (const [i, child] of outcomes.entries()) {
      const label = `${commands[i]?.join(' ')}: ${child.stderr}`;
      expect(child.code, label).toBe(1);
      expect(child.stderr, label).toMatch(/did not answer|timeout|ETIMEDOUT/i);
      // Four commands at once on two cores: each gets a little more room than one alone.
      expect(child.ms, label).toBeLessThan(BOUND + 1500);
    }
  });
});
