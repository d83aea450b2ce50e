// Does a purge stall responses? 200 000 expired session records among 200 000 live ones on SQLite, PostgreSQL and
// MariaDB: the p99 latency of session requests (a read and a write each) without a purge, then while a purge of the
// expired records runs in the same process, measured in the same run (issue 20: within 2x).
//   node bench/purge-latency.mjs [--quick] [--only SQLite|PostgreSQL|MariaDB]      (quick: 20 000 and 20 000)
// Writes bench/results/purge-latency.json and purge-latency.md.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Koa from 'koa';
import { openBackend } from '../dist/esm/backends/registry.js';
import { frameRecord } from '../dist/esm/record.js';
import { kvSession } from '../dist/esm/index.js';
import { BACKENDS, drop } from './sql-tables.mjs';
import { writeResults } from './write-results.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const QUICK = process.argv.includes('--quick');
const ONLY = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const ROWS = QUICK ? 20_000 : 200_000;
const PREFIX = 'purge-latency:';
const SESSIONS = 200;
const CONCURRENCY = 8;
const BASELINE_MS = QUICK ? 2000 : 4000;

/**
 * Requests from CONCURRENCY loops, each with a session cookie of its own, until `until()` says stop; their latencies in
 * ms.
 */
async function load(url, cookies, until) {
  const latencies = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (!until()) {
        const cookie = cookies[next++ % cookies.length];
        const started = performance.now();
        const reply = await fetch(url, { headers: { cookie } });
        await reply.text();
        if (reply.status !== 200) throw new Error(`status ${reply.status}`);
        latencies.push(performance.now() - started);
      }
    }),
  );
  return latencies;
}

const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};

async function measure(backend, dir) {
  const table = 'kvs_purge_latency';
  const first = await openBackend(backend.url(table, dir), 600_000);
  await first.get('warm-up');
  await drop(first);
  await first.close();
  const store = await openBackend(backend.url(table, dir), 600_000);
  const app = new Koa();
  app.keys = ['bench'];
  const middleware = kvSession({ store, keyPrefix: PREFIX, env: {}, cleanupInterval: 0, storeTimeout: '10s' });
  app.use(middleware);
  app.use(async (ctx) => {
    ctx.session.n = Number(ctx.session.n ?? 0) + 1;
    ctx.body = String(ctx.session.n);
  });
  const server = createServer(app.callback()).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const url = `http://127.0.0.1:${server.address().port}/`;
  try {
    await store.get('warm-up');
    await backend.fill(
      store,
      ROWS,
      frameRecord('{"user":"gone"}', 'json', Date.now() - 60_000, true),
      `${PREFIX}expired:`,
    );
    await backend.fill(
      store,
      ROWS,
      frameRecord('{"user":"live"}', 'json', Date.now() + 3_600_000, true),
      `${PREFIX}live:`,
    );
    if (backend.name === 'PostgreSQL') await store.sql.query(`ANALYZE ${store.sql.table}`, []);
    const cookies = [];
    for (let i = 0; i < SESSIONS; i++) cookies.push((await fetch(url)).headers.get('set-cookie').split(';')[0]);
    await load(
      url,
      cookies,
      (
        (end) => () =>
          performance.now() > end
      )(performance.now() + 1000),
    ); // warm-up
    const without = await load(
      url,
      cookies,
      (
        (end) => () =>
          performance.now() > end
      )(performance.now() + BASELINE_MS),
    );
    let purging = true;
    const started = performance.now();
    const purge = middleware.purge().finally(() => {
      purging = false;
    });
    const during = await load(url, cookies, () => !purging);
    const removed = await purge;
    const seconds = (performance.now() - started) / 1000;
    if (removed !== ROWS) throw new Error(`${backend.name}: the purge removed ${removed} of ${ROWS}`);
    return {
      backend: backend.name,
      rows: ROWS,
      purgeSeconds: seconds,
      requestsWithout: without.length,
      requestsDuring: during.length,
      p99Without: percentile(without, 99),
      p99During: percentile(during, 99),
    };
  } finally {
    server.close();
    await middleware.close();
    await drop(store).catch(() => {});
    await store.close();
  }
}

async function main() {
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: join(HERE, '..'), stdio: 'inherit' });
  const dir = mkdtempSync(join(tmpdir(), 'kvs-purge-latency-'));
  const rows = [];
  try {
    for (const backend of BACKENDS.filter((b) => ONLY === undefined || b.name === ONLY)) {
      const row = await measure(backend, dir);
      rows.push(row);
      process.stdout.write(
        `${row.backend}: purge ${row.purgeSeconds.toFixed(1)} s; p99 ${row.p99Without.toFixed(1)} ms without, ${row.p99During.toFixed(1)} ms during (${(row.p99During / row.p99Without).toFixed(2)}x)\n`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const name = `purge-latency${QUICK ? '-quick' : ''}${ONLY === undefined ? '' : `-${ONLY.toLowerCase()}`}`;
  const title = `Session requests (a read and a write each, ${CONCURRENCY} at a time, in-process client) while ${ROWS.toLocaleString('en')} expired records among ${ROWS.toLocaleString('en')} live ones are purged (${new Date().toISOString().slice(0, 10)}):`;
  writeResults(name, rows, title, [
    ['backend', (r) => r.backend, 'left'],
    ['purge s', (r) => r.purgeSeconds.toFixed(1)],
    ['requests without / during', (r) => `${r.requestsWithout} / ${r.requestsDuring}`],
    ['p99 ms without', (r) => r.p99Without.toFixed(1)],
    ['p99 ms during', (r) => r.p99During.toFixed(1)],
    ['ratio', (r) => `${(r.p99During / r.p99Without).toFixed(2)}x`],
  ]);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
