// What take() and update() cost beside a plain write, on Redis, in one run:  node bench/take-update.mjs [--quick]
// One koa-kv-session server (CBOR) and the raw-client limit (bench/server.mjs); requests spread over a pool of
// sessions:
//   (c) a plain write of one key; (u) the same key through ctx.session.update(); (t) take() of a one-time token and
//   the next token put in its place (take()'s own compare-and-set, then the commit's).
// Writes bench/results/take-update.{json,md}.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import {
  commandStats,
  cpuTicks,
  load,
  login,
  median,
  REDIS_URL,
  roundTrips,
  startServer,
  stopServers,
} from './harness.mjs';
import { writeResults } from './write-results.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const QUICK = process.argv.includes('--quick');
const CONFIG = QUICK ? { rounds: 3, duration: 1, pool: 300 } : { rounds: 5, duration: 3, pool: 1000 };
const RUNS = [
  { id: 'limit', title: 'raw client: GET + SET (the limit)', server: 'raw', path: '/c' },
  { id: 'c', title: '(c) plain write of one key', server: 'kv-cbor', path: '/c' },
  { id: 'u', title: '(u) update() of that key', server: 'kv-cbor', path: '/u' },
  { id: 't', title: '(t) take() a token, put the next one back', server: 'kv-cbor', path: '/t' },
];

execFileSync('npm', ['run', 'build', '--silent'], { cwd: join(HERE, '..'), stdio: 'inherit' });
const servers = new Map();
const redis = createClient({ url: REDIS_URL });
await redis.connect();
try {
  for (const name of ['raw', 'kv-cbor']) servers.set(name, await startServer(name, name));
  const pools = new Map();
  for (const [name, server] of servers)
    pools.set(name, await Promise.all(Array.from({ length: CONFIG.pool }, () => login(server))));
  const measure = async (run, duration) => {
    const server = servers.get(run.server);
    const [cpu, stats] = [cpuTicks(server.pid), await commandStats(redis)];
    const result = await load(`http://127.0.0.1:${server.port}${run.path}`, pools.get(run.server), duration);
    const requests = Math.max(1, result.requests);
    return {
      rps: result.rps,
      cpuUs: ((cpuTicks(server.pid) - cpu) * 1e4) / requests,
      trips: roundTrips(await commandStats(redis), stats) / requests,
      bad: result.errors + result.non2xx,
    };
  };
  for (const run of RUNS) await measure(run, QUICK ? 1 : 2);
  const samples = new Map(RUNS.map((run) => [run.id, []]));
  for (let round = 0; round < CONFIG.rounds; round++) {
    for (let i = 0; i < RUNS.length; i++) {
      const run = RUNS[(i + round) % RUNS.length];
      const sample = await measure(run, CONFIG.duration);
      samples.get(run.id).push(sample);
      process.stdout.write(
        `round ${round + 1}/${CONFIG.rounds} ${run.id.padEnd(6)} ${Math.round(sample.rps)} req/s ${sample.trips.toFixed(2)} round trips/req${sample.bad ? ` ${sample.bad} bad` : ''}\n`,
      );
    }
  }
  const summary = (id) => {
    const list = samples.get(id);
    return {
      rps: median(list.map((s) => s.rps)),
      cpuUs: median(list.map((s) => s.cpuUs)),
      trips: median(list.map((s) => s.trips)),
      bad: list.reduce((n, s) => n + s.bad, 0),
    };
  };
  const [limit, plain] = [summary('limit'), summary('c')];
  const rows = RUNS.map((run) => {
    const s = summary(run.id);
    return {
      run: run.title,
      rps: Math.round(s.rps),
      limit: (s.rps / limit.rps).toFixed(2),
      plain: (s.rps / plain.rps).toFixed(2),
      trips: s.trips.toFixed(2),
      cpu: s.cpuUs.toFixed(0),
      bad: s.bad,
    };
  });
  const columns = [
    ['request', (r) => r.run, 'left'],
    ['req/s', (r) => r.rps],
    ['x limit', (r) => r.limit],
    ['x plain write', (r) => r.plain],
    ['store round trips/req', (r) => r.trips],
    ['server CPU us/req', (r) => r.cpu],
    ['bad responses', (r) => r.bad],
  ];
  writeResults(
    'take-update',
    rows,
    `take() and update() beside a plain write, Redis, ${CONFIG.rounds} interleaved rounds of ${CONFIG.duration} s, medians`,
    columns,
  );
} finally {
  await redis.quit();
  await stopServers(servers.values());
}
