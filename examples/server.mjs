// Demo: a small Koa site on koa-kv-session, configured only through SESSION_* variables.
//   npm start                                          -> embedded SQLite file ./sessions.sqlite
//   SESSION_STORE=redis://127.0.0.1:6379 npm start     -> Redis
import { randomBytes, timingSafeEqual } from 'node:crypto';
import Koa from 'koa';
import { kvSession, sessionExpires } from 'koa-kv-session';

const app = new Koa();
// Signs the session cookie. In production put real secrets in SESSION_SECRET_KEYS.
app.keys = [process.env.DEMO_SECRET ?? 'demo-secret-change-me'];
// The store, lifetime, cookie... come from SESSION_* variables; the code only says which session
// field names the user, so that "log out everywhere" can find every session of that user.
const sessions = kvSession({ userKey: 'user' });
// With SESSION_ABSOLUTE_LIFETIME set (seconds, or a duration such as 12h), a session ends that long
// after the login however active it is; the page shows when.
const absolute = process.env.SESSION_ABSOLUTE_LIFETIME;
const UNIT = { '': 1000, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const [, amount, unit] = /^(\d+)\s*([smhdw]?)$/.exec(absolute?.trim() ?? '') ?? [];
const absoluteMs = amount === undefined ? undefined : Number(amount) * UNIT[unit];
app.use(sessions);

const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function form(ctx) {
  let body = '';
  for await (const chunk of ctx.req) {
    body += chunk;
    if (body.length > 10_000) ctx.throw(413);
  }
  return new URLSearchParams(body);
}

function page(title, content) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<style>body{font:16px system-ui;max-width:34rem;margin:3rem auto}button,input{font:inherit}</style></head>
<body><h1>${title}</h1>${content}</body></html>`;
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
  if (expected.length === 0 || sent.length !== expected.length || !timingSafeEqual(sent, expected)) ctx.throw(403, 'invalid form token');
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
  if (ctx.path !== '/') ctx.throw(404);
  if (!ctx.session.user) {
    ctx.body = page(
      'Sign in',
      `<form method="post" action="/login">
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
<p id="kind">${ctx.session.permanent ? 'Remembered on this browser (the cookie has an expiry)' : 'Session ends when the browser closes'}</p>
<p id="expires">Unless you come back, this session expires at <time datetime="${expires?.toISOString()}">${expires?.toUTCString()}</time></p>
${absoluteMs === undefined ? '' : `<p id="absolute">Signed in at ${new Date(ctx.session.signedInAt).toUTCString()}: however active, this session ends by ${new Date(ctx.session.signedInAt + absoluteMs).toUTCString()}</p>`}
<p id="browsers">Signed in on ${browsers} browser${browsers === 1 ? '' : 's'}</p>
<form method="post" action="/logout">${csrf}<button id="logout">Log out</button></form>
<form method="post" action="/logout-everywhere">${csrf}<button id="logout-everywhere">Log out everywhere</button></form>`,
  );
});

const port = Number(process.env.PORT ?? 3000);
const server = app.listen(port, () => console.log(`koa-kv-session demo on http://localhost:${port}`));
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    server.close();
    sessions.close().finally(() => process.exit(0));
  });
}
