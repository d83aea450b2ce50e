// What a new user meets first: the README's Usage example, copied as it is after the README's install line, keeps a
// session; a Node that cannot open the default store fails at kvSession(), naming the fix; configuration that would
// fail later or silently is said at once.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyvFile } from 'keyv-file';
import { KeyvLru } from 'keyv-lru';
import { kvSession } from '../src/index.js';
import { asStore, type Reply, startApp } from './support/app.js';
import { HAS_NODE_SQLITE } from './support/servers.js';

const ROOT = join(import.meta.dirname, '..');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/**
 * A project folder where `koa` and `koa-kv-session` resolve as after `npm install koa-kv-session koa`, and nothing else
 * does.
 */
function project(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kvs-first-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(join(ROOT, 'node_modules', 'koa'), join(dir, 'node_modules', 'koa'));
  symlinkSync(ROOT, join(dir, 'node_modules', 'koa-kv-session'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'first-hour', private: true, type: 'module' }));
  return dir;
}
const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** Runs `file` in `dir` with no SESSION_* variables; its stdout. */
function run(
  dir: string,
  file: string,
  flags: string[] = [],
): { stdout: string; stderr: string; status: number | null } {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('SESSION_')));
  return spawnSync(process.execPath, [...flags, file], { cwd: dir, env, encoding: 'utf8', timeout: 30_000 });
}

describe('the README, as a new user reads it', () => {
  const install = /```sh\n(npm install [^\n]+)\n```/.exec(README)?.[1];
  const usage = /## Usage\n\n```ts\n([\s\S]*?)```/.exec(README)?.[1] ?? '';

  it('Install says `npm install koa-kv-session`, and Usage imports nothing else but koa', () => {
    expect(install).toBe('npm install koa-kv-session');
    const imported = [...usage.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
    expect(imported.sort()).toEqual(['koa', 'koa-kv-session']);
  });

  it('the demo section installs the dev dependencies (npm ci) before `npm start`, which builds before it serves', () => {
    const demo = /## The demo\n([\s\S]*?)\n## /.exec(README)?.[1] ?? '';
    expect(demo).toContain('`npm ci && npm start`');
    const scripts = (
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts;
    expect(scripts.start).toBe('npm run build && node examples/server.mjs');
  });

  it('the Usage example, as written, keeps a session across requests with only those two packages', () => {
    const dir = project();
    made.push(dir);
    expect(usage).toContain('app.listen(3000);');
    const driver = `
const base = 'http://127.0.0.1:' + server.address().port + '/';
const one = await fetch(base);
const cookie = one.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
const two = await fetch(base, { headers: { cookie } });
console.log(JSON.stringify([await one.text(), await two.text()]));
server.close();
`;
    writeFileSync(
      join(dir, 'app.mjs'),
      usage.replace(
        'app.listen(3000);',
        "const server = app.listen(0, '127.0.0.1');\nawait new Promise((r) => server.once('listening', r));",
      ) + driver,
    );
    const result = run(dir, 'app.mjs');
    expect(result.stderr).not.toMatch(/Error/);
    expect(JSON.parse(result.stdout.trim().split('\n').pop() ?? 'null')).toEqual(['1 views', '2 views']);
  });
});

describe('a store URL whose driver is not installed', () => {
  /**
   * A folder where koa-kv-session is installed as a user installs it (its dist and its own dependency), with no store
   * driver.
   */
  function bare(): string {
    const dir = mkdtempSync(join(tmpdir(), 'kvs-bare-'));
    made.push(dir);
    const pkg = join(dir, 'node_modules', 'koa-kv-session');
    mkdirSync(pkg, { recursive: true });
    writeFileSync(join(pkg, 'package.json'), readFileSync(join(ROOT, 'package.json')));
    symlinkSync(join(ROOT, 'dist'), join(pkg, 'dist'));
    for (const dependency of ['cbor-x', 'koa'])
      symlinkSync(join(ROOT, 'node_modules', dependency), join(dir, 'node_modules', dependency));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'no-driver', private: true, type: 'module' }));
    return dir;
  }

  it.each([
    ['redis://127.0.0.1:6379', '@keyv/redis'],
    ['postgres://app:hunter2@127.0.0.1:5432/app', 'pg'],
    ['mysql://root@127.0.0.1:3306/test', 'mysql2'],
    ['memcache://127.0.0.1:11211', '@keyv/memcache'],
    ['valkey://127.0.0.1:6379', '@keyv/valkey'],
  ])('%s fails at kvSession() with SESSION_ADAPTER_MISSING and the npm install line for %s', (url, needed) => {
    const dir = bare();
    writeFileSync(
      join(dir, 'app.mjs'),
      `import { kvSession } from 'koa-kv-session';
try { kvSession({ store: ${JSON.stringify(url)} }); console.log('started'); } catch (error) { console.log(error.code, error.message); }
`,
    );
    const { stdout } = run(dir, 'app.mjs');
    expect(stdout).toContain(
      `SESSION_ADAPTER_MISSING koa-kv-session: the store ${url.replace('hunter2', '****')} needs the ${needed} package, which is not installed: run \`npm install ${needed}\``,
    );
    expect(stdout).not.toContain('hunter2');
  });

  it.runIf(HAS_NODE_SQLITE)(
    'sqlite:// with ?driver=sqlite3 names sqlite3, and the node:sqlite it could use instead',
    () => {
      const dir = bare();
      writeFileSync(
        join(dir, 'app.mjs'),
        `import { kvSession } from 'koa-kv-session';
try { kvSession({ store: 'sqlite://./s.sqlite?driver=sqlite3' }); } catch (error) { console.log(error.message); }
`,
      );
      expect(run(dir, 'app.mjs').stdout).toContain(
        'asks for the sqlite3 package (?driver=sqlite3), which is not installed: run `npm install sqlite3`, or drop ?driver=sqlite3 to use the node:sqlite built into this Node',
      );
    },
  );
});

describe('a Node that cannot open the default store', () => {
  it('fails at kvSession() with SESSION_ADAPTER_MISSING naming the fix, not on every request; another store still works', () => {
    const dir = project();
    made.push(dir);
    writeFileSync(
      join(dir, 'check.mjs'),
      `import { kvSession } from 'koa-kv-session';
let thrown;
try { kvSession(); } catch (error) { thrown = { code: error.code, message: error.message }; }
const other = kvSession({ store: 'memory://' });
await other.close();
console.log(JSON.stringify(thrown ?? null));
`,
    );
    // Node 22 and later can turn node:sqlite off, as Node 20 never had it; sqlite3 does not resolve from this folder.
    const result = run(dir, 'check.mjs', ['--no-experimental-sqlite']);
    const thrown = JSON.parse(result.stdout.trim().split('\n').pop() ?? 'null') as {
      code: string;
      message: string;
    } | null;
    expect(thrown?.code).toBe('SESSION_ADAPTER_MISSING');
    expect(thrown?.message).toMatch(/default store \(sqlite:\/\/\.\/sessions\.sqlite/);
    expect(thrown?.message).toMatch(/npm install sqlite3/);
    expect(thrown?.message).toMatch(/SESSION_STORE/);
  });
});

describe('configuration that starts but would fail later, or silently', () => {
  /** The KvSessionWarnings emitted while `run` runs (and the tick after it). */
  async function warningsOf(run: () => unknown | Promise<unknown>): Promise<Array<{ code: string; message: string }>> {
    const seen: Array<{ code: string; message: string }> = [];
    const listener = (warning: Error & { code?: string }) => {
      if (warning.name === 'KvSessionWarning') seen.push({ code: warning.code as string, message: warning.message });
    };
    process.on('warning', listener);
    try {
      await run();
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', listener);
    }
    return seen;
  }

  it('an empty SESSION_SECRET_KEYS fails at kvSession(), naming the variable (it would be a 500 on every request of an app without app.keys)', () => {
    for (const value of ['', '  ']) {
      expect(() => kvSession({ store: 'memory://', env: { SESSION_SECRET_KEYS: value } })).toThrow(
        /SESSION_SECRET_KEYS.*set but empty/,
      );
    }
  });

  it('a misspelled SESSION_* variable is said, with the one it was meant to be', async () => {
    const seen = await warningsOf(async () =>
      kvSession({ store: 'memory://', env: { SESSION_LIFETIM: '1h', SESSION_COOKIE_SAMESIT: 'none' } }).close(),
    );
    expect(seen.map((w) => w.code)).toEqual(['KV_SESSION_UNKNOWN_VARIABLE', 'KV_SESSION_UNKNOWN_VARIABLE']);
    expect(seen[0]?.message).toMatch(/SESSION_LIFETIM is not one.*did you mean SESSION_LIFETIME\?/);
    expect(seen[1]?.message).toMatch(/did you mean SESSION_COOKIE_SAMESITE\?/);
  });

  it("an app's own SESSION_* variables, nothing like ours, are not warned about; near misses are", async () => {
    const env = { SESSION_LIB: 'x', SESSION_REDIS_PASSWORD: 'y', SESSION_SECRET: 'z', SESSION_STORE_TIMEOUTS: '1s' };
    const seen = await warningsOf(async () => kvSession({ store: 'memory://', env }).close());
    expect(seen.map((w) => w.message)).toEqual([
      'koa-kv-session: the environment variable SESSION_SECRET is not one koa-kv-session reads: did you mean SESSION_SECRET_KEYS?',
      'koa-kv-session: the environment variable SESSION_STORE_TIMEOUTS is not one koa-kv-session reads: did you mean SESSION_STORE_TIMEOUT?',
    ]);
  });

  it('a store that cannot keep a promise is said at kvSession(): not atomic, a copy per process, no expiry, eviction', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kvs-notices-'));
    try {
      const codes = async (store: unknown) =>
        (await warningsOf(async () => kvSession({ store: asStore(store) }).close())).map((w) => w.code);
      expect(await codes('memcache://127.0.0.1:11311')).toEqual(['KV_SESSION_NOT_ATOMIC']);
      expect(await codes(new KeyvFile({ filename: join(dir, 'sessions.json') }))).toEqual([
        'KV_SESSION_PER_PROCESS',
        'KV_SESSION_NOT_ATOMIC',
      ]);
      expect(await codes(new KeyvLru({ max: 10 }))).toEqual(['KV_SESSION_EVICTS', 'KV_SESSION_NOT_ATOMIC']);
      // An adapter of the app's own that says nothing of expiry.
      const own = { get: async () => undefined, set: async () => true, delete: async () => true };
      expect(await codes(own)).toEqual(['KV_SESSION_NO_EXPIRY', 'KV_SESSION_NOT_ATOMIC']);
      // One that does (a Keyv 5 adapter's ttlSupport) and compares and sets: nothing to say.
      expect(await codes({ ...own, ttlSupport: true, compareAndSet: async () => ({ status: 'saved' }) })).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('short signing keys are said, from the option, the variable or app.keys', async () => {
    const fromOption = await warningsOf(async () =>
      kvSession({ store: 'memory://', keys: ['x', 'a long enough secret key'] }).close(),
    );
    expect(fromOption.map((w) => w.code)).toEqual(['KV_SESSION_SHORT_KEY']);
    expect(fromOption[0]?.message).toMatch(/1 of the 2 keys in keys is shorter than 16/);
    const fromVariable = await warningsOf(async () =>
      kvSession({ store: 'memory://', env: { SESSION_SECRET_KEYS: 'abc' } }).close(),
    );
    expect(fromVariable[0]?.message).toMatch(/keys in SESSION_SECRET_KEYS/);
    const app = await startApp(
      { store: 'memory://' },
      (ctx) => void (ctx.session.n = 1),
      (koa) => void (koa.keys = ['short']),
    );
    try {
      const fromApp = await warningsOf(() => app.request('/'));
      expect(fromApp[0]?.message).toMatch(/keys in app.keys/);
    } finally {
      await app.close();
    }
  });

  it('SameSite=None with secure "auto" over plain HTTP goes out SameSite=Lax (browsers drop None without Secure), said once; over https it stays None; Secure', async () => {
    const app = await startApp(
      { store: 'memory://', cookie: { sameSite: 'none' } },
      (ctx) => void (ctx.session.n = 1),
      (koa) => void (koa.proxy = true),
    );
    try {
      let reply: Reply | undefined;
      const seen = await warningsOf(async () => {
        reply = await app.request('/');
      });
      expect(reply?.setCookies[0]).toMatch(/SameSite=Lax/i);
      expect(reply?.setCookies[0]).not.toMatch(/SameSite=None/i);
      expect(seen.filter((w) => w.code === 'KV_SESSION_SAMESITE_NONE_OVER_HTTP')).toHaveLength(1);
      const https = await app.request('/', { headers: { 'x-forwarded-proto': 'https' } });
      expect(https.setCookies[0]).toMatch(/SameSite=None/i);
      expect(https.setCookies[0]).toMatch(/; Secure/i);
    } finally {
      await app.close();
    }
  });
});
