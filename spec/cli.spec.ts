// The operator command end to end: the built CLI against real SQLite, Redis and PostgreSQL stores holding 100 000
// sessions.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from 'redis';
import type { Backend as StoreBackend } from '../src/backends/contract.js';
import type { SqlClient } from '../src/backends/sql.js';
import { sidFingerprint } from '../src/sid.js';
import { openBackend } from '../src/backends/registry.js';
import { encodePayload } from '../src/codec.js';
import { frameRecord, type Format } from '../src/record.js';
import { recordStatus } from '../src/tombstone.js';
import { Progress } from '../src/cli/progress.js';
import { cookiePair, startApp } from './support/app.js';
import { CLI, cli, type Result } from './support/cli.js';
import {
  mustRun,
  MYSQL_URL,
  POSTGRES_URL,
  reachable,
  REDIS_URL,
  MEMCACHE_URL,
  uniquePrefix,
  type Backend,
  BACKENDS,
} from './support/servers.js';

const SESSIONS = 100_000;

/** The number after `label` in stats output. */
function stat(output: string, label: string): number {
  const match = new RegExp(`^${label}\\s+(\\d+)`, 'm').exec(output);
  if (!match) throw new Error(`no "${label}" in:\n${output}`);
  return Number(match[1]);
}

const sidOf = (prefix: string, i: number): string => createHash('sha256').update(`${prefix}${i}`).digest('base64url');

/** Store-specific seeding and cleanup, for the three stores the issue names. */
interface Seeder {
  readonly backend: Backend;
  readonly url: (tag: string) => string;
  readonly nativeTtl: boolean;
  /** Writes [key, value, ttl] rows in bulk. */
  seed(opened: StoreBackend, rows: Array<[string, string, number]>): Promise<void>;
  /** Deletes everything the test wrote. */
  cleanup(opened: StoreBackend, prefix: string): Promise<void>;
}

/** The table behind one of our SQL backends, to seed it in bulk. */
const sqlOf = (backend: StoreBackend): SqlClient => (backend as StoreBackend & { sql: SqlClient }).sql;

/** A Redis client of the test's own, for bulk writes and cleanup. */
async function withRedis<T>(work: (client: ReturnType<typeof createClient>) => Promise<T>): Promise<T> {
  const client = createClient({ url: REDIS_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.quit();
  }
}
const backendNamed = (name: string): Backend => BACKENDS.find((b) => b.name === name) as Backend;
const dir = mkdtempSync(join(tmpdir(), 'kvs-cli-'));
const table = `kvs_cli_${randomBytes(4).toString('hex')}`;

const SEEDERS: Seeder[] = [
  {
    backend: backendNamed('sqlite'),
    url: () => `sqlite://${join(dir, 'sessions.sqlite')}`,
    nativeTtl: false,
    async seed(opened, rows) {
      const sql = sqlOf(opened);
      await sql.query('BEGIN', []);
      for (let i = 0; i < rows.length; i += 500) {
        const batch = rows.slice(i, i + 500);
        await sql.query(
          `INSERT INTO ${sql.table} (key, value) VALUES ${batch.map(() => '(?, ?)').join(', ')}`,
          batch.flatMap((row) => row.slice(0, 2)),
        );
      }
      await sql.query('COMMIT', []);
    },
    async cleanup() {},
  },
  {
    backend: backendNamed('redis'),
    url: () => REDIS_URL,
    nativeTtl: true,
    async seed(_opened, rows) {
      await withRedis(async (client) => {
        for (let i = 0; i < rows.length; i += 1000) {
          const multi = client.multi();
          for (const [key, value, ttl] of rows.slice(i, i + 1000)) multi.set(key, value, { PX: ttl });
          await multi.exec();
        }
      });
    },
    async cleanup(_opened, prefix) {
      await withRedis(async (client) => {
        let cursor = '0';
        do {
          const reply = await client.scan(cursor, { MATCH: `${prefix}*`, COUNT: 1000 });
          cursor = String(reply.cursor);
          if (reply.keys.length > 0) await client.del(reply.keys);
        } while (cursor !== '0');
      });
    },
  },
  {
    backend: backendNamed('postgres'),
    url: () => `${POSTGRES_URL}?table=${table}`,
    nativeTtl: false,
    async seed(opened, rows) {
      const sql = sqlOf(opened);
      for (let i = 0; i < rows.length; i += 10_000) {
        const batch = rows.slice(i, i + 10_000);
        await sql.query(`INSERT INTO ${sql.table} (key, value) SELECT * FROM unnest($1::text[], $2::text[])`, [
          batch.map((r) => r[0]),
          batch.map((r) => r[1]),
        ]);
      }
    },
    async cleanup(opened) {
      const sql = sqlOf(opened);
      await sql.query(`DROP TABLE IF EXISTS ${sql.table}`, []);
    },
  },
];

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(SEEDERS)('koa-kv-session CLI on $backend.name with 100 000 sessions', (seeder) => {
  const prefix = uniquePrefix(`cli-${seeder.backend.name}`);
  const url = seeder.url(prefix);
  const env = { SESSION_STORE: url, SESSION_KEY_PREFIX: prefix, SESSION_USER_KEY: 'userId' };
  let opened: StoreBackend | undefined;
  let skipReason: string | undefined;
  /** Cookies of the three sessions user "zed" logged in with through a real app. */
  let zed: string[] = [];
  const expiredSeeded = seeder.nativeTtl ? 0 : SESSIONS / 20;

  beforeAll(async () => {
    skipReason = await seeder.backend.unavailable();
    if (skipReason !== undefined) {
      if (mustRun(seeder.backend)) throw new Error(`${seeder.backend.name} is required: ${skipReason}`);
      return;
    }
    opened = await openBackend(url, 5000);
    const now = Date.now();
    const rows: Array<[string, string, number]> = [];
    for (let i = 0; i < SESSIONS; i++) {
      // Every 20th expired (where the server keeps expired records), every 20th + 1 in JSON, the rest CBOR.
      const expired = i % 20 === 0 && !seeder.nativeTtl;
      const format: Format = i % 20 === 1 ? 'json' : 'cbor';
      const expires = expired ? now - 60_000 : now + 3_600_000;
      rows.push([
        prefix + sidOf(prefix, i),
        frameRecord(encodePayload({ userId: `user${i % 500}`, n: i }, format), format, expires, i % 2 === 0),
        3_600_000,
      ]);
    }
    // One session whose data JSON cannot hold exactly.
    rows.push([
      `${prefix}dated${'x'.repeat(38)}`,
      frameRecord(encodePayload({ at: new Date(0) }, 'cbor'), 'cbor', now + 3_600_000, true),
      3_600_000,
    ]);
    await seeder.seed(opened, rows);
    // Three logins of one user through the app itself: sessions plus the user's index.
    const app = await startApp({ store: url, keyPrefix: prefix, userKey: 'userId' }, async (ctx) => {
      if (ctx.path === '/login') {
        await ctx.session.regenerate();
        ctx.session.userId = 'zed';
      }
      return String(ctx.session.userId ?? 'anonymous');
    });
    zed = [];
    for (let i = 0; i < 3; i++) zed.push(cookiePair((await app.request('/login')).setCookies[0]));
    await app.close();
  }, 240_000);

  afterAll(async () => {
    if (opened) {
      await seeder.cleanup(opened, prefix);
      await opened.close?.();
    }
  });

  const live = (context: { skip: (note: string) => void }) => {
    if (skipReason !== undefined) context.skip(`${seeder.backend.name} skipped: ${skipReason}`);
  };

  it('stats counts sessions by encoding, expired records, user indexes and bytes', async (context) => {
    live(context);
    const result = await cli(['stats'], env);
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.status).toBe(0);
    expect(stat(result.stdout, 'sessions')).toBe(SESSIONS - expiredSeeded + 1 + 3);
    expect(result.stdout).toMatch(
      new RegExp(`cbor ${SESSIONS - expiredSeeded - SESSIONS / 20 + 1 + 3}, json ${SESSIONS / 20}`),
    );
    expect(stat(result.stdout, 'expired')).toBe(expiredSeeded);
    expect(stat(result.stdout, 'users')).toBe(1);
    expect(stat(result.stdout, 'unreadable')).toBe(0);
    expect(stat(result.stdout, 'bytes')).toBeGreaterThan(SESSIONS * 50);
    // Not a terminal: plain progress lines on stderr.
    expect(result.stderr).toMatch(/^stats: \d+(\/\d+ \(\d+%\))? records, \d+\/s$/m);
  }, 120_000);

  it('list prints a page of sessions with their user, and the command for the next page', async (context) => {
    live(context);
    const first = await cli(['list', '--limit', '25'], env);
    expect(first.status).toBe(0);
    const rows = (out: string) => out.split('\n').filter((line) => /^\S{12}… /.test(line));
    expect(first.stdout.split('\n')[0]).toMatch(/^SID\s+EXPIRES\s+PERMANENT\s+BYTES\s+FORMAT\s+USER$/);
    expect(rows(first.stdout).length).toBeGreaterThanOrEqual(25);
    expect(first.stdout).toMatch(/ user\d+$/m);
    const cursor = /next page: koa-kv-session list --limit 25 --cursor (\S+)/.exec(first.stdout)?.[1];
    expect(cursor).toBeDefined();
    const second = await cli(['list', '--limit', '25', '--cursor', cursor as string], env);
    expect(second.status).toBe(0);
    expect(rows(second.stdout).length).toBeGreaterThan(0);
    const firstSids = new Set(rows(first.stdout).map((line) => line.slice(0, 12)));
    expect(rows(second.stdout).filter((line) => firstSids.has(line.slice(0, 12)))).toEqual([]);
  }, 60_000);

  it('list --json pages through every session exactly once, and no cursor holds a whole sid', async (context) => {
    live(context);
    const all = new Set(Array.from({ length: SESSIONS }, (_, i) => sidOf(prefix, i).slice(0, 12)));
    const seen: string[] = [];
    let cursor: string | null = null;
    const cursors: string[] = [];
    // Redis pages by SCAN position (no sid in its cursor at all): two pages show the cursor's shape;
    // where the cursor keeps 12 characters of a sid, the whole walk shows that nothing is skipped.
    const walkAll = seeder.backend.name !== 'redis';
    do {
      if (!walkAll && cursors.length === 2) break;
      const result = await cli(
        ['list', '--limit', walkAll ? '10000' : '500', '--json', ...(cursor === null ? [] : ['--cursor', cursor])],
        env,
      );
      expect(result.status, result.stderr).toBe(0);
      const page = JSON.parse(result.stdout) as {
        sessions: Array<{ sid: string; expires: string | null; expired: boolean; user: string | null; format: string }>;
        next: string | null;
      };
      for (const session of page.sessions) {
        expect(session.sid).toHaveLength(12);
        seen.push(session.sid);
      }
      cursor = page.next;
      if (cursor !== null) cursors.push(cursor);
    } while (cursor !== null);
    expect(seen.length).toBe(new Set(seen).size);
    if (walkAll) {
      // Every seeded session once (the expired ones are listed too, as expired), plus "dated" and zed's three.
      const listed = new Set(seen);
      expect([...all].filter((sid) => !listed.has(sid))).toEqual([]);
      expect(seen.length).toBe(SESSIONS + 1 + 3);
    }
    expect(cursors.length).toBeGreaterThan(0);
    for (const c of cursors) {
      // At most 12 characters of a sid: "after:<12>" on stores that resume anywhere, the server's own number on Redis.
      expect(c).toMatch(seeder.backend.name === 'redis' ? /^scan:\d+:\d+$/ : /^after:[\w-]{12}$/);
    }
  }, 180_000);

  it('stats, show and purge --json print one JSON document', async (context) => {
    live(context);
    const stats = JSON.parse((await cli(['stats', '--json'], env)).stdout);
    expect(stats).toMatchObject({ prefix, users: 1, unreadable: 0, expired: expiredSeeded, complete: true });
    expect(stats.sessions).toBe(stats.cbor + stats.json);
    const shown = JSON.parse((await cli(['show', sidOf(prefix, 4), '--json'], env)).stdout);
    expect(shown).toMatchObject({
      sid: sidOf(prefix, 4),
      permanent: true,
      format: 'cbor',
      created: null,
      expired: false,
      data: { userId: 'user4', n: 4 },
    });
    expect(Date.parse(shown.expires)).toBeGreaterThan(Date.now());
    const dated = JSON.parse((await cli(['show', `dated${'x'.repeat(38)}`, '--json'], env)).stdout);
    expect(dated.data).toEqual({ at: '1970-01-01T00:00:00.000Z' });
    const purged = JSON.parse(
      (await cli(['purge', '--json'], { ...env, SESSION_KEY_PREFIX: `${prefix}none:` })).stdout,
    );
    expect(purged).toMatchObject({ removed: 0, prefix: `${prefix}none:` });
  }, 120_000);

  it('a cursor list did not print is a usage error', async (context) => {
    live(context);
    const bad = await cli(['list', '--cursor', `${prefix}${sidOf(prefix, 5)}`], env);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/is not a cursor that koa-kv-session list printed for this store/);
  }, 60_000);

  it('show prints a decoded record of either encoding, and exits with 3 for an unknown sid', async (context) => {
    live(context);
    const cbor = await cli(['show', sidOf(prefix, 2)], env);
    expect(cbor.status).toBe(0);
    expect(cbor.stdout).toMatch(/^format\s+cbor$/m);
    expect(cbor.stdout).toMatch(/^created\s+unknown$/m);
    expect(cbor.stdout).toMatch(/"n": 2\b/);
    const json = await cli(['show', `${sidOf(prefix, 21)}.some-signature`], env);
    expect(json.stdout).toMatch(/^format\s+json$/m);
    expect(json.stdout).toMatch(/"userId": "user21"/);
    const missing = await cli(['show', 'no-such-sid'], env);
    expect(missing.status).toBe(3);
    expect(missing.stderr).toMatch(/no session record no-such-sid/);
  }, 60_000);

  it('revoke <sid> deletes one session; a second revoke exits with 3', async (context) => {
    live(context);
    const sid = sidOf(prefix, 3);
    const revoked = await cli(['revoke', sid], env);
    expect(revoked.status).toBe(0);
    expect(revoked.stdout).toBe(`revoked session ${sid}\n`);
    expect((await cli(['show', sid], env)).status).toBe(3);
    expect((await cli(['revoke', sid], env)).status).toBe(3);
  }, 60_000);

  it('revoke <sid> of a session that a regenerate() moved signs it out under its new sid too', async (context) => {
    live(context);
    const app = await startApp({ store: url, keyPrefix: prefix, userKey: 'userId' }, async (ctx) => {
      await ctx.session.regenerate();
      if (ctx.path === '/login') ctx.session.userId = 'moe';
      return String(ctx.session.userId ?? 'anonymous');
    });
    try {
      const login = await app.request('/login');
      const oldSid = cookiePair(login.setCookies[0]).split('=')[1]?.split('.')[0] as string;
      const moved = await app.request('/rotate', { cookie: cookiePair(login.setCookies[0]) });
      expect(moved.body).toBe('moe');
      const revoked = await cli(['revoke', oldSid], env);
      expect(revoked.status).toBe(0);
      expect((await app.request('/whoami', { cookie: cookiePair(moved.setCookies[0]) })).body).toBe('anonymous');
    } finally {
      await app.close();
    }
  }, 60_000);

  it('with hashSids: show and revoke take the sid (which they hash) or its safe id, and the store holds neither', async (context) => {
    live(context);
    const hashed = `${prefix}hashed:`;
    const app = await startApp({ store: url, keyPrefix: hashed, hashSids: true }, (ctx) => {
      if (ctx.path === '/login') ctx.session.userId = 'hal';
      return String(ctx.session.userId ?? 'anonymous');
    });
    try {
      const cookie = cookiePair((await app.request('/login')).setCookies[0]);
      const sid = cookie.split('=')[1]?.split('.')[0] as string;
      const hashedEnv = { ...env, SESSION_KEY_PREFIX: hashed, SESSION_HASH_SIDS: '1' };
      const bySid = await cli(['show', sid], hashedEnv);
      expect(bySid.status).toBe(0);
      expect(bySid.stdout).toMatch(/"userId": "hal"/);
      const id = sidFingerprint(sid);
      const bySafeId = await cli(['show', id], hashedEnv);
      expect(bySafeId.stdout).toMatch(/"userId": "hal"/);
      // Without hashSids the sid is looked up in the other layout too (a session not moved back yet).
      expect((await cli(['show', sid], { ...env, SESSION_KEY_PREFIX: hashed })).stdout).toMatch(/"userId": "hal"/);
      const listed = await cli(['list'], hashedEnv);
      expect(listed.stdout).not.toContain(sid.slice(0, 12));
      // The start of the key as list prints it, ellipsis and all, is taken by show; a safe id is labelled so.
      const printed = /^(\S+…)/m.exec(listed.stdout.split('\n').slice(1).join('\n'))?.[1] as string;
      const byPrinted = await cli(['show', printed], hashedEnv);
      expect([byPrinted.status, /^key\s+/.test(byPrinted.stdout)]).toEqual([0, true]);
      expect(bySafeId.stdout).toMatch(new RegExp(`^id\\s+${id}$`, 'm'));
      expect((await cli(['revoke', id], hashedEnv)).status).toBe(0);
      expect((await app.request('/whoami', { cookie })).body).toBe('anonymous');
      // The revocation's tombstone is no session row: list shows none, stats counts it apart.
      const after = await cli(['list'], hashedEnv);
      expect(after.stdout).not.toMatch(/1970/);
      expect(stat((await cli(['stats'], hashedEnv)).stdout, 'tombstones')).toBe(1);
      expect((await cli(['revoke', id], hashedEnv)).status).toBe(3);
    } finally {
      await app.close();
    }
  }, 60_000);

  it('revoke --user deletes every session of the user, through the index', async (context) => {
    live(context);
    const revoked = await cli(['revoke', '--user', 'zed'], env);
    expect(revoked.status).toBe(0);
    expect(revoked.stdout).toBe('revoked 3 sessions of user "zed"\n');
    const app = await startApp({ store: url, keyPrefix: prefix, userKey: 'userId' }, (ctx) =>
      String(ctx.session.userId ?? 'anonymous'),
    );
    try {
      for (const cookie of zed) expect((await app.request('/', { cookie })).body).toBe('anonymous');
    } finally {
      await app.close();
    }
  }, 60_000);

  it('migrate --to json rewrites every live session, keeps what JSON cannot hold, and the app still reads them', async (context) => {
    live(context);
    const before = await cli(['stats'], env);
    const cborBefore = Number(/cbor (\d+)/.exec(before.stdout)?.[1]);
    const migrated = await cli(['migrate', '--to', 'json'], env);
    expect(migrated.status).toBe(0);
    expect(stat(migrated.stdout, 'converted')).toBe(cborBefore - 1);
    expect(migrated.stdout).toMatch(/unrepresentable in json 1,/);
    // Expired records are left for purge (the seeded ones); tombstones of the revocations before are
    // no sessions, and are not counted as expired ones.
    expect(stat(before.stdout, 'expired')).toBe(expiredSeeded);
    expect(stat(migrated.stdout, 'expired')).toBe(expiredSeeded);
    expect(migrated.stdout).toMatch(new RegExp(`tombstones ${stat(before.stdout, 'tombstones')}\n`));
    const after = await cli(['stats'], env);
    expect(after.stdout).toMatch(/cbor 1, json \d+/);
    expect(stat(after.stdout, 'sessions')).toBe(stat(before.stdout, 'sessions'));
    // The app reads a converted record, data and all.
    const app = await startApp(
      { store: url, keyPrefix: prefix, cookie: { signed: false } },
      (ctx) => `${ctx.session.userId}:${ctx.session.n}`,
    );
    try {
      expect((await app.request('/', { cookie: `session=${sidOf(prefix, 4)}` })).body).toBe('user4:4');
    } finally {
      await app.close();
    }
  }, 180_000);

  it('migrate stops at Ctrl-C with a summary and exit code 130; running it again finishes the job', async (context) => {
    live(context);
    let signalled = false;
    const stopped = await cli(['migrate', '--to', 'cbor'], env, (chunk, child) => {
      if (!signalled && /records/.test(chunk)) {
        signalled = true;
        child.kill('SIGINT');
      }
    });
    // The first progress line comes a tenth (or 25 000 records) in: most of the work is still ahead.
    expect(signalled).toBe(true);
    expect(stopped.status).toBe(130);
    expect(stopped.stderr).toMatch(/stopping after the current page/);
    expect(stopped.stderr).toMatch(/interrupted: .*running the command again is safe/);
    expect(stat(stopped.stdout, 'converted')).toBeGreaterThan(0);
    expect(stat(stopped.stdout, 'converted')).toBeLessThan(SESSIONS - expiredSeeded);
    const partial = await cli(['stats'], env);
    expect(partial.stdout).not.toMatch(/json 0\)/);
    const again = await cli(['migrate', '--to', 'cbor'], env);
    expect(again.status).toBe(0);
    expect((await cli(['stats'], env)).stdout).toMatch(/cbor \d+, json 0/);
  }, 180_000);

  it('purge removes the expired records (and the user index emptied by revoke --user)', async (context) => {
    live(context);
    // The revocations and the regenerate() of the tests before left their tombstones.
    expect(stat((await cli(['stats'], env)).stdout, 'tombstones')).toBeGreaterThanOrEqual(5);
    const purged = await cli(['purge'], env);
    expect(purged.status).toBe(0);
    // Redis drops expired keys itself; elsewhere the seeded expired sessions go, with the tombstones and the emptied
    // indexes.
    const removed = Number(/^removed (\d+) expired session record/.exec(purged.stdout)?.[1]);
    if (seeder.nativeTtl) expect(removed).toBe(0);
    else expect(removed).toBeGreaterThanOrEqual(expiredSeeded + 5);
    const after = (await cli(['stats'], env)).stdout;
    expect(stat(after, 'expired')).toBe(0);
    if (!seeder.nativeTtl) expect(stat(after, 'tombstones')).toBe(0);
  }, 120_000);
});

describe('koa-kv-session CLI: usage, help and stores that cannot list', () => {
  it.each(['stats', 'list', 'show', 'revoke', 'purge', 'migrate'])(
    '%s --help describes the command and the exit codes',
    async (command) => {
      const result = await cli([command, '--help'], {});
      expect(result.status).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`^Usage: koa-kv-session ${command}`));
      expect(result.stdout).toMatch(/Exit codes: 0 done, 1 the store failed, 2 bad usage/);
    },
  );

  it.each([
    [['migrate'], /migrate needs --to cbor or --to json/],
    [['migrate', '--to', 'xml'], /got "xml"/],
    [['list', '--limit', '0'], /--limit must be a whole number/],
    [['list', '--bogus'], /Unknown option '--bogus'[^(]*$/m],
    [['list', '--limt', '5'], /Unknown option '--limt'.*\(did you mean --limit\?\)/],
    [['show'], /show needs a session id/],
    [['revoke', '--user', 'x'], /revoke --user needs SESSION_USER_KEY/],
  ])('%j is a usage error (exit 2) that says what is wrong', async (args, message) => {
    const result = await cli(args, { SESSION_STORE: 'memory://', SESSION_USER_KEY: '' });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('--version prints the version of the package', async () => {
    const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as {
      version: string;
    };
    for (const flag of ['--version', '-v']) {
      const result = await cli([flag], {});
      expect(result.status).toBe(0);
      expect(result.stdout).toBe(`koa-kv-session ${version}\n`);
    }
  });

  it('a failing store is reported once, with the command and without a doubled prefix (exit 1)', async () => {
    const result = await cli(['purge'], { SESSION_STORE: 'redis://127.0.0.1:1', SESSION_STORE_TIMEOUT: '1' });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /^koa-kv-session purge: the session store \(redis:\/\/127\.0\.0\.1:1\) (failed|did not answer)/,
    );
    expect(result.stderr).not.toMatch(/koa-kv-session: koa-kv-session|purge: koa-kv-session:/);
  });

  it('on a SQLite path that does not exist, every command exits with 5 and creates no file', async () => {
    const file = join(dir, 'mistyped', 'nowhere.sqlite');
    for (const command of ['stats', 'list', 'show abc', 'revoke abc', 'purge', 'migrate --to json']) {
      const result = await cli(command.split(' '), { SESSION_STORE: `sqlite://${file}`, SESSION_USER_KEY: '' });
      expect(result.status, command).toBe(5);
      expect(result.stderr).toBe(
        `koa-kv-session ${command.split(' ')[0]}: the SQLite file ${file} does not exist, and create=false creates nothing (check the store URL; the app creates it on its first start)\n`,
      );
    }
    expect(existsSync(join(dir, 'mistyped'))).toBe(false);
  }, 60_000);

  it('a SQLite file without the table: exit 5, and no table is created', async () => {
    const file = join(dir, 'other.sqlite');
    const opened = await openBackend(`sqlite://${file}?table=other`, 5000);
    await opened.get('x');
    await opened.close?.();
    const result = await cli(['stats'], { SESSION_STORE: `sqlite://${file}?table=sessions` });
    expect(result.status).toBe(5);
    expect(result.stderr).toMatch(/the table sessions in the SQLite file .* does not exist/);
    const check = await openBackend(`sqlite://${file}?table=other`, 5000);
    try {
      expect(
        (await sqlOf(check).query("SELECT name FROM sqlite_master WHERE type = 'table'", [])).rows.map(
          (row) => row.name,
        ),
      ).toEqual(['other']);
    } finally {
      await check.close?.();
    }
  }, 60_000);

  it.for<[name: string, url: () => string, what: string]>([
    ['postgres', () => POSTGRES_URL, 'PostgreSQL table "public".'],
    ['mariadb', () => MYSQL_URL.replace(/table=[^&]*/, ''), 'MySQL table '],
  ])(
    'on %s, a table name that does not exist: exit 5, and no table is created',
    { timeout: 60_000 },
    async ([name, url, what], context) => {
      const backend = backendNamed(name);
      const reason = await backend.unavailable();
      if (reason !== undefined) {
        if (mustRun(backend)) throw new Error(`${name} is required: ${reason}`);
        context.skip(reason);
      }
      const missing = `kvs_cli_missing_${randomBytes(4).toString('hex')}`;
      const base = url();
      const store = `${base}${base.includes('?') ? '&' : '?'}table=${missing}`.replace('?&', '?');
      for (const command of ['stats', 'list', 'purge']) {
        const result = await cli([command], { SESSION_STORE: store, SESSION_USER_KEY: '' });
        expect(result.status, `${command}: ${result.stderr}`).toBe(5);
        expect(result.stderr).toContain(`${what}${name === 'postgres' ? `"${missing}"` : missing} does not exist`);
      }
      // The app, opened as usual, would create it: the table is really absent, not just unseen.
      const probe = await openBackend(`${store}${store.includes('?') ? '&' : '?'}create=false`, 5000);
      try {
        await expect(probe.get('x')).rejects.toMatchObject({ code: 'SESSION_STORE_MISSING' });
      } finally {
        await probe.close?.();
      }
    },
  );

  it('a store URL with create=maybe is refused, naming the parameter', async () => {
    await expect(openBackend(`sqlite://${join(dir, 'x.sqlite')}?create=maybe`, 1000)).rejects.toMatchObject({
      code: 'SESSION_INVALID_OPTION',
      message: 'koa-kv-session: the create parameter of a sqlite:// URL is true or false, got "maybe"',
    });
  });

  it('a store that cannot list its keys gets exit code 4 and the commands it does support', async (context) => {
    if (!(await reachable(MEMCACHE_URL))) {
      if (mustRun(backendNamed('memcached'))) throw new Error('memcached is required');
      context.skip('memcached is not running (scripts/services.sh up)');
    }
    const env = { SESSION_STORE: MEMCACHE_URL, SESSION_KEY_PREFIX: uniquePrefix('cli-mc'), SESSION_USER_KEY: 'userId' };
    for (const command of ['stats', 'list', 'migrate --to json']) {
      const result = await cli(command.split(' '), env);
      expect(result.status).toBe(4);
      expect(result.stderr).toMatch(/needs a store that can list its keys, and memcache:\/\/127\.0\.0\.1:11311 cannot/);
      expect(result.stderr).toMatch(/you can still use: show <sid>, revoke <sid>, revoke --user <id>/);
    }
    // A mistake in the arguments or settings is told as such, before any store call: exit 2, not 4.
    const usage = await cli(['migrate', '--hash-sids'], env);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/SESSION_HASH_SIDS=true/);
    expect((await cli(['list', '--limit', '0'], env)).status).toBe(2);
    // ...and what it supports works: the sessions of a user, through the index.
    const app = await startApp(
      { store: MEMCACHE_URL, keyPrefix: env.SESSION_KEY_PREFIX, userKey: 'userId' },
      async (ctx) => {
        await ctx.session.regenerate();
        ctx.session.userId = 'mia';
        return ctx.session.sid;
      },
    );
    try {
      const sid = (await app.request('/')).body;
      await app.request('/');
      expect((await cli(['show', sid], env)).stdout).toMatch(/"userId": "mia"/);
      expect((await cli(['revoke', '--user', 'mia'], env)).stdout).toBe('revoked 2 sessions of user "mia"\n');
      expect((await cli(['show', sid], env)).status).toBe(3);
    } finally {
      await app.close();
    }
  }, 60_000);
});

describe('progress display', () => {
  it('draws a bar on a real terminal (a pseudo-terminal from util-linux script)', async (context) => {
    const { existsSync } = await import('node:fs');
    if (!existsSync('/usr/bin/script')) context.skip('util-linux script is not installed');
    const file = join(dir, 'tty.sqlite');
    const opened = await openBackend(`sqlite://${file}`, 5000);
    const rows: Array<[string, string, number]> = Array.from({ length: 3000 }, (_, i) => [
      `tty:${sidOf('tty:', i)}`,
      frameRecord(encodePayload({ n: i }, 'cbor'), 'cbor', Date.now() + 3_600_000, true),
      3_600_000,
    ]);
    await (SEEDERS[0] as Seeder).seed(opened, rows);
    await opened.close?.();
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} migrate --to json`;
    const result = await new Promise<Result>((resolve, reject) => {
      const child = spawn('/usr/bin/script', ['-qec', command, '/dev/null'], {
        env: { ...process.env, SESSION_STORE: `sqlite://${file}`, SESSION_KEY_PREFIX: 'tty:' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.once('error', reject);
      child.once('close', (status) => resolve({ status, stdout, stderr: '' }));
    });
    expect(result.status).toBe(0);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal's escape sequence is what is checked
    expect(result.stdout).toMatch(/\r\x1b\[2Kmigrate to json \[#{30}\] 3000\/3000 \(100%\) records/);
    expect(result.stdout).not.toMatch(/^migrate to json: /m);
    expect(result.stdout).toMatch(/converted\s+3000/);
  });

  it('redraws one bar in place on a terminal', () => {
    const writes: string[] = [];
    const progress = new Progress({ isTTY: true, write: (text: string) => writes.push(text) }, 'migrate to json', 1000);
    progress.advance(500);
    progress.finish();
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal's escape sequence is what is checked
    expect(writes[0]).toMatch(/^\r\x1b\[2Kmigrate to json \[#{15}-{15}\] 500\/1000 \(50%\) records, \d+\/s$/);
    expect(writes.at(-1)).toBe('\n');
    expect(writes.some((w) => w.includes('\n') && w !== '\n')).toBe(false);
  });

  it('writes a plain line at each tenth when it is not a terminal', () => {
    const writes: string[] = [];
    const progress = new Progress({ isTTY: false, write: (text: string) => writes.push(text) }, 'stats', 100);
    for (let i = 0; i < 100; i++) progress.advance(1);
    progress.finish();
    expect(writes).toHaveLength(10);
    expect(writes[9]).toMatch(/^stats: 100\/100 \(100%\) records, \d+\/s\n$/);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: no terminal escape may reach a log
    expect(writes.join('')).not.toMatch(/\r|\x1b/);
  });

  it('writes a plain line every 25 000 records when the total is unknown (Redis cannot count by prefix)', () => {
    const writes: string[] = [];
    const progress = new Progress({ write: (text: string) => writes.push(text) }, 'stats', undefined);
    for (let i = 0; i < 100; i++) progress.advance(1000);
    expect(writes.map((w) => w.replace(/, \d+\/s\n$/, ''))).toEqual([
      'stats: 25000 records',
      'stats: 50000 records',
      'stats: 75000 records',
      'stats: 100000 records',
    ]);
  });
});

describe('migrate and records it cannot read', () => {
  it('migrate --to cbor rewrites JSON records, counts a record of a header format it does not read as unreadable and leaves it; run again, everything is already there', async () => {
    const file = join(dir, 'format1.sqlite');
    const opened = await openBackend(`sqlite://${file}`, 5000);
    const expires = Date.now() + 3_600_000;
    const old = new Map<string, string>([
      ['f1:a', `c1:${expires}:1:${encodePayload({ n: 1, at: new Date(0) }, 'cbor')}`],
      ['f1:b', frameRecord(encodePayload({ n: 2 }, 'json'), 'json', expires, false, { created: 2 })],
      ['f1:c', frameRecord(encodePayload({ n: 3 }, 'cbor'), 'cbor', expires, true, { created: 1 })],
    ]);
    await (SEEDERS[0] as Seeder).seed(
      opened,
      [...old].map(([key, value]) => [key, value, 3_600_000]),
    );
    try {
      const env = { SESSION_STORE: `sqlite://${file}`, SESSION_KEY_PREFIX: 'f1:' };
      const first = await cli(['migrate', '--to', 'cbor'], env);
      expect(first.status).toBe(0);
      expect(stat(first.stdout, 'converted')).toBe(1);
      expect(first.stdout).toMatch(/unreadable 1,/);
      expect(first.stdout).toMatch(/already cbor\s+1/);
      // Left exactly as it was: nothing this version cannot read is ever rewritten.
      expect(await opened.get('f1:a')).toBe(old.get('f1:a'));
      expect(String(await opened.get('f1:b'))).toMatch(new RegExp(`^c2:${expires}:0:(?:[\\w-]{8})+:2::`));
      expect(await opened.get('f1:c')).toBe(old.get('f1:c'));
      const again = await cli(['migrate', '--to', 'cbor'], env);
      expect(stat(again.stdout, 'converted')).toBe(0);
      expect(again.stdout).toMatch(/already cbor\s+2/);
    } finally {
      await opened.close?.();
    }
  }, 60_000);
});

describe('sids that start with "-"', () => {
  it('revoke and show take a sid that starts with "-" as a sid, not as an unknown option', async () => {
    const file = join(dir, 'dash.sqlite');
    const opened = await openBackend(`sqlite://${file}`, 5000);
    const sid = `-${'a'.repeat(42)}`;
    await (SEEDERS[0] as Seeder).seed(opened, [
      [`d:${sid}`, frameRecord(encodePayload({ n: 1 }, 'cbor'), 'cbor', Date.now() + 3_600_000, true), 3_600_000],
    ]);
    try {
      const env = { SESSION_STORE: `sqlite://${file}`, SESSION_KEY_PREFIX: 'd:' };
      expect((await cli(['show', sid], env)).status).toBe(0);
      const revoked = await cli(['revoke', sid], env);
      expect(revoked.stderr).toBe('');
      expect(revoked.stdout).toBe(`revoked session ${sid}\n`);
      expect(recordStatus(await opened.get(`d:${sid}`), Date.now())).toBe('gone');
      expect((await cli(['revoke', '--bogus'], env)).status).toBe(2);
    } finally {
      await opened.close?.();
    }
  }, 60_000);
});

describe('show as list prints it, "--", and a driver that is not there', () => {
  it('show takes the 12 characters list prints and a sid after "--"; a prefix two sessions share is refused (exit 2)', async () => {
    const file = join(dir, 'prefix.sqlite');
    const opened = await openBackend(`sqlite://${file}`, 5000);
    const record = (n: number) => frameRecord(encodePayload({ n }, 'cbor'), 'cbor', Date.now() + 3_600_000, true);
    const [one, two, three] = [`Abcdefgh${'x'.repeat(35)}`, `Abcdefgh${'y'.repeat(35)}`, `-Zq${'z'.repeat(40)}`];
    await (SEEDERS[0] as Seeder).seed(opened, [
      [`p:${one}`, record(1), 3_600_000],
      [`p:${two}`, record(2), 3_600_000],
      [`p:${three}`, record(3), 3_600_000],
    ]);
    try {
      const env = { SESSION_STORE: `sqlite://${file}`, SESSION_KEY_PREFIX: 'p:' };
      const listed = await cli(['list'], env);
      expect(listed.stdout).toContain(one.slice(0, 12));
      const byPrefix = await cli(['show', one.slice(0, 12)], env);
      expect(byPrefix.status).toBe(0);
      expect(byPrefix.stdout).toMatch(/"n": 1/);
      const shared = await cli(['show', one.slice(0, 8)], env);
      expect(shared.status).toBe(2);
      expect(shared.stderr).toMatch(/more than one session/);
      const dashed = await cli(['show', '--', three], env);
      expect(dashed.status).toBe(0);
      expect(dashed.stdout).toMatch(/"n": 3/);
    } finally {
      await opened.close?.();
    }
  }, 60_000);

  it('a store driver that is not there is a configuration error (exit 2) naming what is missing', async () => {
    const result = await cli(['stats'], {
      SESSION_STORE: `sqlite://${join(dir, 'none.sqlite')}?driver=node`,
      NODE_OPTIONS: '--no-experimental-sqlite',
    });
    expect(result.stderr).toMatch(/needs node:sqlite/);
    expect(result.status).toBe(2);
  }, 60_000);
});
