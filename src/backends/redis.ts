// Redis and Redis Cluster by URL: @keyv/redis opens and closes the node-redis client; sessions go through that client
// directly (redis-client.ts).
import type { Backend } from './contract.js';
import { NodeRedisBackend, type NodeRedisClient } from './redis-client.js';
import { keyvRedisOptions, redisClientOptions } from './redis-family.js';
import { exportOf, hostsOf, importOptional, type AnyModule } from './url.js';

/**
 * Connects before the first command: without the offline queue, a command sent while the first
 * connection is still being made fails. If Redis is down now, the client keeps reconnecting and
 * commands fail fast (503) until it is back. The socket's connectTimeout ends at the TCP connect:
 * a server that accepts and never answers the handshake is given up on after `timeout` here.
 */
async function connected(adapter: AnyModule, timeout: number): Promise<Backend> {
  // The first connection error fails the open at once, with its own words (a refused port is not a
  // timeout), and the client goes with it: the next store call opens a new one.
  let onError: ((error: unknown) => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const failed = new Promise<never>((_, reject) => {
    onError = reject;
    adapter.once('error', onError);
    timer = setTimeout(
      () => reject(new Error(`Redis accepted the connection but did not answer its handshake within ${timeout} ms`)),
      timeout,
    );
  });
  let client: NodeRedisClient;
  try {
    client = await Promise.race([adapter.getClient(), failed]);
  } catch (error) {
    await Promise.resolve(adapter.disconnect?.(true)).catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
    adapter.off('error', onError);
  }
  // The client itself, under our exact keys: the adapter's prefixing and error swallowing stay out of it.
  let closed = false;
  // Without a goodbye: the server is not answering (the socket goes at once, pending commands fail).
  const destroy = () => {
    closed = true;
    try {
      (client as unknown as { destroy(): void }).destroy();
    } catch {
      // Already closed.
    }
  };
  // node-redis's goodbye waits for every reply still due, for ever, and cannot be cut short once begun.
  // So a PING first: Redis answers in order, so its reply means every earlier one has come. Answered
  // within `timeout`, the goodbye is quick; not, the connection is dropped.
  const close = async () => {
    if (closed) return;
    const ping = (client as unknown as { ping?(): Promise<unknown> }).ping?.() ?? Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeout);
    });
    const answered = await Promise.race([
      ping.then(
        () => true,
        () => false,
      ),
      late,
    ]).finally(() => clearTimeout(timer));
    if (closed) return;
    closed = true;
    if (answered) await adapter.disconnect();
    else destroy();
  };
  return new NodeRedisBackend(client, { close, destroy, on: (event, listener) => adapter.on(event, listener) });
}

/** `redis://` and `rediss://`. */
export async function openRedis(url: string, scheme: string, timeout: number): Promise<Backend> {
  const KeyvRedis = await exportOf('@keyv/redis', scheme, 'KeyvRedis');
  return connected(new KeyvRedis({ url, ...redisClientOptions(timeout) }, keyvRedisOptions()), timeout);
}

/** `redis+cluster://host:port,host:port`: the listed nodes are where the client starts; it finds the rest. */
export async function openRedisCluster(url: string, scheme: string, timeout: number): Promise<Backend> {
  const redis = await importOptional('@keyv/redis', scheme);
  const KeyvRedis = redis.default?.default ?? redis.default;
  const createCluster = redis.createCluster ?? redis.default?.createCluster;
  const cluster = createCluster({
    rootNodes: hostsOf(url)
      .split(',')
      .map((host: string) => ({ url: `redis://${host}` })),
    defaults: redisClientOptions(timeout),
  });
  return connected(new KeyvRedis(cluster, keyvRedisOptions()), timeout);
}
