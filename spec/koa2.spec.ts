// Koa 2 and Koa 3 both work: the same session flow on each major version.
import type { AddressInfo } from 'node:net';
import Koa2 from 'koa2';
import Koa3 from 'koa';
import { describe, expect, it } from 'vitest';
import { kvSession } from '../src/index.js';
import { cookiePair } from './support/app.js';
import { uniquePrefix } from './support/servers.js';

describe.each([
  ['Koa 2', Koa2 as unknown as typeof Koa3],
  ['Koa 3', Koa3],
])('%s', (_label, Koa) => {
  it('creates, reads, regenerates and destroys a session', async () => {
    const app = new Koa();
    app.keys = ['k'];
    const middleware = kvSession({ store: 'memory://', keyPrefix: uniquePrefix('koa') });
    app.use(middleware);
    app.use(async (ctx) => {
      if (ctx.path === '/login') {
        await ctx.session.regenerate();
        ctx.session.user = 'ada';
      } else if (ctx.path === '/logout') {
        await ctx.session.destroy();
      }
      ctx.body = String(ctx.session.user ?? 'anonymous');
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const login = await fetch(`${url}/login`);
      const cookie = cookiePair(login.headers.getSetCookie()[0]);
      expect(await login.text()).toBe('ada');
      expect(await (await fetch(url, { headers: { cookie } })).text()).toBe('ada');
      const logout = await fetch(`${url}/logout`, { headers: { cookie } });
      expect(logout.headers.getSetCookie()[0]).toMatch(/^session=; Expires=Thu, 01 Jan 1970/);
      expect(await (await fetch(url, { headers: { cookie } })).text()).toBe('anonymous');
    } finally {
      server.close();
      await middleware.close();
    }
  });
});
