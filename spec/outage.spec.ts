// Store outages on real servers this test starts itself: requests fail fast with 503, nothing saved is lost, and the
// app recovers without a restart.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cookiePair, startApp, type TestApp } from './support/app.js';
import { REQUIRE_SERVERS, uniquePrefix } from './support/servers.js';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function which(binary: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Counters in N sessions, incremented by workers in a loop while the test breaks the store. */
async function underLoad(app: TestApp, sessions: number, breakAndRepair: () => Promise<void>) {
  const cookies: string[] = [];
  for (let i = 0; i < sessions; i++) cookies.push(cookiePair((await app.request('/')).setCookies[0]));
  const ok = new Array<number>(sessions).fill(1); // the seeding request counted 1
  const failed = new Array<number>(sessions).fill(0);
  const statuses = new Set<number>();
  let stop = false;
  const workers = cookies.map(async (cookie, i) => {
    while (!stop) {
      const started = Date.now();
      const reply = await fetch(`${app.url}/`, { headers: { cookie }, signal: AbortSignal.timeout(5000) });
      await reply.text();
      statuses.add(reply.status);
      if (reply.status === 200) ok[i] = (ok[i] as number) + 1;
      else failed[i] = (failed[i] as number) + 1;
      // No hang: every request answers within the store timeout plus slack.
      expect(Date.now() - started).toBeLessThan(4000);
      if (reply.status !== 200) await sleep(20);
    }
  });
  await sleep(300);
  await breakAndRepair();
  // Recovered without restarting the app: every session answers 200 again.
  const peek = async (cookie: string) => {
    for (let tries = 0; tries < 100; tries++) {
      const reply = await fetch(`${app.url}/peek`, { headers: { cookie } });
      if (reply.status === 200) return Number(await reply.text());
      await sleep(100);
    }
    return Number.NaN;
  };
  await Promise.all(cookies.map(peek));
  await sleep(200); // the workers make some successful requests after the outage too
  stop = true;
  await Promise.all(workers);
  const recovered = await Promise.all(cookies.map(peek));
  return { ok, failed, statuses, recovered };
}

/**
 * Only 200s and 503s were answered; every increment answered 200 is stored, and at most the unanswered ones besides (a
 * write cut off by the outage may have landed).
 */
function expectNothingLost({ ok, failed, statuses, recovered }: Awaited<ReturnType<typeof underLoad>>): void {
  expect([...statuses].sort()).toEqual([200, 503]);
  for (let i = 0; i < ok.length; i++) {
    expect(recovered[i]).toBeGreaterThanOrEqual(ok[i] as number);
    expect(recovered[i]).toBeLessThanOrEqual((ok[i] as number) + (failed[i] as number));
  }
}

const counterHandler = (ctx: import('koa').Context) => {
  if (ctx.path === '/peek') return String(ctx.session.n ?? 'missing');
  ctx.session.n = Number(ctx.session.n ?? 0) + 1;
  return String(ctx.session.n);
};

describe('Redis killed under load, then restarted', () => {
  const redisServer = which('redis-server');
  let dir: string;
  let port: number;
  let child: ChildProcess | undefined;

  async function startRedis(): Promise<void> {
    child = spawn(
      redisServer as string,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
      ],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 100; i++) {
      try {
        if (
          execFileSync('redis-cli', ['-p', String(port), 'ping'], {
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'ignore'],
          }).trim() === 'PONG'
        )
          return;
      } catch {
        // not up yet
      }
      await sleep(50);
    }
    throw new Error('redis-server did not start');
  }

  beforeAll(async () => {
    if (!redisServer) return;
    dir = mkdtempSync(join(tmpdir(), 'kvs-redis-'));
    port = await freePort();
    await startRedis();
  });
  afterAll(() => {
    child?.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('requests fail with 503 during the outage, saved sessions survive, and the app recovers', async (context) => {
    if (!redisServer) {
      if (REQUIRE_SERVERS) throw new Error('redis-server is required (KV_SESSION_REQUIRE_SERVERS=1)');
      context.skip('redis-server is not installed');
    }
    const app = await startApp(
      {
        store: `redis://127.0.0.1:${port}`,
        keyPrefix: uniquePrefix('outage'),
        storeTimeout: 800,
        refreshInterval: '1h',
      },
      counterHandler,
    );
    try {
      await app.middleware.ready();
      const underLoadResult = underLoad(app, 8, async () => {
        child?.kill('SIGKILL');
        await sleep(1000);
        await startRedis();
      });
      expectNothingLost(await underLoadResult);
    } finally {
      await app.close();
    }
  }, 60_000);
});

describe('PostgreSQL stopped, then started again', () => {
  const bin = existsSync('/usr/lib/postgresql')
    ? execFileSync('sh', ['-c', 'ls -d /usr/lib/postgresql/*/bin | tail -1'], { encoding: 'utf8' }).trim()
    : '';
  let dir: string;
  let port: number;
  const asPostgres = (command: string, args: string[]) =>
    execFileSync('runuser', ['-u', 'postgres', '--', join(bin, command), ...args], { encoding: 'utf8', stdio: 'pipe' });
  const start = () =>
    asPostgres('pg_ctl', [
      '-D',
      join(dir, 'data'),
      '-w',
      '-l',
      join(dir, 'log'),
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`,
      'start',
    ]);
  const stop = () => asPostgres('pg_ctl', ['-D', join(dir, 'data'), '-w', '-m', 'immediate', 'stop']);
  let usable = false;

  beforeAll(async () => {
    if (!bin || process.getuid?.() !== 0) return;
    dir = mkdtempSync(join(tmpdir(), 'kvs-pg-'));
    chownSync(
      dir,
      Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })),
      Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })),
    );
    port = await freePort();
    asPostgres('initdb', ['-D', join(dir, 'data'), '--auth=trust', '-U', 'postgres', '--no-sync']);
    start();
    usable = true;
  }, 60_000);
  afterAll(() => {
    if (usable) {
      try {
        stop();
      } catch {
        // already stopped
      }
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('requests fail with 503 while it is down, saved sessions survive, and the app recovers', async (context) => {
    if (!usable) {
      if (REQUIRE_SERVERS)
        throw new Error(
          'a private PostgreSQL cluster is required (KV_SESSION_REQUIRE_SERVERS=1): needs root and PostgreSQL binaries',
        );
      context.skip('cannot start a private PostgreSQL cluster here (needs root and PostgreSQL binaries)');
    }
    const app = await startApp(
      {
        store: `postgres://postgres@127.0.0.1:${port}/postgres`,
        keyPrefix: uniquePrefix('pg-outage'),
        storeTimeout: 800,
        refreshInterval: '1h',
      },
      counterHandler,
    );
    try {
      await app.middleware.ready();
      const underLoadResult = underLoad(app, 6, async () => {
        stop();
        await sleep(1000);
        start();
      });
      expectNothingLost(await underLoadResult);
    } finally {
      await app.close();
    }
  }, 60_000);
});
