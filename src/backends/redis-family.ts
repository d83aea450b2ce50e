// What Redis, Redis Cluster and Valkey share: the compare-and-set script, client options, SCAN pages.
import { messageOf } from '../errors.js';
import { createHash } from 'node:crypto';
import { casStamp } from '../record.js';
import { missed, type CasResult, type ScannedPage } from './contract.js';

// ARGV[1] is what the stored value must start with: a record's header through its version token.
// Only that many bytes are read (GETRANGE): the record itself never enters the script unless the
// write is refused. With ARGV[4] = 'whole' the stored value must equal ARGV[1] (a value that
// is not a record); with ARGV[1] = '' the key must be absent. Returns 1 (written), 0 (no record)
// or the current value.
export const CAS_SCRIPT = `local expected = ARGV[1]
if expected == '' then
  if redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3], 'NX') then return 1 end
  return redis.call('GET', KEYS[1]) or 0
end
local found
if ARGV[4] == 'whole' then
  found = redis.call('GET', KEYS[1])
else
  found = redis.call('GETRANGE', KEYS[1], 0, #expected - 1)
end
if found ~= expected then return redis.call('GET', KEYS[1]) or 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`;

export const CAS_SHA = createHash('sha1').update(CAS_SCRIPT).digest('hex');

/** The script's arguments: the expected stamp ('' for "no value"), the new value, the TTL, and how to compare. */
export function casArguments(expected: string | undefined, next: string, ttl: number): string[] {
  if (expected === undefined) return ['', next, String(ttl), 'prefix'];
  const { stamp, whole } = casStamp(expected);
  return [stamp, next, String(ttl), whole ? 'whole' : 'prefix'];
}

/** The reply of CAS_SCRIPT: 1 written, 0 no record, or the record it holds. */
export function casScriptResult(reply: unknown): CasResult {
  return reply === 1 ? { status: 'saved' } : missed(reply === 0 ? undefined : reply);
}

/** The node-redis client calls the script needs. */
export interface RedisScripting {
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

/**
 * CAS_SCRIPT on a node-redis client (a single server, or the key's node of a cluster), loading it when the server does
 * not know it yet.
 */
export async function redisCompareAndSet(
  client: RedisScripting,
  key: string,
  expected: string | undefined,
  next: string,
  ttl: number,
): Promise<CasResult> {
  const options = { keys: [key], arguments: casArguments(expected, next, ttl) };
  let reply: unknown;
  try {
    reply = await client.evalSha(CAS_SHA, options);
  } catch (error) {
    if (!messageOf(error).includes('NOSCRIPT')) throw error;
    reply = await client.eval(CAS_SCRIPT, options);
  }
  return casScriptResult(reply);
}

/** Reconnection delays of every Redis-protocol client: 50 ms doubling, at most 2 s, for ever. */
export const reconnectDelay = (retries: number): number => Math.min(50 * 2 ** retries, 2000);

/**
 * Options of a node-redis client (or of each node of a cluster): fail commands at once while
 * disconnected instead of queueing them for ever, and keep reconnecting in the background so the
 * app recovers when Redis returns.
 */
export function redisClientOptions(timeout: number) {
  return { disableOfflineQueue: true, socket: { connectTimeout: timeout, reconnectStrategy: reconnectDelay } };
}

/**
 * @keyv/redis must throw, not swallow: Keyv's own option alone is not enough. No `connectionTimeout`:
 * @keyv/redis races the connect against a timer it never clears, which kept every process that had
 * connected alive for that long after close(); the socket's connectTimeout and our own deadline bound it.
 */
export function keyvRedisOptions() {
  return { throwOnErrors: true, throwOnConnectError: true };
}

/** A SCAN page's keys with the values read for them; a key that expired in between is left out. */
export function scannedEntries(
  keys: readonly string[],
  values: ReadonlyArray<string | null | undefined>,
): Array<readonly [string, string]> {
  return keys.flatMap((key, i) => {
    const value = values[i];
    return typeof value === 'string' ? [[key, value] as const] : [];
  });
}

/** A MATCH pattern for every key starting with `prefix`. */
export function globPrefix(prefix: string): string {
  return `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
}

interface RedisScanning {
  scan(cursor: string, options: { MATCH: string; COUNT: number }): Promise<{ cursor: string; keys: string[] }>;
  mGet(keys: string[]): Promise<Array<string | null>>;
  get(key: string): Promise<string | null>;
}

interface RedisClusterScanning {
  masters: unknown[];
  nodeClient(node: unknown): Promise<RedisScanning>;
  get(key: string): Promise<string | null>;
}

/** SCAN pages of a node-redis server, or of each master of a cluster in turn (cursor `<master>:<cursor>`). */
export async function redisScanPage(
  connection: unknown,
  prefix: string,
  cursor: string | undefined,
  count: number,
): Promise<ScannedPage> {
  const client = connection as RedisScanning | RedisClusterScanning;
  const [nodeText, position] = (cursor ?? '0:0').split(':') as [string, string];
  let node = Number(nodeText);
  const cluster = 'masters' in client && Array.isArray(client.masters) ? client : undefined;
  const scanner = cluster ? await cluster.nodeClient(cluster.masters[node]) : (client as RedisScanning);
  const reply = await scanner.scan(position, { MATCH: globPrefix(prefix), COUNT: count });
  // Keys of one cluster node may sit in different slots: read them one by one (the client pipelines them).
  const values =
    reply.keys.length === 0
      ? []
      : cluster
        ? await Promise.all(reply.keys.map((key) => cluster.get(key)))
        : await scanner.mGet(reply.keys);
  const entries = scannedEntries(reply.keys, values);
  let next: string | undefined = `${node}:${reply.cursor}`;
  if (String(reply.cursor) === '0') {
    node++;
    next = cluster && node < cluster.masters.length ? `${node}:0` : undefined;
  }
  return { entries, cursor: next };
}

/** What a @keyv/redis adapter (ours, or one handed in) gives: its node-redis client. */
export interface KeyvRedisLike {
  getClient(): Promise<unknown>;
  createKeyPrefix(key: string, namespace?: string): string;
}

/** True for a @keyv/redis adapter: it has a client to run scripts on and its own key prefixing. */
export function isKeyvRedis(adapter: object): adapter is KeyvRedisLike {
  const candidate = adapter as Partial<KeyvRedisLike>;
  return typeof candidate.getClient === 'function' && typeof candidate.createKeyPrefix === 'function';
}

/** True for a node-redis client or cluster: its camel-case script call beside the upper-case command names. */
export function isNodeRedisClient(value: object): boolean {
  const candidate = value as Record<string, unknown>;
  return (
    typeof candidate.evalSha === 'function' &&
    typeof candidate.SET === 'function' &&
    typeof candidate.del === 'function'
  );
}

/** True for an ioredis or iovalkey client (a server or a cluster), which share one API. */
export function isIoredisClient(value: object): boolean {
  const candidate = value as Record<string, unknown>;
  const calls = ['get', 'set', 'del', 'eval', 'quit'];
  return (
    calls.every((name) => typeof candidate[name] === 'function') &&
    typeof candidate.options === 'object' &&
    typeof candidate.status === 'string'
  );
}
