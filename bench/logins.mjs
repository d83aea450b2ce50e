// What a login costs when its user already has many sessions: store calls, time and the index record's size, on
// Redis and PostgreSQL (issue 20: a login must cost the same however many sessions its user has had).
//   history: a user who logged in 1 000, 10 000 (real logins, as a bot in a loop) and 100 000 times (the index the
//            code keeps then: the newest 1 000 entries, seeded; 100 000 real logins take too long for a bench);
//   legacy:  an index of 10 000 / 100 000 entries as version 0.2 could leave it (it pruned only by reading sessions):
//            the store calls per login stay bounded, and logins bring it down to the cap, 64 entries a login.
//   node bench/logins.mjs [--quick]      (quick: history 1 000 and 10 000, legacy 10 000)
// Writes bench/results/logins.json and logins.md.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Koa from 'koa';
import { openBackend } from '../dist/esm/backends/registry.js';
import { frameRecord } from '../dist/esm/record.js';
import { kvSession } from '../dist/esm/index.js';
import { userIndexName } from '../dist/esm/names.js';
import { writeResults } from './write-results.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const QUICK = process.argv.includes('--quick');
const CASES = [
  ['history', 1_000],
  ['history', 10_000],
  ...(QUICK ? [] : [['history', 100_000]]),
  ['legacy', 10_000],
  ...(QUICK ? [] : [['legacy', 100_000]]),
];
const CAP = 1000;
const LOGINS = 40;
const STORES = [
  { name: 'Redis', url: 'redis://127.0.0.1:6379' },
  { name: 'PostgreSQL', url: 'postgresql://postgres@127.0.0.1:5432/test?table=kvs_logins_bench' },
];

/** Counts every call the app makes to the store it is handed. */
function counting(backend) {
  const counter = { calls: 0 };
  const wrapped = Object.create(backend);
  for (const name of ['get', 'set', 'delete', 'compareAndSet']) {
    if (typeof backend[name] === 'function') {
      wrapped[name] = (...args) => {
        counter.calls++;
        return backend[name](...args);
      };
    }
  }
  wrapped.close = async () => {};
  return { wrapped, counter };
}

async function measure(store, kind, size) {
  const backend = await openBackend(store.url, 10_000);
  const prefix = `logins-bench:${size}:${Date.now()}:`;
  const indexKey = prefix + userIndexName('bot');
  const { wrapped, counter } = counting(backend);
  const app = new Koa();
  app.keys = ['bench'];
  app.use(
    kvSession({ store: wrapped, keyPrefix: prefix, userKey: 'userId', lifetime: '1h', env: {}, cleanupInterval: 0 }),
  );
  app.use(async (ctx) => {
    await ctx.session.regenerate();
    ctx.session.userId = 'bot';
    ctx.body = 'ok';
  });
  const server = createServer(app.callback()).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${server.address().port}/`;
  try {
    const now = Date.now();
    if (kind === 'history' && size <= 10_000) {
      // Real logins, eight at a time.
      let left = size;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (left-- > 0) await (await fetch(url)).text();
        }),
      );
    } else {
      const sessions = {};
      const seeded = kind === 'history' ? CAP : size;
      for (let i = 0; i < seeded; i++)
        sessions[`seeded${String(i).padStart(7, '0')}`] = [now + 3_600_000, now - 3_600_000 - i];
      await backend.set(
        indexKey,
        frameRecord(JSON.stringify({ user: 'bot', sessions }), 'json', now + 3_600_000, false),
        3_600_000,
      );
    }
    const times = [];
    const calls = [];
    for (let i = 0; i < LOGINS; i++) {
      const before = counter.calls;
      const started = performance.now();
      const reply = await fetch(url);
      await reply.text();
      times.push(performance.now() - started);
      calls.push(counter.calls - before);
    }
    const index = String(await backend.get(indexKey));
    times.sort((a, b) => a - b);
    calls.sort((a, b) => a - b);
    return {
      store: store.name,
      kind,
      size,
      medianMs: times[Math.floor(times.length / 2)],
      maxCalls: calls[calls.length - 1],
      medianCalls: calls[Math.floor(calls.length / 2)],
      indexKiB: Buffer.byteLength(index) / 1024,
    };
  } finally {
    server.close();
    if (backend.sql !== undefined) {
      // Everything under the prefix: sessions, revoked markers, the index.
      await backend.sql.query(`DELETE FROM ${backend.sql.table} WHERE key LIKE $1`, [`${prefix}%`]);
    } else {
      // The live sessions the index names, and the index; revoked markers expire within 10 minutes.
      const raw = await backend.get(indexKey);
      const names = Object.keys(
        JSON.parse(
          String(raw ?? 'j2:0:0:x:::{"sessions":{}}')
            .split(':')
            .slice(6)
            .join(':'),
        ).sessions ?? {},
      );
      await Promise.all(
        [indexKey, ...names.map((sid) => prefix + sid)].map((key) => backend.delete(key).catch(() => {})),
      );
    }
    await backend.close();
  }
}

async function main() {
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: join(HERE, '..'), stdio: 'inherit' });
  const rows = [];
  for (const store of STORES) {
    for (const [kind, size] of CASES) {
      const row = await measure(store, kind, size);
      rows.push(row);
      process.stdout.write(
        `${row.store} ${kind} ${size}: median ${row.medianMs.toFixed(1)} ms, store calls median ${row.medianCalls} max ${row.maxCalls}, index ${row.indexKiB.toFixed(0)} KiB\n`,
      );
    }
  }
  writeResults(
    QUICK ? 'logins-quick' : 'logins',
    rows,
    `${LOGINS} logins, one at a time, of a user with a history (${new Date().toISOString().slice(0, 10)}): N logins before (history), or an index of N entries left by 0.2 (legacy); the index's size after them:`,
    [
      ['store', (r) => r.store, 'left'],
      ['case', (r) => r.kind, 'left'],
      ['N', (r) => r.size.toLocaleString('en')],
      ['median login ms', (r) => r.medianMs.toFixed(1)],
      ['store calls (median / max)', (r) => `${r.medianCalls} / ${r.maxCalls}`],
      ['index KiB after', (r) => r.indexKiB.toFixed(0)],
    ],
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
