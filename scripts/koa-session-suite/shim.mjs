// koa-session's API in front of kvSession(), mapping its options the way docs/from-koa-session.md
// says and nothing more: what its own test suite then finds different is what the guide documents.
import { kvSession } from '../../dist/esm/index.js';

// One store for every app the tests make, as one server would be: their sessions outlive an app
// instance, as koa-session's cookie-held sessions do.
const store = new Map();

/** koa-session's `session(opts, app)` (or `session(app)`): kvSession() with the mapped options, on a store all apps share. */
export default function session(opts, _app) {
  // session(app): no options.
  if (opts !== undefined && typeof opts.use === 'function') opts = {};
  opts = opts ?? {};
  const cookie = {};
  for (const name of ['httpOnly', 'signed', 'secure', 'sameSite', 'domain', 'path', 'overwrite']) {
    if (opts[name] !== undefined) cookie[name] = opts[name];
  }
  // koa-session's default name, kept as the guide suggests when other code reads the cookie.
  cookie.name = opts.key ?? 'koa.sess';
  const options = { store, env: {}, cookie };
  if (opts.maxAge === 'session') options.permanent = false;
  else if (opts.maxAge !== undefined) options.lifetime = opts.maxAge;
  if (opts.rolling === true) options.refreshInterval = 0;
  if (opts.rolling === false && opts.renew === false) options.refreshEachRequest = false;
  if (opts.prefix !== undefined) options.keyPrefix = opts.prefix;
  return kvSession(options);
}

// What the test files import besides the default export: koa-session's own schema (index.test.ts).
export { SessionOptions } from 'koa-session';
