// The store option (or SESSION_STORE): a connection URL, checked against the schemes we open and the parameters each
// takes, or an object handed in (a Keyv instance, an adapter, a Map or a Redis client).
import { notAtomic, type StoreNotice } from './backends/contract.js';
import { handedIn } from './backends/handed-in.js';
import { maskPassword, schemeOf, schemeRow, SCHEMES } from './backends/registry.js';
import { describe, fail, type Source } from './parse.js';
import type { StoreSpec } from './store-types.js';
import { distance } from './warnings.js';

export const DEFAULT_STORE = 'sqlite://./sessions.sqlite';

/**
 * Refuses a query parameter a store URL's scheme does not take: any other one where all go to us, a near miss of ours
 * elsewhere.
 */
function checkParameters(url: string, scheme: string, source: Source): void {
  const row = schemeRow(scheme);
  const query = url.indexOf('?');
  if (row === undefined || query === -1) return;
  const ours = row.parameters ?? [];
  for (const name of new URLSearchParams(url.slice(query + 1)).keys()) {
    if (ours.includes(name)) continue;
    const near = ours.find((candidate) => distance(name, candidate) <= 2);
    const known = ours.length === 0 ? 'it takes none' : `it takes ${ours.join(', ')}`;
    if (near !== undefined)
      fail(source, `unknown parameter ?${name}= in a ${scheme}:// URL: did you mean ?${near}=? (${known})`);
    if (row.strict === true) fail(source, `unknown parameter ?${name}= in a ${scheme}:// URL (${known})`);
  }
}

/** The store a value names, or an error that names the option or variable (`source`). */
export function parseStore(value: unknown, source: Source): StoreSpec {
  if (typeof value === 'string') {
    const url = value.trim();
    const scheme = schemeOf(url);
    // A path where a URL was expected: the SQLite file it surely means.
    if (scheme === undefined && /(^[./~]|\.(sqlite3?|db)$)/i.test(url)) {
      fail(
        source,
        `expected a store URL, got the path ${JSON.stringify(url)}: for a SQLite file there, write sqlite://${url}`,
      );
    }
    if (schemeRow(scheme) === undefined) {
      fail(
        source,
        `unsupported store URL ${JSON.stringify(maskPassword(url))}: expected one of ${Object.keys(SCHEMES)
          .map((s) => `${s}://`)
          .join(', ')}`,
      );
    }
    checkParameters(url, scheme as string, source);
    return { kind: 'url', url, scheme: scheme as string };
  }
  if (typeof value === 'object' && value !== null) return { kind: 'given', value, handed: handedIn(value) };
  return fail(
    source,
    `expected a connection URL, a Keyv instance or adapter, a Map or a Redis client, got ${describe(value)}`,
  );
}

/** What a user must know of the store at start-up (said once each, as KvSessionWarnings, by kvSession()). */
export function startupNotices(spec: StoreSpec): readonly StoreNotice[] {
  if (spec.kind === 'given') return spec.handed.notices;
  const row = schemeRow(spec.scheme);
  return row === undefined || row.abilities.atomic ? [] : [notAtomic(`the store ${maskPassword(spec.url)}`)];
}
