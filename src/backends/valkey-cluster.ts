// A Valkey (or Redis) Cluster through iovalkey's Cluster client (`valkey+cluster://host:port,host:port`).
import type { Backend, ScannedPage } from './contract.js';
import { globPrefix, reconnectDelay, scannedEntries } from './redis-family.js';
import { hostsOf, importOptional, type AnyModule } from './url.js';
import { ValkeyBackend } from './valkey.js';

/**
 * The single-server Valkey backend on a cluster client: GET, SET PX, DEL and the compare-and-set
 * script are routed to the key's node by the client. Listing walks the masters one after another
 * (cursor `<master>:<cursor>`); the keys of one page may sit in different slots, so they are read
 * one by one (the client pipelines them).
 */
export class ValkeyClusterBackend extends ValkeyBackend {
  override async scanPage(prefix: string, cursor: string | undefined, count: number): Promise<ScannedPage> {
    const masters: AnyModule[] = this.client.nodes('master');
    const [nodeText, position] = (cursor ?? '0:0').split(':') as [string, string];
    const node = Number(nodeText);
    const master = masters[node];
    if (master === undefined) return { entries: [], cursor: undefined };
    const [next, keys] = (await master.scan(position, 'MATCH', globPrefix(prefix), 'COUNT', count)) as [
      string,
      string[],
    ];
    const values: Array<string | null> = await Promise.all(keys.map((key) => this.client.get(key)));
    const entries = scannedEntries(keys, values);
    if (next !== '0') return { entries, cursor: `${node}:${next}` };
    return { entries, cursor: node + 1 < masters.length ? `${node + 1}:0` : undefined };
  }
}

export async function openValkeyCluster(url: string, scheme: string, timeout: number): Promise<Backend> {
  const iovalkey = await importOptional('iovalkey', scheme);
  const Cluster = iovalkey.Cluster ?? iovalkey.default?.Cluster;
  const nodes = hostsOf(url)
    .split(',')
    .map((host) => {
      const [name, port] = host.split(':');
      return { host: name, port: Number(port ?? 6379) };
    });
  // Like a single server: fail commands at once while disconnected, keep reconnecting meanwhile.
  const cluster = new Cluster(nodes, {
    enableOfflineQueue: false,
    clusterRetryStrategy: reconnectDelay,
    redisOptions: { connectTimeout: timeout, maxRetriesPerRequest: 1 },
  });
  const backend = new ValkeyClusterBackend(cluster, cluster);
  await backend.connected(timeout);
  return backend;
}
