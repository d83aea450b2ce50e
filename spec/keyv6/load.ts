// Keyv 6 and its adapters from spec/keyv6/node_modules (installed by scripts/keyv6.sh), or why they cannot be had here.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const here = new URL('./', import.meta.url);
const require = createRequire(new URL('package.json', here));

/** Keyv 6's own floor: its packages declare engines >= 22.19. */
const NODE_FLOOR = [22, 19];

/** Why Keyv 6 cannot be loaded on this run (no install, or a Node older than Keyv 6 supports); undefined when it can. */
export function keyv6Unavailable(): string | undefined {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  if (major < (NODE_FLOOR[0] as number) || (major === NODE_FLOOR[0] && minor < (NODE_FLOOR[1] as number))) {
    return `Keyv 6 needs Node >= 22.19, this is ${process.version} (.ci/run runs these rows on Node 22 and 24)`;
  }
  const manifest = new URL('node_modules/keyv/package.json', here);
  if (!existsSync(manifest)) return 'Keyv 6 is not installed (bash scripts/keyv6.sh installs it into spec/keyv6)';
  const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
  return version.startsWith('6.') ? undefined : `spec/keyv6 holds keyv ${version}, not 6`;
}

/** Keyv 6 (under Keyv 6 the class is the module's `Keyv` export) and the adapters the suite runs on. Untyped: their types come from a separate install. */
export interface Keyv6 {
  readonly Keyv: new (store?: unknown, options?: unknown) => object;
  readonly KeyvRedis: new (url: string, options?: unknown) => { disconnect(): Promise<void> };
  readonly KeyvSqlite: new (options: unknown) => { disconnect(): Promise<void> };
  readonly KeyvPostgres: new (options: unknown) => { disconnect(): Promise<void> };
  readonly BigMap: new () => object;
  readonly KeyvMemoryAdapter: new (store: Map<unknown, unknown>) => object;
}

export function loadKeyv6(): Keyv6 {
  return {
    Keyv: require('keyv').Keyv,
    KeyvRedis: require('@keyv/redis').default,
    KeyvSqlite: require('@keyv/sqlite').default,
    KeyvPostgres: require('@keyv/postgres').default,
    BigMap: require('@keyv/bigmap').BigMap,
    KeyvMemoryAdapter: require('keyv').KeyvMemoryAdapter,
  };
}
