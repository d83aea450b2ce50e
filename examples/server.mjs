// Demo: a small Koa site on koa-kv-session, configured only through SESSION_* variables.
//   npm start                                          -> embedded SQLite file ./sessions.sqlite
//   SESSION_STORE=redis://127.0.0.1:6379 npm start     -> Redis
import Koa from 'koa';
import { kvSession } from 'koa-kv-session';

const app = new Koa();
// Signs the session cookie. In production put real secrets in SESSION_SECRET_KEYS.
app.keys = [process.env.DEMO_SECRET ?? 'demo-secret-change-me'];
const sessions = kvSession();
app.use(sessions);

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

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

app.use(async (ctx) => {
  if (ctx.method === 'POST' && ctx.path === '/login') {
    const fields = await form(ctx);
    const user = (fields.get('user') ?? '').trim();
    if (!user) ctx.throw(400, 'a user name is needed');
    await ctx.session.regenerate(); // a new sid at login: no session fixation
    ctx.session.user = user;
    ctx.session.visits = 0;
    ctx.session.permanent = fields.get('remember') === 'on';
    ctx.redirect('/');
    return;
  }
  if (ctx.method === 'POST' && ctx.path === '/logout') {
    await ctx.session.destroy();
    ctx.redirect('/');
    return;
  }
  if (ctx.path !== '/') ctx.throw(404);
  ctx.type = 'html';
  if (!ctx.session.user) {
    ctx.body = page('Sign in', `<form method="post" action="/login">
<p><label>User name <input name="user" autocomplete="username" required></label></p>
<p><label><input type="checkbox" name="remember"> Remember me</label></p>
<p><button>Log in</button></p></form>`);
    return;
  }
  ctx.session.visits += 1;
  ctx.body = page(`Hello, ${escape(ctx.session.user)}`, `<p id="visits">Visits this session: ${ctx.session.visits}</p>
<p id="kind">${ctx.session.permanent ? 'Remembered on this browser' : 'Session ends when the browser closes'}</p>
<form method="post" action="/logout"><button>Log out</button></form>`);
});

const port = Number(process.env.PORT ?? 3000);
const server = app.listen(port, () => console.log(`koa-kv-session demo on http://localhost:${port}`));
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    server.close();
    sessions.close().finally(() => process.exit(0));
  });
}
