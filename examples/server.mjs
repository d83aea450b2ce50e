// Demo: a small Koa site on koa-kv-session, configured only through SESSION_* variables.
//   npm start                                          -> embedded SQLite file ./sessions.sqlite
//   SESSION_STORE=redis://127.0.0.1:6379 npm start     -> Redis
import { randomBytes, timingSafeEqual } from 'node:crypto';
import Koa from 'koa';
import { kvSession, sessionExpires, sessionId } from 'koa-kv-session';

const app = new Koa();
// Signs the session cookie. In production put real secrets in SESSION_SECRET_KEYS.
app.keys = [process.env.DEMO_SECRET ?? 'demo-secret-change-me'];
/** "Firefox on Linux": what the devices page shows for a session (made once, at sign-in). */
function deviceLabel(ctx) {
  const agent = ctx.get('user-agent');
  const browser = /Edg\//.test(agent)
    ? 'Edge'
    : /Chrom(e|ium)\//.test(agent)
      ? 'Chrome'
      : /Firefox\//.test(agent)
        ? 'Firefox'
        : /Safari\//.test(agent)
          ? 'Safari'
          : 'A browser';
  const os = /Android/.test(agent)
    ? 'Android'
    : /iPhone|iPad/.test(agent)
      ? 'iOS'
      : /Windows/.test(agent)
        ? 'Windows'
        : /Mac OS X/.test(agent)
          ? 'macOS'
          : /Linux/.test(agent)
            ? 'Linux'
            : 'an unknown system';
  return `${browser} on ${os}`;
}

// The store, lifetime, cookie... come from SESSION_* variables; the code only says which session
// field names the user (so that the devices page can find every session of that user) and how to
// label a device. The demo's own defaults, each a variable you may set: a browser-session login
// ends after 2 hours away, and any login 90 days after it was made, however active.
process.env.SESSION_NON_PERMANENT_LIFETIME ??= '2h';
process.env.SESSION_ABSOLUTE_LIFETIME ??= '90d';
const sessions = kvSession({ userKey: 'user', describe: deviceLabel });

// A cookie naming a session that has ended (signed out elsewhere, expired): the sign-in page says so.
app.on('session:expired', ({ ctx }) => {
  if (ctx) ctx.state.ended = true;
});

// Live connections (server-sent events) by session id: closed when that session is signed out.
const live = new Map();
for (const event of ['session:revoked', 'session:destroyed']) {
  app.on(event, ({ id }) => {
    for (const response of live.get(id) ?? []) response.end();
    live.delete(id);
  });
}
// SESSION_ABSOLUTE_LIFETIME (seconds, or a duration such as 12h): a session ends that long after the
// login however active it is; the page shows when.
const absolute = process.env.SESSION_ABSOLUTE_LIFETIME;
const UNIT = { '': 1000, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const [, amount, unit] = /^(\d+)\s*([smhdw]?)$/.exec(absolute?.trim() ?? '') ?? [];
const absoluteMs = amount === undefined ? undefined : Number(amount) * UNIT[unit];
app.use(sessions);

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** A time, shown in the browser's own time zone (the script in page() rewrites it; UTC without scripts). */
const time = (date) => `<time datetime="${date.toISOString()}">${date.toUTCString()}</time>`;

async function form(ctx) {
  let body = '';
  for await (const chunk of ctx.req) {
    body += chunk;
    if (body.length > 10_000) ctx.throw(413);
  }
  return new URLSearchParams(body);
}

function page(title, content) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title>
<style>body{font:16px system-ui;max-width:34rem;margin:3rem auto;padding:0 1rem}button,input{font:inherit}</style></head>
<body><h1>${title}</h1>${content}
<script>for (const t of document.querySelectorAll('time')) t.textContent = new Date(t.dateTime).toLocaleString();</script>
</body></html>`;
}

/** The sign-in form's CSRF token lives in a short, browser-session pre-login session. */
function csrfToken(ctx) {
  if (!ctx.session.csrf) {
    ctx.session.csrf = randomBytes(18).toString('base64url');
    ctx.session.permanent = false;
  }
  return ctx.session.csrf;
}

function checkCsrf(ctx, fields) {
  const sent = Buffer.from(fields.get('csrf') ?? '');
  const expected = Buffer.from(ctx.session.csrf ?? '');
  if (expected.length === 0 || sent.length !== expected.length || !timingSafeEqual(sent, expected))
    ctx.throw(403, 'invalid form token');
}

app.use(async (ctx) => {
  if (ctx.method === 'POST' && ctx.path === '/login') {
    const fields = await form(ctx);
    checkCsrf(ctx, fields);
    const user = (fields.get('user') ?? '').trim();
    if (!user) ctx.throw(400, 'a user name is needed');
    await ctx.session.regenerate(); // a new sid at login: no session fixation
    ctx.session = { user, visits: 0, csrf: randomBytes(18).toString('base64url'), signedInAt: Date.now() };
    ctx.session.permanent = fields.get('remember') === 'on';
    ctx.redirect('/');
    return;
  }
  if (ctx.method === 'POST' && ctx.path === '/logout') {
    checkCsrf(ctx, await form(ctx));
    await ctx.session.destroy();
    ctx.redirect('/logged-out');
    return;
  }
  if (ctx.method === 'POST' && ctx.path === '/devices/sign-out') {
    const fields = await form(ctx);
    checkCsrf(ctx, fields);
    // The page names devices by their safe id, never by sid: revokeSession({ user, id }).
    if (ctx.session.user) await sessions.revokeSession({ user: ctx.session.user, id: fields.get('id') ?? '' });
    ctx.redirect('/devices');
    return;
  }
  if (ctx.method === 'POST' && ctx.path === '/devices/sign-out-others') {
    checkCsrf(ctx, await form(ctx));
    if (ctx.session.user) await sessions.revokeUserSessions(ctx.session.user, { except: ctx.session.sid });
    ctx.redirect('/devices');
    return;
  }
  if (ctx.path === '/events') {
    // Server-sent events: greets the signed-in user at connect time; closed when the session is signed out.
    const id = sessionId(ctx);
    if (!ctx.session.user || id === undefined) {
      ctx.status = 204; // EventSource stops reconnecting on 204
      return;
    }
    // Written to the socket directly (ctx.respond = false): a client that goes away is no error.
    ctx.respond = false;
    const res = ctx.res;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    res.write(`data: ${JSON.stringify(`Hello, ${ctx.session.user}: this page is live`)}\n\n`);
    if (!live.has(id)) live.set(id, new Set());
    live.get(id).add(res);
    ctx.req.on('close', () => live.get(id)?.delete(res));
    return;
  }
  if (ctx.method === 'POST' && ctx.path === '/logout-everywhere') {
    checkCsrf(ctx, await form(ctx));
    // Every session of this user, on every browser, this one included.
    if (ctx.session.user) await sessions.revokeUserSessions(ctx.session.user);
    ctx.session = null;
    ctx.redirect('/logged-out');
    return;
  }
  ctx.type = 'html';
  if (ctx.path === '/logged-out') {
    // Touches no session: after a logout the browser holds no session cookie at all.
    ctx.body = page('Logged out', '<p>You are logged out. <a href="/">Sign in again</a></p>');
    return;
  }
  if (ctx.path === '/devices' && ctx.session.user) {
    const here = sessionId(ctx);
    // This device first, then the others as listed (newest login first).
    const listed = await sessions.listUserSessions(ctx.session.user);
    const devices = [...listed.filter((d) => d.id === here), ...listed.filter((d) => d.id !== here)];
    const csrf = `<input type="hidden" name="csrf" value="${escapeHtml(ctx.session.csrf)}">`;
    const when = (date) => (date ? time(date) : 'unknown');
    const rows = devices.map(
      (
        device,
      ) => `<li class="device" data-id="${escapeHtml(device.id)}"><strong>${escapeHtml(device.label ?? 'A device')}</strong>${device.id === here ? ' <em class="this-device">(this device)</em>' : ''}<br>
signed in since ${when(device.createdAt)}, last active ${device.id === here ? 'now' : when(device.lastSeenAt)}
${device.id === here ? '' : `<form method="post" action="/devices/sign-out">${csrf}<input type="hidden" name="id" value="${escapeHtml(device.id)}"><button class="sign-out">Sign out</button></form>`}</li>`,
    );
    ctx.body = page(
      'Your devices',
      `<ul id="devices">${rows.join('\n')}</ul>
<form method="post" action="/devices/sign-out-others">${csrf}<button id="sign-out-others">Sign out everywhere else</button></form>
<p><a href="/">Back</a></p>`,
    );
    return;
  }
  if (ctx.path !== '/') ctx.throw(404);
  if (!ctx.session.user) {
    const notice = ctx.state.ended
      ? '<p id="notice">You were signed out: on another device, or your session ended.</p>'
      : '';
    ctx.body = page(
      'Sign in',
      `${notice}<form method="post" action="/login">
<input type="hidden" name="csrf" value="${csrfToken(ctx)}">
<p><label>User name <input name="user" autocomplete="username" required></label></p>
<p><label><input type="checkbox" name="remember"> Remember me</label></p>
<p><button>Log in</button></p></form>`,
    );
    return;
  }
  ctx.session.visits += 1;
  const expires = sessionExpires(ctx);
  const browsers = (await sessions.listUserSessions(ctx.session.user)).length;
  const csrf = `<input type="hidden" name="csrf" value="${escapeHtml(ctx.session.csrf)}">`;
  ctx.body = page(
    `Hello, ${escapeHtml(ctx.session.user)}`,
    `<p id="visits">Visits this session: ${ctx.session.visits}</p>
<p id="kind">${ctx.session.permanent ? 'Remembered on this browser (the cookie has an expiry)' : 'This session ends when the browser closes'}</p>
<p id="expires">${ctx.session.permanent ? 'Unless you come back, it expires at' : 'or, if you stay away, at'} ${expires ? time(expires) : ''}</p>
${absoluteMs === undefined ? '' : `<p id="absolute">Signed in at ${time(new Date(ctx.session.signedInAt))}: however active, this session ends by ${time(new Date(ctx.session.signedInAt + absoluteMs))}</p>`}
<p id="browsers">Signed in on ${browsers} browser${browsers === 1 ? '' : 's'}: <a id="devices-link" href="/devices">your devices</a></p>
<p id="live">connecting…</p>
<script>
  const live = new EventSource('/events');
  live.onmessage = (event) => { document.getElementById('live').textContent = JSON.parse(event.data); };
  // Closed while this page stays: signed out elsewhere, or the server went away. The page reloads to show which.
  let leaving = false;
  addEventListener('beforeunload', () => { leaving = true; live.close(); });
  live.onerror = () => {
    live.close();
    if (leaving) return;
    document.getElementById('live').textContent = 'live connection closed';
    location.reload();
  };
</script>
<form method="post" action="/logout">${csrf}<button id="logout">Log out</button></form>
<form method="post" action="/logout-everywhere">${csrf}<button id="logout-everywhere">Log out everywhere</button></form>`,
  );
});

const port = Number(process.env.PORT ?? 3000);
const store = (process.env.SESSION_STORE ?? 'sqlite://./sessions.sqlite (the default)').replace(/:[^:@/]*@/, ':***@');
const server = app.listen(port, () =>
  console.log(`koa-kv-session demo on http://localhost:${port}, sessions in ${store}`),
);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    server.close();
    sessions.close().finally(() => process.exit(0));
  });
}
