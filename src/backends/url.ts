// Reading connection URLs, and loading the optional driver package a URL needs.
import { messageOf, SessionError } from '../errors.js';

/** Splits `?table=...` and the like off a URL: our parameters, not the driver's. */
export function takeParameters(url: string, names: readonly string[]): { url: string; params: Record<string, string> } {
  const query = url.indexOf('?');
  if (query === -1) return { url, params: {} };
  const search = new URLSearchParams(url.slice(query + 1));
  const params: Record<string, string> = {};
  for (const name of names) {
    const value = search.get(name);
    if (value !== null) params[name] = value;
    search.delete(name);
  }
  const rest = search.toString();
  return { url: url.slice(0, query) + (rest ? `?${rest}` : ''), params };
}

/**
 * The `create` parameter of a SQL store URL: true (the default) creates the file, schema and table
 * when missing; `create=false` never does, and a missing one fails with SESSION_STORE_MISSING
 * (the operator command opens stores so, and so may an app whose database user has no DDL rights).
 */
export function createParameter(value: string | undefined, scheme: string): boolean {
  if (value === undefined || value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new SessionError(
    'SESSION_INVALID_OPTION',
    `koa-kv-session: the create parameter of a ${scheme}:// URL is true or false, got ${JSON.stringify(value)}`,
  );
}

/** What a store opened with `create=false` says when its file, schema or table does not exist. */
export function storeMissing(what: string): SessionError {
  return new SessionError(
    'SESSION_STORE_MISSING',
    `koa-kv-session: ${what} does not exist, and create=false creates nothing (check the store URL; the app creates ` +
      `it on its first start)`,
  );
}

/** `host:port[,host:port]` of a URL, without scheme, credentials, path or query. */
export function hostsOf(url: string): string {
  return url
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .replace(/^[^@/]*@/, '')
    .replace(/[/?].*$/, '');
}

// Optional drivers are loaded by name at run time; their types are not available at build time.
// biome-ignore lint/suspicious/noExplicitAny: an untyped third-party boundary
export type AnyModule = any;

/** An optional package, or SESSION_ADAPTER_MISSING with the exact command that installs it. */
export async function importOptional(pkg: string, scheme: string): Promise<AnyModule> {
  try {
    return await import(pkg);
  } catch (error) {
    const code = (error as { code?: string }).code;
    // Node says so with a code; bundlers and test runners that resolve imports themselves, in words.
    const missing =
      code === 'ERR_MODULE_NOT_FOUND' ||
      code === 'MODULE_NOT_FOUND' ||
      /(cannot find|could not resolve)[^\n]*\bpackage|could not resolve "/i.test(messageOf(error));
    if (missing) {
      const install = pkg
        .split('/')
        .slice(0, pkg.startsWith('@') ? 2 : 1)
        .join('/');
      throw new SessionError(
        'SESSION_ADAPTER_MISSING',
        `koa-kv-session: the store URL ${scheme}:// needs the ${install} package, which is not installed: run \`npm ` +
          `install ${install}\``,
        500,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
}

/** The class a package exports, by name or as its default export (ESM and CommonJS builds differ). */
export async function exportOf(pkg: string, scheme: string, name: string): Promise<AnyModule> {
  const mod = await importOptional(pkg, scheme);
  return mod[name] ?? mod.default?.[name] ?? mod.default?.default ?? mod.default;
}
