// One build of koa-kv-session in process, on memory://, with requests that go through Koa without sockets:
// what the library itself costs per request (no network, no store server), as CPU microseconds.
//   node bench/inproc.mjs <dist/esm/index.js of the build, or "sol"> <scenario: cbor-write | json-write | cbor-read |
//   cbor-unknown> [requests]  (unknown: signed cookies of sessions that were destroyed: each request finds nothing)
// "sol": the anchor benchmark's speed-of-light prototype (a signed sid, one read, a CBOR record, a token compare before
// the write) on a Map, in place of the library: what the least a correct session path costs on the same harness.
// Prints one JSON line: { scenario, cpuUs, wallUs }.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import Koa from 'koa';

const [build, scenario, count = '60000'] = process.argv.slice(2);
const [format, kind] = String(scenario).split('-');
const { kvSession } = build === 'sol' ? { kvSession: sol } : await import(pathToFileURL(String(build)).href);

// The anchor benchmark's ~1 KB session: 12 keys, nested objects and arrays.
const fixture = () => ({
  userId: 48213,
  username: 'alice.lindqvist',
  email: 'alice.lindqvist@example.org',
  roles: ['user', 'editor', 'billing-viewer'],
  csrfSecret: '9f3a1c7e5b2d4f608a1e3c5b7d9f1a2c',
  createdAt: '2025-11-20T09:14:33.120Z',
  counter: 0,
  prefs: {
    theme: 'dark',
    locale: 'sv-SE',
    timezone: 'Europe/Stockholm',
    pageSize: 50,
    notifications: { email: true, push: false, digest: 'weekly' },
  },
  cart: {
    currency: 'EUR',
    items: [
      { sku: 'BK-10421', qty: 1, price: 2990, title: 'Designing Data-Intensive Applications' },
      { sku: 'BK-20877', qty: 2, price: 1450, title: 'The Pragmatic Programmer' },
      { sku: 'HW-77810', qty: 1, price: 12900, title: 'Mechanical keyboard, brown switches' },
    ],
  },
  flash: [{ type: 'info', msg: 'Welcome back! Your last login was from Stockholm, SE.' }],
  oauth: { provider: 'github', scopes: ['read:user', 'user:email'], expiresAt: 1764070000, tokenHint: 'gho_****3f9a' },
});

/** The prototype as a middleware in kvSession()'s place: ctx.session is its decoded record, written back if changed. */
function sol() {
  const { Encoder } = createRequire(import.meta.url)('cbor-x');
  const cbor = new Encoder({ useRecords: false, mapsAsObjects: true });
  const store = new Map();
  const sign = (sid) => createHmac('sha256', app.keys[0]).update(sid).digest('base64url');
  const frame = (data) => `c2:0:1:${randomBytes(6).toString('base64url')}:::${cbor.encode(data).toString('base64')}`;
  return async (ctx, next) => {
    const [sid = '', signature = ''] = (/session=([^;]*)/.exec(ctx.get('cookie'))?.[1] ?? '').split('.');
    const given = Buffer.from(signature);
    const signed = given.length === 43 && timingSafeEqual(given, Buffer.from(sign(sid)));
    const text = signed ? await Promise.resolve(store.get(sid)) : undefined;
    // "c2:0:1:" and the 8 characters of the version token: what the compare-and-set compares.
    const stamp = text?.slice(0, 16);
    ctx.session = text === undefined ? {} : cbor.decode(Buffer.from(text.slice(text.lastIndexOf(':') + 1), 'base64'));
    await next();
    // It knows which requests write (the prototype in the anchor benchmark writes on /write only).
    if (ctx.session === null) store.delete(sid);
    else if (ctx.path === '/init' || kind === 'write') {
      const id = text === undefined ? randomBytes(32).toString('base64url') : sid;
      if (text !== undefined && !(await Promise.resolve(store.get(id))).startsWith(stamp)) ctx.throw(409);
      store.set(id, frame(ctx.session));
      if (text === undefined) ctx.set('Set-Cookie', `session=${id}.${sign(id)}; path=/; httponly`);
    }
  };
}

const app = new Koa();
app.keys = ['bench-signing-key-0123456789abcdef'];
app.use(kvSession({ store: 'memory://', serialization: format, keyPrefix: 'inproc:' }));
app.use((ctx) => {
  if (ctx.path === '/init') Object.assign(ctx.session, fixture());
  else if (ctx.path === '/destroy') ctx.session = null;
  else if (kind === 'write') ctx.session.counter = (ctx.session.counter || 0) + 1;
  ctx.body = String(ctx.session.username);
});
const handle = app.callback();
const socket = new Socket();

/** A request through Koa, its response going nowhere; resolves with the Set-Cookie it sent. */
function request(path, cookie) {
  return new Promise((resolve) => {
    const req = new IncomingMessage(socket);
    req.method = 'GET';
    req.url = path;
    req.headers = cookie === undefined ? { host: 'bench' } : { host: 'bench', cookie };
    const res = new ServerResponse(req);
    res.write = () => true;
    res.end = () => {
      resolve(res.getHeader('set-cookie'));
      // As a socket's write would: listeners Koa attached (on-finished) let go of the request.
      res.emit('finish');
      return res;
    };
    handle(req, res);
  });
}

const cookies = [];
for (let i = 0; i < 1000; i++) {
  const set = await request('/init');
  cookies.push(String(Array.isArray(set) ? set[0] : set).split(';')[0]);
}
if (kind === 'unknown') for (const cookie of cookies) await request('/destroy', cookie);
const n = Number(count);
for (let i = 0; i < n / 3; i++) await request('/', cookies[i % 1000]);
const cpu = process.cpuUsage();
const started = process.hrtime.bigint();
for (let i = 0; i < n; i++) await request('/', cookies[i % 1000]);
const used = process.cpuUsage(cpu);
const wall = Number(process.hrtime.bigint() - started) / 1000;
process.stdout.write(`${JSON.stringify({ scenario, cpuUs: (used.user + used.system) / n, wallUs: wall / n })}\n`);
