// One build of koa-kv-session in process, on memory://, with requests that go through Koa without sockets:
// what the library itself costs per request (no network, no store server), as CPU microseconds.
//   node bench/inproc.mjs <dist/esm/index.js of the build> <scenario: cbor-write | json-write | cbor-read | cbor-unknown>
//   [requests]  (unknown: signed cookies of sessions that were destroyed: each request finds nothing)
// Prints one JSON line: { scenario, cpuUs, wallUs }.
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { pathToFileURL } from 'node:url';
import Koa from 'koa';

const [build, scenario, count = '60000'] = process.argv.slice(2);
const [format, kind] = String(scenario).split('-');
const { kvSession } = await import(pathToFileURL(String(build)).href);

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
