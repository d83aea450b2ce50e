// memory:// over rounds of new sessions that expire: does the process keep growing? Each round sends
// ROUND_SESSIONS requests without a cookie (each makes a new session, lifetime 2 s) from bench/load.mjs
// in a process of its own, waits for them to expire and the background purge to run, collects garbage,
// and prints this process's RSS, heap, external memory and array buffers. A leak grows every round; an
// allocator's high-water mark grows in the first rounds and then stays.
//
//   npm run build && node --expose-gc bench/memory-rss.mjs            # ROUNDS=4 ROUND_SESSIONS=300000
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import Koa from 'koa';
import { kvSession } from '../dist/esm/index.js';

const ROUNDS = Number(process.env.ROUNDS ?? 4);
const PER_ROUND = Number(process.env.ROUND_SESSIONS ?? 300_000);
const run = promisify(execFile);

const app = new Koa();
app.keys = ['a long random secret for the memory bench'];
const sessions = kvSession({ store: 'memory://', lifetime: '2s', refreshInterval: 0, cleanupInterval: '1s' });
app.use(sessions);
app.use((ctx) => {
  ctx.session.user = 'someone';
  ctx.session.cart = { items: ['a', 'b', 'c'], at: Date.now() };
  ctx.body = 'ok';
});
const server = app.listen(0, '127.0.0.1');
await new Promise((resolve) => server.once('listening', resolve));
const url = `http://127.0.0.1:${server.address().port}/`;

const mib = (bytes) => (bytes / 1_048_576).toFixed(1);
function snapshot(label) {
  globalThis.gc?.();
  const m = process.memoryUsage();
  console.log(
    `${label.padEnd(10)} rss ${mib(m.rss).padStart(7)} MiB  heap ${mib(m.heapUsed).padStart(7)} MiB  external ${mib(m.external).padStart(6)} MiB  arrayBuffers ${mib(m.arrayBuffers).padStart(6)} MiB`,
  );
  return m;
}

if (globalThis.gc === undefined) console.log('(run with node --expose-gc for comparable figures)');
snapshot('start');
const rss = [];
for (let round = 1; round <= ROUNDS; round++) {
  const load = JSON.stringify({ url, connections: 50, amount: PER_ROUND });
  const { stdout } = await run(process.execPath, [join(import.meta.dirname, 'load.mjs'), load], { maxBuffer: 1 << 20 });
  const { requests, rps, non2xx } = JSON.parse(stdout);
  console.log(`round ${round}: ${requests} requests, ${Math.round(rps)} per second, ${non2xx} not 2xx`);
  snapshot(`round ${round}`);
  // Every session of the round expires, and the background purge removes them.
  await sleep(3500);
  rss.push(snapshot('expired').rss);
}
const growth = rss.slice(1).map((value, i) => value - (rss[i] ?? value));
console.log(
  `rss after each round, from the second on, against the round before: ${growth.map((bytes) => `${mib(bytes)} MiB`).join(', ')}`,
);
server.close();
await sessions.close();
