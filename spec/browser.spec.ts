// The demo app in a real browser (Debian's Chromium driven by playwright-core): what only a browser shows.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REQUIRE_SERVERS } from './support/servers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ROOT = resolve(import.meta.dirname, '..');
const SHOTS = join(ROOT, '.test-output', 'screenshots');
const available = existsSync(CHROMIUM);

let demo: ChildProcess | undefined;
let url = '';
/** What the demo printed at start-up. */
let started = '';
let work = '';

beforeAll(async () => {
  if (!available) return;
  work = mkdtempSync(join(tmpdir(), 'kvs-browser-'));
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  url = `http://127.0.0.1:${port}`;
  // The demo exactly as `npm start` runs it, configured only through SESSION_* variables.
  demo = spawn(process.execPath, [join(ROOT, 'examples', 'server.mjs')], {
    cwd: work,
    env: {
      ...process.env,
      PORT: String(port),
      SESSION_STORE: `sqlite://${join(work, 'sessions.sqlite')}`,
      DEMO_SECRET: 'browser-test',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((ready, fail) => {
    demo?.stdout?.on('data', (chunk: Buffer) => {
      started += chunk.toString();
      if (started.includes('demo on')) ready();
    });
    demo?.once('exit', (code) => fail(new Error(`demo exited with ${code}`)));
  });
}, 60_000);

afterAll(() => {
  demo?.kill();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A browser on a profile directory of its own; launching again on the same directory is "reopening the browser". */
function launch(profile: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    // Another time zone than the server's UTC: the pages show times in the browser's own.
    timezoneId: 'America/New_York',
    locale: 'en-US',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

async function logIn(context: BrowserContext, user: string, remember: boolean): Promise<void> {
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(url);
  await page.fill('input[name=user]', user);
  if (remember) await page.check('input[name=remember]');
  await page.click('button');
  await page.waitForSelector('#visits');
}

const sessionCookie = async (context: BrowserContext) => (await context.cookies(url)).find((c) => c.name === 'session');

describe('the demo in Chromium', () => {
  it.skipIf(!available && !REQUIRE_SERVERS)(
    'two browsers of one user: one signs the other out from the devices page; the other is signed out and its live connection closed',
    async () => {
      const profiles = [mkdtempSync(join(tmpdir(), 'kvs-profile-')), mkdtempSync(join(tmpdir(), 'kvs-profile-'))];
      const [laptop, phone] = [await launch(profiles[0] as string), await launch(profiles[1] as string)];
      try {
        await logIn(laptop, 'fay', true);
        const laptopPage = laptop.pages()[0] as Page;
        // The live connection (server-sent events) greets the user from the session at connect time.
        await laptopPage.waitForFunction(
          `document.getElementById('live')?.textContent === 'Hello, fay: this page is live'`,
        );
        await logIn(phone, 'fay', true);
        const phonePage = phone.pages()[0] as Page;
        await phonePage.click('#devices-link');
        await phonePage.waitForSelector('#devices');
        expect(await phonePage.locator('.device').count()).toBe(2);
        expect(await phonePage.locator('.this-device').count()).toBe(1);
        // This device first.
        expect(await phonePage.locator('.device').first().locator('.this-device').count()).toBe(1);
        // This device is active now; the page fits a phone's width.
        expect(await phonePage.textContent('.device:has(.this-device)')).toContain('last active now');
        expect(await phonePage.getAttribute('meta[name=viewport]', 'content')).toBe(
          'width=device-width, initial-scale=1',
        );
        expect(await phonePage.textContent('#devices')).toContain('Chrome on Linux');
        // The page names devices by a safe id: no sid of either browser is in it.
        for (const context of [laptop, phone])
          expect(await phonePage.content()).not.toContain((await sessionCookie(context))?.value.split('.')[0]);
        await phonePage.click('.device:not(:has(.this-device)) .sign-out');
        await phonePage.waitForSelector('#devices');
        expect(await phonePage.locator('.device').count()).toBe(1);
        // The signed-out browser shows it at once: its page reloads when the live connection closes.
        await laptopPage.waitForFunction(`document.querySelector('h1')?.textContent === 'Sign in'`);
        // ... and says why.
        expect(await laptopPage.textContent('#notice')).toBe(
          'You were signed out: on another device, or your session ended.',
        );
        await phonePage.goto(url);
        expect(await phonePage.textContent('h1')).toBe('Hello, fay');
        mkdirSync(SHOTS, { recursive: true });
        await phonePage.goto(`${url}/devices`);
        await phonePage.screenshot({ path: join(SHOTS, 'devices.png') });
      } finally {
        await laptop.close();
        await phone.close();
        for (const profile of profiles) rmSync(profile, { recursive: true, force: true });
      }
    },
    60_000,
  );

  it.skipIf(!available && !REQUIRE_SERVERS)(
    'login regenerates the sid; reloads keep the user logged in; the cookie is HttpOnly, SameSite=Lax, Path=/',
    async () => {
      const profile = mkdtempSync(join(tmpdir(), 'kvs-profile-'));
      const context = await launch(profile);
      try {
        const page = await context.newPage();
        await page.goto(url);
        const before = await sessionCookie(context); // the sign-in form's pre-login session
        expect(before).toBeDefined();
        await logIn(context, 'ada', false);
        const after = await sessionCookie(context);
        expect(after?.value.split('.')[0]).not.toBe(before?.value.split('.')[0]);
        expect(after).toMatchObject({ httpOnly: true, sameSite: 'Lax', path: '/' });
        await page.reload();
        await page.reload();
        expect(await page.textContent('h1')).toBe('Hello, ada');
        expect(await page.textContent('#visits')).toBe('Visits this session: 3');
        // The page shows when the session expires if the user stays away: the demo's browser-session lifetime
        // (SESSION_NON_PERMANENT_LIFETIME, 2 hours unless set) from now.
        const expires = Date.parse((await page.getAttribute('#expires time', 'datetime')) as string);
        expect(expires).toBeGreaterThan(Date.now() + 2 * 3_600_000 - 60_000);
        expect(expires).toBeLessThanOrEqual(Date.now() + 2 * 3_600_000);
        // And when it ends however active (SESSION_ABSOLUTE_LIFETIME, 90 days unless set), as `npm start` shows it.
        const absolute = Date.parse((await page.getAttribute('#absolute time:last-of-type', 'datetime')) as string);
        expect(absolute).toBeGreaterThan(Date.now() + 90 * 86_400_000 - 60_000);
        expect(absolute).toBeLessThanOrEqual(Date.now() + 90 * 86_400_000);
        // In the browser's time zone and language, not the server's UTC.
        const shown = await page.textContent('#expires time');
        expect(shown).toBe(await page.evaluate((at) => new Date(at).toLocaleString(), expires));
        expect(shown).not.toBe(new Date(expires).toUTCString());
        // The start-up line names the store.
        expect(started).toMatch(/sessions in sqlite:\/\/\S+sessions\.sqlite/);
        mkdirSync(SHOTS, { recursive: true });
        await page.screenshot({ path: join(SHOTS, 'logged-in.png') });
      } finally {
        await context.close();
        rmSync(profile, { recursive: true, force: true });
      }
    },
  );

  it.skipIf(!available && !REQUIRE_SERVERS)(
    'without "remember me" the cookie has no expiry and closing the browser logs the user out',
    async () => {
      const profile = mkdtempSync(join(tmpdir(), 'kvs-profile-'));
      try {
        const first = await launch(profile);
        await logIn(first, 'bob', false);
        expect((await sessionCookie(first))?.expires).toBe(-1); // a browser-session cookie
        // The page says so, and gives the idle expiry as the other way it ends, not as a contradiction.
        const shown = first.pages()[0] as Page;
        expect(await shown.textContent('#kind')).toBe('This session ends when the browser closes');
        expect(await shown.textContent('#expires')).toMatch(/^or, if you stay away, at /);
        await first.close();
        const again = await launch(profile);
        const page = again.pages()[0] ?? (await again.newPage());
        await page.goto(url);
        expect(await page.textContent('h1')).toBe('Sign in');
        await again.close();
      } finally {
        rmSync(profile, { recursive: true, force: true });
      }
    },
  );

  it.skipIf(!available && !REQUIRE_SERVERS)(
    'with "remember me" the cookie has an expiry and the user is still logged in after reopening the browser',
    async () => {
      const profile = mkdtempSync(join(tmpdir(), 'kvs-profile-'));
      try {
        const first = await launch(profile);
        await logIn(first, 'cyd', true);
        const cookie = await sessionCookie(first);
        expect(cookie?.expires).toBeGreaterThan(Date.now() / 1000 + 86_400);
        await first.close();
        const again = await launch(profile);
        const page = again.pages()[0] ?? (await again.newPage());
        await page.goto(url);
        expect(await page.textContent('h1')).toBe('Hello, cyd');
        await again.close();
      } finally {
        rmSync(profile, { recursive: true, force: true });
      }
    },
  );

  it.skipIf(!available && !REQUIRE_SERVERS)(
    'log out removes the cookie from the browser, and the old sid no longer works when replayed',
    async () => {
      const profile = mkdtempSync(join(tmpdir(), 'kvs-profile-'));
      const context = await launch(profile);
      try {
        await logIn(context, 'dee', true);
        const old = await sessionCookie(context);
        const page = context.pages()[0] ?? (await context.newPage());
        await page.click('#logout');
        await page.waitForURL(`${url}/logged-out`);
        expect(await sessionCookie(context)).toBeUndefined();
        const replay = await fetch(url, { headers: { cookie: `session=${old?.value}` } });
        expect(await replay.text()).toContain('<h1>Sign in</h1>');
      } finally {
        await context.close();
        rmSync(profile, { recursive: true, force: true });
      }
    },
  );

  it.skipIf(!available && !REQUIRE_SERVERS)(
    '"log out everywhere" in one browser logs out a second browser profile of the same user',
    async () => {
      const profiles = [mkdtempSync(join(tmpdir(), 'kvs-profile-')), mkdtempSync(join(tmpdir(), 'kvs-profile-'))];
      const [laptop, phone] = await Promise.all(profiles.map((profile) => launch(profile)));
      try {
        await logIn(laptop as BrowserContext, 'eve', true);
        await logIn(phone as BrowserContext, 'eve', false);
        const laptopPage = (laptop as BrowserContext).pages()[0] as Page;
        const phonePage = (phone as BrowserContext).pages()[0] as Page;
        await laptopPage.reload();
        expect(await laptopPage.textContent('#browsers')).toMatch(/^Signed in on 2 browsers:/);
        const phoneSid = (await sessionCookie(phone as BrowserContext))?.value;
        await laptopPage.click('#logout-everywhere');
        await laptopPage.waitForURL(`${url}/logged-out`);
        expect(await sessionCookie(laptop as BrowserContext)).toBeUndefined();
        // The other browser's page sees its live connection close and shows the sign-in form by itself;
        // its old cookie names a session that is gone (the sign-in form has started a new one).
        await phonePage.waitForFunction(`document.querySelector('h1')?.textContent === 'Sign in'`);
        expect((await sessionCookie(phone as BrowserContext))?.value).not.toBe(phoneSid);
        const replay = await fetch(url, { headers: { cookie: `session=${phoneSid}` } });
        expect(await replay.text()).toContain('<h1>Sign in</h1>');
      } finally {
        await Promise.all([laptop, phone].map((context) => context?.close()));
        for (const profile of profiles) rmSync(profile, { recursive: true, force: true });
      }
    },
  );
});
