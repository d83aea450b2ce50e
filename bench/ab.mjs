// This build against another build of koa-kv-session, in the same run: did a change cost the request path anything?
//   node bench/ab.mjs <path to the other checkout, built (npm run build)> [--quick]
// Each build runs as its own server (bench/server.mjs, BENCH_KV_SESSION naming its dist), beside the raw Redis
// client (the limit), on the read (b), write (c) and in-memory read (e) scenarios of run.mjs, and (g) a cookie whose
// session was logged out (what an unknown sid costs); rounds interleave the servers, rotating the order. Writes
// bench/results/ab.{json,md}: req/s, server CPU per request and this build over the other, medians. Redis keys are
// deleted by their prefixes at the end, never the whole server.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuTicks, load, login, median, startServer, stopServers } from './harness.mjs';
import { writeResults } from './write-results.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const QUICK = process.argv.includes('--quick');
const other = process.argv.slice(2).find((arg) => !arg.startsWith('--'));
if (other === undefined || !existsSync(join(resolve(other), 'dist/esm/index.js'))) {
  console.error('usage: node bench/ab.mjs <other checkout, with dist/ built> [--quick]');
  process.exit(2);
}
const OTHER_DIST = join(resolve(other), 'dist/esm/index.js');
const CONFIG = QUICK ? { rounds: 3, duration: 1, pool: 300 } : { rounds: 7, duration: 3, pool: 1000 };
const SCENARIOS = {
  b: { title: '(b) read a ~1 KB session (Redis)', path: '/b', contenders: ['raw', 'kv-cbor', 'kv-cbor@other'] },
  c: { title: '(c) write one key (Redis)', path: '/c', contenders: ['raw', 'kv-cbor', 'kv-cbor@other'] },
  e: { title: '(e) read, in-memory store', path: '/b', contenders: ['raw-memory', 'kv-memory', 'kv-memory@other'] },
  g: {
    title: '(g) a signed cookie whose session is gone (Redis)',
    path: '/b',
    contenders: ['raw', 'kv-cbor', 'kv-cbor@other'],
  },
};
/** (g) sends koa-kv-session the cookies of sessions logged out: each request finds nothing under its sid. */
const GONE = new Set(['g']);

execFileSync('npm', ['run', 'build', '--silent'], { cwd: join(HERE, '..'), stdio: 'inherit' });
const names = [...new Set(Object.values(SCENARIOS).flatMap((s) => s.contenders))];
const servers = new Map();
const pools = new Map();
try {
  for (const name of names) {
    const [contender, build] = name.split('@');
    servers.set(name, await startServer(name, contender, build === 'other' ? { BENCH_KV_SESSION: OTHER_DIST } : {}));
  }
  for (const [name, server] of servers)
    pools.set(name, await Promise.all(Array.from({ length: CONFIG.pool }, () => login(server))));
  for (const id of GONE)
    for (const name of SCENARIOS[id].contenders.filter((contender) => contender.startsWith('kv-'))) {
      const server = servers.get(name);
      const cookies = await Promise.all(Array.from({ length: CONFIG.pool }, () => login(server)));
      for (const cookie of cookies) await fetch(`http://127.0.0.1:${server.port}/logout`, { headers: { cookie } });
      pools.set(`${name} gone`, cookies);
    }
  const run = async (id, name, duration) => {
    const server = servers.get(name);
    const before = cpuTicks(server.pid);
    const pool = pools.get(GONE.has(id) && pools.has(`${name} gone`) ? `${name} gone` : name);
    const result = await load(`http://127.0.0.1:${server.port}${SCENARIOS[id].path}`, pool, duration);
    return {
      rps: result.rps,
      cpuUs: ((cpuTicks(server.pid) - before) * 1e4) / Math.max(1, result.requests),
      bad: result.errors + result.non2xx,
    };
  };
  // Warm-up: a fresh process runs at a fraction of its speed for its first seconds.
  for (const [id, scenario] of Object.entries(SCENARIOS))
    for (const name of scenario.contenders) await run(id, name, QUICK ? 1 : 3);
  const samples = {};
  for (let round = 0; round < CONFIG.rounds; round++) {
    for (const [id, scenario] of Object.entries(SCENARIOS)) {
      const order = scenario.contenders.map((_, i) => scenario.contenders[(i + round) % scenario.contenders.length]);
      for (const name of order) {
        const sample = await run(id, name, CONFIG.duration);
        ((samples[id] ??= {})[name] ??= []).push(sample);
        process.stdout.write(
          `round ${round + 1}/${CONFIG.rounds} ${id} ${name.padEnd(16)} ${Math.round(sample.rps)} req/s ${sample.cpuUs.toFixed(0)} us cpu${sample.bad ? ` ${sample.bad} bad` : ''}\n`,
        );
      }
    }
  }
  const rows = Object.entries(SCENARIOS).flatMap(([id, scenario]) => {
    const [limit, ours, theirs] = scenario.contenders.map((name) => ({
      rps: median(samples[id][name].map((s) => s.rps)),
      cpuUs: median(samples[id][name].map((s) => s.cpuUs)),
      bad: samples[id][name].reduce((sum, s) => sum + s.bad, 0),
    }));
    // Per round, this build over the other: the spread of that ratio is the noise the median sits in.
    const perRound = samples[id][scenario.contenders[1]].map(
      (s, i) => s.rps / samples[id][scenario.contenders[2]][i].rps,
    );
    return [
      {
        scenario: scenario.title,
        'this x limit': (ours.rps / limit.rps).toFixed(2),
        'other x limit': (theirs.rps / limit.rps).toFixed(2),
        'this / other': (ours.rps / theirs.rps).toFixed(2),
        'per round min-max': `${Math.min(...perRound).toFixed(2)}-${Math.max(...perRound).toFixed(2)}`,
        'CPU us/req this': ours.cpuUs.toFixed(0),
        'CPU us/req other': theirs.cpuUs.toFixed(0),
        'bad responses': ours.bad + theirs.bad,
      },
    ];
  });
  const gitHead = (dir) => execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: dir }).toString().trim();
  writeResults(
    'ab',
    rows,
    `This build (${gitHead(join(HERE, '..'))}) against ${gitHead(resolve(other))}, ${CONFIG.rounds} interleaved rounds of ${CONFIG.duration} s, medians`,
    Object.keys(rows[0]).map((key) => [key, (row) => row[key], key === 'scenario' ? 'left' : 'right']),
  );
} finally {
  await stopServers(servers.values());
}
