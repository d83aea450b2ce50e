// What the standalone load benchmarks (ab.mjs, take-update.mjs) share: contender servers (server.mjs), logins,
// autocannon load in its own process, CPU per process, medians, and cleaning up their Redis keys.
import { fork, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';

const HERE = dirname(fileURLToPath(import.meta.url));
export const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

export const median = (values) => {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** User + system CPU time of process `pid` so far, in clock ticks (1/100 s). */
export function cpuTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** A contender of server.mjs as its own process, under a fresh key prefix; `env` adds to its environment. */
export function startServer(name, contender, env = {}) {
  const prefix = `bench-${name}:${randomBytes(4).toString('hex')}:`;
  const child = fork(join(HERE, 'server.mjs'), [contender, 'default', '0', prefix], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...env },
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
    child.once('message', (message) => resolve({ name, prefix, port: message.port, pid: child.pid, child }));
  });
}

/** A new session on `server`: its Cookie header. */
export async function login(server) {
  const response = await fetch(`http://127.0.0.1:${server.port}/login`);
  await response.text();
  return response.headers
    .getSetCookie()
    .map((c) => c.split(';')[0])
    .join('; ');
}

/**
 * `duration` seconds of load on `url` with 50 connections spread over `cookies`: { rps, requests, p99, errors, non2xx
 * }.
 */
export function load(url, cookies, duration) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(HERE, 'load.mjs'), JSON.stringify({ url, cookies, connections: 50, duration })],
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

/** Stops the servers and deletes the Redis keys under their prefixes (never the whole server). */
export async function stopServers(servers) {
  for (const server of servers) server.child.kill();
  const redis = createClient({ url: REDIS_URL });
  await redis.connect();
  for (const server of servers) {
    for await (const batch of redis.scanIterator({ MATCH: `${server.prefix}*`, COUNT: 1000 })) {
      const keys = Array.isArray(batch) ? batch : [batch];
      if (keys.length > 0) await redis.unlink(keys);
    }
  }
  await redis.quit();
}

/** Calls per command name Redis has served so far (INFO commandstats). */
export async function commandStats(redis) {
  const text = await redis.info('commandstats');
  const stats = {};
  for (const match of text.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) stats[match[1]] = Number(match[2]);
  return stats;
}

/**
 * The round trips a client made between two commandstats: Redis counts the commands our
 * compare-and-set script runs inside it too (a GET, and a SET when it writes), which are no trips.
 */
export function roundTrips(after, before) {
  const delta = (name) => (after[name] ?? 0) - (before[name] ?? 0);
  const total = Object.keys(after)
    .filter((name) => !['info', 'ping', 'hello', 'client'].includes(name))
    .reduce((sum, name) => sum + delta(name), 0);
  const scripts = delta('evalsha') + delta('eval');
  return total - scripts - Math.min(delta('set'), scripts);
}
