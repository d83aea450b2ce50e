// Benchmark driver: every contender in its own server process, load from another process (autocannon),
// contenders interleaved over rounds (A B C A B C ...), medians and ratios against the raw-client limit.
//   node bench/run.mjs [--quick]
// Writes bench/results/latest.json, latest.md and ratios.svg.
import { execFileSync, fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createClient } from 'redis';
import { codecBenchmark } from './codec.mjs';
import { commandStats, cpuTicks, median } from './harness.mjs';
import { renderChart, renderMarkdown } from './report.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const QUICK = process.argv.includes('--quick');
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const PG_TABLE = 'kvs_bench';
const CONFIG = QUICK
  ? { rounds: 2, duration: 1, connections: 50, pool: 300, rss: [10_000, 50_000], large: 0 }
  : { rounds: 5, duration: 3, connections: 50, pool: 1000, rss: [100_000, 1_000_000], large: 1_000_000 };
const CLK_TCK = 100;

const SCENARIOS = {
  a: {
    title: '(a) no cookie, session ignored',
    path: '/a',
    cookies: 'none',
    limit: 'bare',
    contenders: ['bare', 'kv-cbor', 'kv-json', 'koa-session', 'express-session'],
  },
  b: {
    title: '(b) read a ~1 KB session',
    path: '/b',
    cookies: 'pool',
    limit: 'raw',
    contenders: ['raw', 'kv-cbor', 'kv-json', 'koa-session', 'express-session'],
  },
  c: {
    title: '(c) write one key',
    path: '/c',
    cookies: 'pool',
    limit: 'raw',
    contenders: ['raw', 'kv-cbor', 'kv-json', 'koa-session', 'express-session'],
  },
  d: {
    title: '(d) Flask defaults, read-only handler',
    path: '/d',
    cookies: 'pool',
    limit: 'raw',
    contenders: ['raw', 'kv-cbor', 'kv-cbor/flask', 'koa-session/flask', 'express-session/flask'],
  },
  e: {
    title: '(e) read, in-memory stores',
    path: '/b',
    cookies: 'pool',
    limit: 'raw-memory',
    contenders: ['raw-memory', 'kv-memory', 'koa-session-memory', 'express-session-memory'],
  },
  f: {
    title: '(f) hot session: every connection writes one session',
    path: '/f',
    cookies: 'one',
    limit: 'raw',
    contenders: ['raw', 'kv-cbor', 'kv-json', 'koa-session', 'express-session'],
  },
  g: {
    title: '(g) PostgreSQL: read a ~1 KB session',
    path: '/b',
    cookies: 'pool',
    limit: 'raw-pg',
    contenders: ['raw-pg', 'kv-pg'],
  },
  h: {
    title: '(h) PostgreSQL: write one key',
    path: '/c',
    cookies: 'pool',
    limit: 'raw-pg',
    contenders: ['raw-pg', 'kv-pg'],
  },
  i: {
    title: '(i) SQLite default: read a ~1 KB session',
    path: '/b',
    cookies: 'pool',
    limit: 'raw-sqlite',
    contenders: ['raw-sqlite', 'kv-sqlite', 'kv-sqlite-0.1'],
  },
  j: {
    title: '(j) SQLite default: write one key',
    path: '/c',
    cookies: 'pool',
    limit: 'raw-sqlite',
    contenders: ['raw-sqlite', 'kv-sqlite', 'kv-sqlite-0.1'],
  },
};

/** With CONFIG.large sessions in the store (Redis and PostgreSQL): the same read and write scenarios again. */
const LARGE = { b: ['raw', 'kv-cbor'], c: ['raw', 'kv-cbor'], g: ['raw-pg', 'kv-pg'], h: ['raw-pg', 'kv-pg'] };

/** Starts a contender server; resolves with { port, pid, child, ask }. */
function startServer(contender, variant) {
  const prefix = `bench:${contender}:${variant}:${randomBytes(4).toString('hex')}:`;
  const child = fork(join(HERE, 'server.mjs'), [contender, variant, '0', prefix], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: ['--expose-gc'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${contender} exited with ${code}`)));
    child.once('message', (message) => {
      const ask = (question, key) =>
        new Promise((answer) => {
          const listener = (reply) => {
            if (reply && key in reply) {
              child.off('message', listener);
              answer(reply[key]);
            }
          };
          child.on('message', listener);
          child.send(question);
        });
      resolve({ contender, variant, prefix, port: message.port, pid: child.pid, child, ask });
    });
  });
}

async function login(server) {
  const response = await fetch(`http://127.0.0.1:${server.port}/login`);
  await response.text();
  const cookies = response.headers.getSetCookie().map((c) => c.split(';')[0]);
  return cookies.join('; ');
}

function load(url, cookies, options) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(HERE, 'load.mjs'), JSON.stringify({ url, cookies, connections: CONFIG.connections, ...options })],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop())) : reject(new Error(`load exited ${code}`)),
    );
  });
}

/** Redis's own CPU time so far (user + system), in microseconds. */
async function redisCpu(redis) {
  const text = await redis.info('cpu');
  const user = Number(/used_cpu_user:([\d.]+)/.exec(text)?.[1] ?? 0);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(text)?.[1] ?? 0);
  return (user + sys) * 1e6;
}

const diff = (after, before) => {
  const out = {};
  for (const [name, calls] of Object.entries(after)) {
    const delta = calls - (before[name] ?? 0);
    if (delta > 0 && !['info', 'ping', 'hello', 'client'].includes(name)) out[name] = delta;
  }
  return out;
};

/**
 * `count` live sessions of ~1 KB: under the koa-kv-session Redis contender's prefix and in the shared
 * PostgreSQL table under the PostgreSQL contender's prefix (the raw contenders share the server and
 * the table). Written in batches; deleted with everything else at the end.
 */
async function seedLarge(redis, redisPrefix, pgPrefix, count) {
  const started = Date.now();
  const { encodePayload } = await import('../dist/esm/codec.js');
  const { frameRecord } = await import('../dist/esm/record.js');
  const record = frameRecord(
    encodePayload({ user: { id: 'u-1', name: 'Seeded' }, notes: 'n'.repeat(900) }, 'cbor'),
    'cbor',
    Date.now() + 86_400_000,
    true,
    { created: Date.now() },
  );
  for (let i = 0; i < count; i += 10_000) {
    const multi = redis.multi();
    for (let j = i; j < Math.min(count, i + 10_000); j++)
      multi.set(`${redisPrefix}seed-${j}`, record, { PX: 86_400_000 });
    await multi.execAsPipeline();
  }
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  await client.query(
    `INSERT INTO ${PG_TABLE} (key, value) SELECT $1 || 'seed-' || n, $2 FROM generate_series(1, $3) AS n ON CONFLICT (key) DO NOTHING`,
    [pgPrefix, record, count],
  );
  await client.query(`ANALYZE ${PG_TABLE}`);
  await client.end();
  process.stdout.write(
    `seeded ${count.toLocaleString('en')} sessions in Redis and in PostgreSQL in ${Math.round((Date.now() - started) / 1000)} s\n`,
  );
}

async function main() {
  const started = Date.now();
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: join(HERE, '..'), stdio: 'inherit' });
  // The SQLite contenders' files (one each), removed at the end; the servers inherit the variable.
  process.env.BENCH_SQLITE_DIR = mkdtempSync(join(tmpdir(), 'kvs-bench-'));
  const redis = createClient({ url: REDIS_URL });
  await redis.connect();

  // One server per contender and variant, alive for the whole run.
  const names = [...new Set(Object.values(SCENARIOS).flatMap((s) => s.contenders))];
  const servers = new Map();
  for (const name of names) {
    const [contender, variant = 'default'] = name.split('/');
    servers.set(name, await startServer(contender, variant));
  }
  // A pool of sessions per server, and one hot session for (f).
  const pools = new Map();
  for (const [name, server] of servers) {
    const pool = [];
    if (name !== 'bare') for (let i = 0; i < CONFIG.pool; i++) pool.push(await login(server));
    pools.set(name, { pool, hot: pool[0] ?? '' });
  }

  /** One run of a contender in a scenario: throughput, its CPU, Redis's CPU and commands, per request. */
  async function measure(id, name) {
    const scenario = SCENARIOS[id];
    const server = servers.get(name);
    const { pool, hot } = pools.get(name);
    const cookies = scenario.cookies === 'none' ? [] : scenario.cookies === 'one' ? [hot] : pool;
    const before = await commandStats(redis);
    const redisBefore = await redisCpu(redis);
    const cpuBefore = cpuTicks(server.pid);
    const result = await load(`http://127.0.0.1:${server.port}${scenario.path}`, cookies, {
      duration: CONFIG.duration,
    });
    const cpu = cpuTicks(server.pid) - cpuBefore;
    const redisUs = (await redisCpu(redis)) - redisBefore;
    const commands = diff(await commandStats(redis), before);
    const total = Object.values(commands).reduce((sum, n) => sum + n, 0);
    // Redis counts the commands a script runs as well: our compare-and-set script runs one GET and,
    // when it writes, one SET. Round trips are what the client sent.
    const scripts = (commands.evalsha ?? 0) + (commands.eval ?? 0);
    const inner = scripts + Math.min(commands.set ?? 0, scripts);
    const requests = Math.max(1, result.requests);
    return {
      rps: result.rps,
      requests: result.requests,
      p99: result.p99,
      bad: result.errors + result.non2xx,
      cpuUs: ((cpu / CLK_TCK) * 1e6) / requests,
      redisCpuUs: redisUs / requests,
      commandsPerRequest: total / requests,
      roundTripsPerRequest: (total - inner) / requests,
      commands: Object.fromEntries(Object.entries(commands).map(([k, v]) => [k, v / requests])),
    };
  }

  // Statistics for the planner of the new PostgreSQL table (as autovacuum would gather soon enough),
  // then a warm-up of every contender on each of its paths: the first seconds of a fresh process
  // (JIT, connection pools, caches) run at a fraction of its speed and must not count.
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  await client.query(`ANALYZE ${PG_TABLE}`);
  await client.end();
  for (const [id, scenario] of Object.entries(SCENARIOS)) {
    for (const name of scenario.contenders) {
      const server = servers.get(name);
      const { pool, hot } = pools.get(name);
      const cookies = scenario.cookies === 'none' ? [] : scenario.cookies === 'one' ? [hot] : pool;
      await load(`http://127.0.0.1:${server.port}${scenario.path}`, cookies, { duration: QUICK ? 1 : 2 });
    }
    process.stdout.write(`warmed up (${id})\n`);
  }

  const samples = {}; // scenario -> contender -> [{ rps, cpuUs, commands }]
  for (let round = 0; round < CONFIG.rounds; round++) {
    for (const [id, scenario] of Object.entries(SCENARIOS)) {
      // Rotate the order every round so no contender always runs first.
      const order = scenario.contenders.map((_, i) => scenario.contenders[(i + round) % scenario.contenders.length]);
      for (const name of order) {
        const entry = await measure(id, name);
        ((samples[id] ??= {})[name] ??= []).push(entry);
        process.stdout.write(
          `round ${round + 1}/${CONFIG.rounds} ${id} ${name.padEnd(24)} ${Math.round(entry.rps)} req/s  ${entry.cpuUs.toFixed(0)} us cpu  ${entry.roundTripsPerRequest.toFixed(2)} round trips/req${entry.bad ? `  ${entry.bad} bad` : ''}\n`,
        );
      }
    }
  }

  // The same read and write scenarios with CONFIG.large live sessions in Redis and in PostgreSQL
  // (requests still spread over the pool): the cost per request must not depend on the store's size.
  const largeSamples = {};
  if (CONFIG.large > 0) {
    await seedLarge(redis, servers.get('kv-cbor').prefix, servers.get('kv-pg').prefix, CONFIG.large);
    for (let round = 0; round < 3; round++) {
      for (const [id, names] of Object.entries(LARGE)) {
        for (const name of round % 2 ? [...names].reverse() : names) {
          const entry = await measure(id, name);
          ((largeSamples[id] ??= {})[name] ??= []).push(entry);
          process.stdout.write(`large round ${round + 1}/3 ${id} ${name.padEnd(24)} ${Math.round(entry.rps)} req/s\n`);
        }
      }
    }
  }

  // (d): writes per session per refresh interval, counted over one extra run with a fresh count.
  // RSS of koa-kv-session under scenario (c) after 100k and 1M requests.
  const rss = {};
  for (const name of ['kv-cbor']) {
    const server = servers.get(name);
    const { pool } = pools.get(name);
    let done = 0;
    rss[name] = {};
    for (const mark of CONFIG.rss) {
      await load(`http://127.0.0.1:${server.port}/c`, pool, { amount: mark - done });
      done = mark;
      await server.ask('gc', 'gc');
      rss[name][mark] = await server.ask('rss', 'rss');
      process.stdout.write(
        `rss ${name} after ${mark} requests of (c): ${(rss[name][mark] / 1048576).toFixed(1)} MiB\n`,
      );
    }
  }

  const scenarios = {};
  for (const [id, scenario] of Object.entries(SCENARIOS)) {
    const limit = median(samples[id][scenario.limit].map((s) => s.rps));
    const limitCpu = median(samples[id][scenario.limit].map((s) => s.cpuUs));
    scenarios[id] = {
      title: scenario.title,
      limit: scenario.limit,
      contenders: Object.fromEntries(
        scenario.contenders.map((name) => {
          const list = samples[id][name];
          const rps = median(list.map((s) => s.rps));
          const cpuUs = median(list.map((s) => s.cpuUs));
          const commands = {};
          for (const key of new Set(list.flatMap((s) => Object.keys(s.commands))))
            commands[key] = median(list.map((s) => s.commands[key] ?? 0));
          return [
            name,
            {
              rps,
              ratio: rps / limit,
              cpuUs,
              cpuOverLimitUs: cpuUs - limitCpu,
              p99: median(list.map((s) => s.p99)),
              redisCpuUs: median(list.map((s) => s.redisCpuUs)),
              commandsPerRequest: median(list.map((s) => s.commandsPerRequest)),
              roundTripsPerRequest: median(list.map((s) => s.roundTripsPerRequest)),
              commands,
              bad: list.reduce((sum, s) => sum + s.bad, 0),
            },
          ];
        }),
      ),
    };
  }

  const large = {};
  for (const [id, names] of Object.entries(largeSamples)) {
    const limitName = SCENARIOS[id].limit;
    const limit = median(names[limitName].map((s) => s.rps));
    large[id] = Object.fromEntries(
      Object.keys(names).map((name) => {
        const rps = median(names[name].map((s) => s.rps));
        return [name, { rps, ratio: rps / limit, ratioWithPool: scenarios[id].contenders[name].ratio }];
      }),
    );
  }

  const dir = join(HERE, 'results');
  const previousFile = join(dir, QUICK ? 'quick.json' : 'latest.json');
  const previous = existsSync(previousFile) ? JSON.parse(readFileSync(previousFile, 'utf8')) : undefined;
  const results = {
    date: new Date().toISOString(),
    previous: previous
      ? {
          date: previous.date,
          ratios: Object.fromEntries(
            Object.entries(previous.scenarios).map(([id, sc]) => [
              id,
              Object.fromEntries(Object.entries(sc.contenders).map(([n, c]) => [n, c.ratio])),
            ]),
          ),
        }
      : undefined,
    large: { sessions: CONFIG.large, scenarios: large },
    mode: QUICK ? 'quick' : 'full',
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      redis: (await redis.info('server')).match(/redis_version:(\S+)/)?.[1],
    },
    config: CONFIG,
    scenarios,
    rss,
    codec: codecBenchmark(QUICK),
    seconds: Math.round((Date.now() - started) / 1000),
  };
  for (const server of servers.values()) server.child.kill();
  // Leave the shared servers as we found them: delete our own keys and table, never flush.
  for (const server of servers.values()) {
    for await (const batch of redis.scanIterator({ MATCH: `${server.prefix}*`, COUNT: 1000 })) {
      const keys = Array.isArray(batch) ? batch : [batch];
      if (keys.length > 0) await redis.unlink(keys);
    }
  }
  await redis.quit();
  const dropper = new pg.Client({ connectionString: POSTGRES_URL });
  await dropper.connect();
  await dropper.query(`DROP TABLE IF EXISTS ${PG_TABLE}`);
  await dropper.end();
  rmSync(process.env.BENCH_SQLITE_DIR, { recursive: true, force: true });

  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, QUICK ? 'quick.json' : 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(dir, QUICK ? 'quick.md' : 'latest.md'), renderMarkdown(results));
  writeFileSync(join(dir, QUICK ? 'quick.svg' : 'ratios.svg'), renderChart(results));
  process.stdout.write(`\n${renderMarkdown(results)}\n(${results.seconds} s)\n`);
  process.exit(0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
