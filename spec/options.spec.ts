// Options and SESSION_* variables: defaults, precedence (option > env > default), and errors that name the culprit.
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBackend } from '../src/backends/memory.js';
import { kvSession, SessionOptionError, type KvSessionOptions } from '../src/index.js';
import { resolveSettings } from '../src/options.js';
import { asStore, cookiePair, startApp, type TestApp } from './support/app.js';
import { CountingAdapter } from './support/counting.js';
import { uniquePrefix } from './support/servers.js';
import { Keyv } from 'keyv';

const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

const DAY = 86_400_000;

describe('defaults', () => {
  it('with no options and an empty environment', () => {
    const s = resolveSettings({ env: {} });
    expect(s.store).toEqual({ kind: 'url', url: 'sqlite://./sessions.sqlite', scheme: 'sqlite' });
    expect(s).toMatchObject({
      permanent: true,
      lifetime: 31 * DAY,
      refreshEachRequest: true,
      refreshInterval: 60_000,
      sidLength: 32,
      keyPrefix: 'session:',
      serialization: 'cbor',
      maxSize: 65_536,
      keys: undefined,
      storeTimeout: 2000,
      storeRetries: 2,
      cleanupEveryNRequests: 0,
      userKey: undefined,
    });
    expect(s.cookie).toEqual({
      name: 'session',
      domain: undefined,
      path: '/',
      httpOnly: true,
      secure: 'auto',
      sameSite: 'lax',
      partitioned: false,
      signed: true,
      overwrite: false,
    });
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.isFrozen(s.cookie)).toBe(true);
  });

  it('refreshInterval defaults to lifetime / 10 when that is under a minute', () => {
    expect(resolveSettings({ env: {}, lifetime: '5m' }).refreshInterval).toBe(30_000);
  });
});

describe('every option has its variable; the option wins over the variable, the variable over the default', () => {
  const cases: Array<
    [
      keyof KvSessionOptions | `cookie.${string}`,
      string,
      string,
      unknown,
      unknown,
      (s: ReturnType<typeof resolveSettings>) => unknown,
    ]
  > = [
    [
      'store',
      'SESSION_STORE',
      'redis://127.0.0.1:6379',
      'memory://',
      { kind: 'url', url: 'memory://', scheme: 'memory' },
      (s) => s.store,
    ],
    ['permanent', 'SESSION_PERMANENT', 'false', true, true, (s) => s.permanent],
    ['lifetime', 'SESSION_LIFETIME', '3600', '2h', 7_200_000, (s) => s.lifetime],
    ['refreshEachRequest', 'SESSION_REFRESH_EACH_REQUEST', 'no', true, true, (s) => s.refreshEachRequest],
    ['refreshInterval', 'SESSION_REFRESH_INTERVAL', '30', 5000, 5000, (s) => s.refreshInterval],
    ['sidLength', 'SESSION_ID_LENGTH', '24', 16, 16, (s) => s.sidLength],
    ['keyPrefix', 'SESSION_KEY_PREFIX', 'env:', 'opt:', 'opt:', (s) => s.keyPrefix],
    ['serialization', 'SESSION_SERIALIZATION_FORMAT', 'json', 'cbor', 'cbor', (s) => s.serialization],
    ['maxSize', 'SESSION_MAX_SIZE', '1024', 2048, 2048, (s) => s.maxSize],
    ['keys', 'SESSION_SECRET_KEYS', 'a,b', ['c'], ['c'], (s) => s.keys],
    ['storeTimeout', 'SESSION_STORE_TIMEOUT', '5', 250, 250, (s) => s.storeTimeout],
    ['storeRetries', 'SESSION_STORE_RETRIES', '5', 0, 0, (s) => s.storeRetries],
    ['cleanupEveryNRequests', 'SESSION_CLEANUP_N_REQUESTS', '100', 1000, 1000, (s) => s.cleanupEveryNRequests],
    ['userKey', 'SESSION_USER_KEY', 'accountId', 'userId', 'userId', (s) => s.userKey],
  ];
  it('maxSessionsPerUser / SESSION_MAX_SESSIONS_PER_USER (with userKey)', () => {
    const env = { SESSION_USER_KEY: 'userId', SESSION_MAX_SESSIONS_PER_USER: '5' };
    expect(resolveSettings({ env }).maxSessionsPerUser).toBe(5);
    expect(resolveSettings({ env, maxSessionsPerUser: 2 }).maxSessionsPerUser).toBe(2);
    expect(resolveSettings({ env: { SESSION_USER_KEY: 'userId' } }).maxSessionsPerUser).toBeUndefined();
  });
  it.each(cases)('%s / %s', (option, variable, envValue, optionValue, expected, read) => {
    const fromEnv = resolveSettings({ env: { [variable]: envValue } });
    const fromOption = resolveSettings({ env: { [variable]: envValue }, [option]: optionValue } as KvSessionOptions);
    const fallback = resolveSettings({ env: {} });
    expect(read(fromOption)).toEqual(expected);
    expect(read(fromEnv)).not.toEqual(read(fromOption));
    expect(read(fromEnv)).not.toEqual(read(fallback));
  });

  it('environment values are parsed: seconds for durations, words for booleans, lists for keys', () => {
    const s = resolveSettings({
      env: {
        SESSION_PERMANENT: 'off',
        SESSION_LIFETIME: '3600',
        SESSION_REFRESH_INTERVAL: '1m',
        SESSION_SECRET_KEYS: ' a , b ',
        SESSION_MAX_SIZE: '64KiB',
        SESSION_STORE_TIMEOUT: '500ms',
      },
    });
    expect(s).toMatchObject({
      permanent: false,
      lifetime: 3_600_000,
      refreshInterval: 60_000,
      keys: ['a', 'b'],
      maxSize: 65_536,
      storeTimeout: 500,
    });
  });

  it('PERMANENT_SESSION_LIFETIME (Flask) sets the lifetime in seconds; SESSION_LIFETIME wins over it', () => {
    expect(resolveSettings({ env: { PERMANENT_SESSION_LIFETIME: '600' } }).lifetime).toBe(600_000);
    expect(resolveSettings({ env: { PERMANENT_SESSION_LIFETIME: '600', SESSION_LIFETIME: '12h' } }).lifetime).toBe(
      43_200_000,
    );
  });

  it('an empty variable counts as unset', () => {
    expect(resolveSettings({ env: { SESSION_PERMANENT: '' } }).permanent).toBe(true);
  });

  it.each([
    ['name', 'SESSION_COOKIE_NAME', 'sid', 'app_sid', (s: ReturnType<typeof resolveSettings>) => s.cookie.name],
    [
      'domain',
      'SESSION_COOKIE_DOMAIN',
      'env.test',
      'opt.test',
      (s: ReturnType<typeof resolveSettings>) => s.cookie.domain,
    ],
    ['path', 'SESSION_COOKIE_PATH', '/env', '/opt', (s: ReturnType<typeof resolveSettings>) => s.cookie.path],
    [
      'httpOnly',
      'SESSION_COOKIE_HTTPONLY',
      'false',
      true,
      (s: ReturnType<typeof resolveSettings>) => s.cookie.httpOnly,
    ],
    ['secure', 'SESSION_COOKIE_SECURE', 'true', false, (s: ReturnType<typeof resolveSettings>) => s.cookie.secure],
    [
      'sameSite',
      'SESSION_COOKIE_SAMESITE',
      'Strict',
      'lax',
      (s: ReturnType<typeof resolveSettings>) => s.cookie.sameSite,
    ],
    [
      'partitioned',
      'SESSION_COOKIE_PARTITIONED',
      'true',
      false,
      (s: ReturnType<typeof resolveSettings>) => s.cookie.partitioned,
    ],
    ['signed', 'SESSION_COOKIE_SIGNED', 'false', true, (s: ReturnType<typeof resolveSettings>) => s.cookie.signed],
  ])('cookie.%s / %s', (option, variable, envValue, optionValue, read) => {
    const fromEnv = resolveSettings({ env: { [variable]: envValue } });
    const fromOption = resolveSettings({ env: { [variable]: envValue }, cookie: { [option]: optionValue } });
    expect(read(fromOption)).toEqual(optionValue);
    expect(read(fromEnv)).not.toEqual(read(fromOption));
    expect(read(fromEnv)).not.toEqual(read(resolveSettings({ env: {} })));
  });

  it('SESSION_COOKIE_SECURE=auto and SESSION_COOKIE_SAMESITE=false', () => {
    const s = resolveSettings({ env: { SESSION_COOKIE_SECURE: 'auto', SESSION_COOKIE_SAMESITE: 'false' } });
    expect(s.cookie.secure).toBe('auto');
    expect(s.cookie.sameSite).toBe(false);
  });

  it('accepts a Keyv instance, a bare adapter and a Map as store', () => {
    const keyv = new Keyv();
    const adapter = new MemoryBackend();
    const map = new Map();
    const named = (store: object) => {
      const spec = resolveSettings({ env: {}, store: asStore(store) }).store;
      return spec.kind === 'given' ? [spec.value, spec.handed.name] : [];
    };
    expect(named(keyv)).toEqual([keyv, 'the Map given as store (inside a Keyv instance)']);
    expect(named(adapter)).toEqual([adapter, 'the MemoryBackend adapter given as store']);
    expect(named(map)).toEqual([map, 'the Map given as store']);
  });
});

describe('invalid values throw at kvSession() time, naming the option or variable', () => {
  it.each([
    [{ serialization: 'xml' }, 'serialization', /expected one of "cbor", "json"/],
    [{ env: { SESSION_SERIALIZATION_FORMAT: 'yaml' } }, 'SESSION_SERIALIZATION_FORMAT', /expected one of/],
    [{ lifetime: -5 }, 'lifetime', /non-negative/],
    [{ lifetime: 0 }, 'lifetime', /at least one second/],
    // Huge durations are refused before anything is stored: every backend and a cookie must carry them.
    [{ lifetime: 1e16 }, 'lifetime', /at most 400 days/],
    [{ lifetime: 1e308 }, 'lifetime', /at most 400 days/],
    [{ lifetime: 2 ** 53 }, 'lifetime', /at most 400 days/],
    [{ lifetime: '9999999999w' }, 'lifetime', /at most 400 days/],
    [{ lifetime: '401d' }, 'lifetime', /at most 400 days.*RFC 6265bis/],
    [{ env: { SESSION_LIFETIME: '99999999999' } }, 'SESSION_LIFETIME', /at most 400 days/],
    [{ env: { PERMANENT_SESSION_LIFETIME: '34646400' } }, 'PERMANENT_SESSION_LIFETIME', /at most 400 days/],
    [{ nonPermanentLifetime: '58w' }, 'nonPermanentLifetime', /at most 400 days/],
    [
      { env: { SESSION_NON_PERMANENT_LIFETIME: '1e9' } },
      'SESSION_NON_PERMANENT_LIFETIME',
      /whole seconds or a duration/,
    ],
    [{ absoluteLifetime: 1e16 }, 'absoluteLifetime', /at most 400 days/],
    [{ env: { SESSION_ABSOLUTE_LIFETIME: '500d' } }, 'SESSION_ABSOLUTE_LIFETIME', /at most 400 days/],
    [{ refreshInterval: 1e16 }, 'refreshInterval', /not be longer than the lifetime/],
    [{ cleanupInterval: '25d' }, 'cleanupInterval', /at most 24 days/],
    [{ env: { SESSION_CLEANUP_INTERVAL: '99999999999' } }, 'SESSION_CLEANUP_INTERVAL', /at most 24 days/],
    [{ storeTimeout: '1h' }, 'storeTimeout', /at most 10 minutes/],
    [{ maxSessionsPerUser: 1001, userKey: 'userId' }, 'maxSessionsPerUser', /at most 1000/],
    [{ lifetime: 'forever' }, 'lifetime', /duration such as "30m"/],
    [{ lifetime: '3600' }, 'lifetime', /milliseconds or a duration/],
    [{ env: { SESSION_LIFETIME: '1 fortnight' } }, 'SESSION_LIFETIME', /whole seconds or a duration/],
    [{ env: { PERMANENT_SESSION_LIFETIME: '-1' } }, 'PERMANENT_SESSION_LIFETIME', /whole seconds/],
    [{ permanent: 'yes' }, 'permanent', /expected a boolean/],
    [{ env: { SESSION_PERMANENT: 'maybe' } }, 'SESSION_PERMANENT', /expected true or false/],
    [{ env: { SESSION_REFRESH_EACH_REQUEST: 'sometimes' } }, 'SESSION_REFRESH_EACH_REQUEST', /expected true or false/],
    [{ refreshInterval: '2d', lifetime: '1d' }, 'refreshInterval', /not be longer than the lifetime/],
    [{ sidLength: 8 }, 'sidLength', /at least 16 bytes/],
    [{ sidLength: 1.5 }, 'sidLength', /whole number/],
    [{ env: { SESSION_ID_LENGTH: 'lots' } }, 'SESSION_ID_LENGTH', /whole number/],
    [{ keyPrefix: 'has space' }, 'keyPrefix', /without whitespace/],
    [{ maxSize: 10 }, 'maxSize', /at least 64 bytes/],
    [{ env: { SESSION_MAX_SIZE: 'big' } }, 'SESSION_MAX_SIZE', /size in bytes/],
    [{ keys: [] }, 'keys', /non-empty array/],
    [{ maxSessionsPerUser: 0, userKey: 'userId' }, 'maxSessionsPerUser', /at least 1 session/],
    [{ maxSessionsPerUser: 3 }, 'maxSessionsPerUser', /needs userKey/],
    [
      { env: { SESSION_MAX_SESSIONS_PER_USER: 'many', SESSION_USER_KEY: 'u' } },
      'SESSION_MAX_SESSIONS_PER_USER',
      /whole number/,
    ],
    [{ describe: 'Firefox' }, 'describe', /expected a function of ctx/],
    [{ keys: 'secret' }, 'keys', /non-empty array/],
    [{ env: { SESSION_SECRET_KEYS: ',' } }, 'SESSION_SECRET_KEYS', /comma-separated/],
    [{ store: 'ftp://example.test' }, 'store', /unsupported store URL "ftp:\/\/example.test"/],
    [{ env: { SESSION_STORE: 'nosuch://x' } }, 'SESSION_STORE', /expected one of memory:\/\/, sqlite:\/\//],
    [{ store: 42 }, 'store', /connection URL, a Keyv instance or adapter, a Map or a Redis client/],
    [{ cookie: { sameSite: 'none', secure: false } }, 'cookie.sameSite', /SameSite=None needs a Secure cookie/],
    [{ cookie: { partitioned: true, secure: false } }, 'cookie.partitioned', /must be Secure/],
    [{ cookie: { sameSite: 'sometimes' } }, 'cookie.sameSite', /expected one of "lax", "strict", "none"/],
    [{ cookie: { name: 'bad name' } }, 'cookie.name', /cookie token/],
    [{ cookie: { path: 'relative' } }, 'cookie.path', /must start with "\/"/],
    [{ cookie: { domain: 'a.test; evil=1' } }, 'cookie.domain', /without spaces or ";"/],
    [{ cookie: { secure: 'sometimes' } }, 'cookie.secure', /expected a boolean/],
    [{ cookie: { maxAge: 5 } }, 'cookie.maxAge', /unknown cookie option/],
    [{ env: { SESSION_COOKIE_HTTPONLY: 'perhaps' } }, 'SESSION_COOKIE_HTTPONLY', /expected true or false/],
    [{ lifetme: '1h' }, 'lifetme', /unknown option/],
    [{ storeTimeout: 0 }, 'storeTimeout', /at least 1 ms/],
    [{ storeRetries: 11 }, 'storeRetries', /between 0 and 10/],
    [{ cleanupEveryNRequests: -1 }, 'cleanupEveryNRequests', /0 \(never\) or a positive number/],
    [{ env: { SESSION_STORE_RETRIES: 'many' } }, 'SESSION_STORE_RETRIES', /whole number/],
    [{ onError: 'log' }, 'onError', /expected a function/],
    [{ userKey: '  ' }, 'userKey', /must name a session field/],
    [{ userKey: 7 }, 'userKey', /expected a string/],
    [{ env: { SESSION_USER_KEY: 'sid' } }, 'SESSION_USER_KEY', /"sid" is a control member of ctx.session/],
  ] as Array<[Record<string, unknown>, string, RegExp]>)('%j -> %s', (options, culprit, message) => {
    const run = () => kvSession({ env: {}, ...options } as KvSessionOptions);
    let error: unknown;
    try {
      run();
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SessionOptionError);
    expect(error).toMatchObject({ code: 'SESSION_INVALID_OPTION', option: culprit });
    expect((error as Error).message).toContain(`koa-kv-session: ${culprit}: `);
    expect((error as Error).message).toMatch(message);
  });

  it('a bad store URL with a password is reported with the password masked', () => {
    expect(() => kvSession({ env: {}, store: 'ftp://admin:hunter2@example.test' })).toThrow(
      /ftp:\/\/admin:\*\*\*\*@example\.test/,
    );
    expect(() => kvSession({ env: {}, store: 'ftp://admin:hunter2@example.test' })).not.toThrow(/hunter2/);
  });
});

describe('options that shape behaviour', () => {
  it.each([16, 24, 32, 48])('sidLength %i gives base64url sids of ceil(n * 4 / 3) characters', async (sidLength) => {
    const store = new CountingAdapter(new MemoryBackend());
    const app = await startApp({ store: store, keyPrefix: uniquePrefix('sid'), sidLength }, (ctx) => {
      ctx.session.x = 1;
      return ctx.session.sid;
    });
    apps.push(app);
    const reply = await app.request();
    expect(reply.body).toMatch(new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((sidLength * 4) / 3)}}$`));
    // A cookie from a different sidLength is not well-formed here: no store read.
    store.reset();
    const other = sidLength === 16 ? 'A'.repeat(43) : 'A'.repeat(22);
    await app.request('/', { cookie: `session=${other}.${'B'.repeat(43)}` });
    expect(store.count('get')).toBe(0);
    // And the real one is read back.
    store.reset();
    await app.request('/', { cookie: cookiePair(reply.setCookies[0]) });
    expect(store.count('get')).toBe(1);
  });

  it('lifetime sets the TTL of every write and the cookie expiry', async () => {
    const store = new CountingAdapter(new MemoryBackend());
    const app = await startApp({ store: store, keyPrefix: uniquePrefix('life'), lifetime: '90m' }, (ctx) => {
      ctx.session.x = 1;
    });
    apps.push(app);
    await app.middleware.ready();
    store.reset();
    const reply = await app.request();
    expect(store.calls[0]?.ttl).toBe(5_400_000);
    const expires = Date.parse(/Expires=([^;]+)/.exec(reply.setCookies[0] as string)?.[1] as string);
    expect(Math.abs(expires - (Date.now() + 5_400_000))).toBeLessThan(3000);
  });

  it('SESSION_KEY_PREFIX decides the store key', async () => {
    const store = new CountingAdapter(new MemoryBackend());
    const prefix = uniquePrefix('env');
    const app = await startApp({ store: store, env: { SESSION_KEY_PREFIX: prefix } }, (ctx) => {
      ctx.session.x = 1;
      return ctx.session.sid;
    });
    apps.push(app);
    const reply = await app.request();
    expect(store.calls.filter((c) => c.op === 'set').map((c) => c.key)).toEqual([prefix + reply.body]);
  });
});

describe('duration variables: a bare number is seconds, and says so when it was meant otherwise', () => {
  const settle = (env: Record<string, string>) => () => resolveSettings({ store: 'memory://', env });

  it.each([
    [
      'SESSION_STORE_TIMEOUT',
      '500',
      /^koa-kv-session: SESSION_STORE_TIMEOUT: 500 seconds is surely not what was meant \(SESSION_STORE_TIMEOUT=500 is read as 500 seconds: a bare number in a variable is seconds, as Flask's; write 500ms for milliseconds\); write 500s to mean seconds$/,
    ],
    [
      'SESSION_STORE_TIMEOUT',
      '2000',
      /must be at most 10 minutes.*got "2000" \(SESSION_STORE_TIMEOUT=2000 is read as 2000 seconds: .*write 2000ms for milliseconds\)/,
    ],
    ['SESSION_LIFETIME', '99999999999', /at most 400 days.*read as 99999999999 seconds/],
  ])('%s=%s is refused with how it was read', (name, value, message) => {
    expect(settle({ [name]: value })).toThrow(message);
  });

  it.each([
    ['SESSION_STORE_TIMEOUT', '500ms', 'storeTimeout', 500],
    ['SESSION_STORE_TIMEOUT', '30', 'storeTimeout', 30_000],
    ['SESSION_STORE_TIMEOUT', '90s', 'storeTimeout', 90_000],
    ['PERMANENT_SESSION_LIFETIME', '2678400', 'lifetime', 31 * 86_400_000],
    ['SESSION_LIFETIME', '3600', 'lifetime', 3_600_000],
  ] as const)('%s=%s is %s %d ms', (name, value, option, ms) => {
    expect(settle({ [name]: value })()[option]).toBe(ms);
  });
});

describe('errors name what the user set: an option, or its variable', () => {
  it('SameSite=None over an insecure cookie, from variables, names the variables', () => {
    expect(() =>
      resolveSettings({ store: 'memory://', env: { SESSION_COOKIE_SAMESITE: 'none', SESSION_COOKIE_SECURE: 'false' } }),
    ).toThrow(
      'koa-kv-session: SESSION_COOKIE_SAMESITE: SameSite=None needs a Secure cookie (browsers drop it otherwise): set SESSION_COOKIE_SECURE to true or "auto"',
    );
  });

  it('from options, names the options', () => {
    expect(() => resolveSettings({ store: 'memory://', env: {}, cookie: { sameSite: 'none', secure: false } })).toThrow(
      'koa-kv-session: cookie.sameSite: SameSite=None needs a Secure cookie (browsers drop it otherwise): set cookie.secure to true or "auto"',
    );
  });
});

describe('store URLs: what they take, said at kvSession()', () => {
  it.each([
    [
      { SESSION_STORE: './sessions.sqlite' },
      /^koa-kv-session: SESSION_STORE: expected a store URL, got the path "\.\/sessions\.sqlite": for a SQLite file there, write sqlite:\/\/\.\/sessions\.sqlite$/,
    ],
    [
      { SESSION_STORE: 'sqlite://./s.sqlite?drivr=sqlite3' },
      /unknown parameter \?drivr= in a sqlite:\/\/ URL: did you mean \?driver=\? \(it takes table, driver, create\)/,
    ],
    [
      { SESSION_STORE: 'sqlite://./s.sqlite?journal=wal' },
      /unknown parameter \?journal= in a sqlite:\/\/ URL \(it takes table, driver, create\)/,
    ],
    [{ SESSION_STORE: 'postgres://u@127.0.0.1/app?tabel=sessions' }, /did you mean \?table=\?/],
    [{ SESSION_STORE: 'dynamodb://127.0.0.1:4567?regoin=eu-west-1' }, /did you mean \?region=\?/],
  ])('%j is refused, naming the fix', (env, message) => {
    expect(() => resolveSettings({ env })).toThrow(message);
  });

  it("a driver's own parameters go through where the driver takes them (PostgreSQL's sslmode)", () => {
    expect(
      resolveSettings({ env: { SESSION_STORE: 'postgres://u@127.0.0.1/app?sslmode=require&table=s' } }).store,
    ).toMatchObject({ kind: 'url', scheme: 'postgres' });
  });
});
