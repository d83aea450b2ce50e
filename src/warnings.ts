// Configuration that works but is likely a mistake: said once per process as a Node warning (`KvSessionWarning`), which
// `node --no-warnings` silences and `process.on('warning')` sees.
const said = new Set<string>();

/** Emits `message` as a KvSessionWarning with `code`, once per process for each distinct message. */
export function warnOnce(code: string, message: string): void {
  if (said.has(message)) return;
  said.add(message);
  process.emitWarning(message, { type: 'KvSessionWarning', code });
}

/** Keys shorter than this many characters sign cookies that can be forged by guessing the key. */
export const SHORT_KEY = 16;

const checkedKeys = new WeakSet<object>();

/** Warns when a signing key is short: `where` names the option, variable or app.keys. */
export function checkKeyLengths(keys: readonly unknown[], where: string): void {
  // Checked once per key list: app.keys is looked at on every request.
  if (checkedKeys.has(keys)) return;
  checkedKeys.add(keys);
  const short = keys.filter((key) => typeof key === 'string' && key.length < SHORT_KEY).length;
  if (short > 0) {
    warnOnce(
      'KV_SESSION_SHORT_KEY',
      `koa-kv-session: ${short} of the ${keys.length} keys in ${where} ${short === 1 ? 'is' : 'are'} shorter than ` +
        `${SHORT_KEY} characters: a short key can be guessed and session cookies forged; use long random secrets ` +
        '(e.g. `openssl rand -base64 32`)',
    );
  }
}

/**
 * Warns about a SESSION_* variable no option reads that is a near miss of one that is (a typo is
 * otherwise silently ignored), naming it. An app's own SESSION_* variables, nothing like ours, are
 * left alone.
 */
export function checkVariables(env: Readonly<Record<string, string | undefined>>, known: readonly string[]): void {
  for (const name of Object.keys(env)) {
    if (!name.startsWith('SESSION_') || known.includes(name)) continue;
    const meant = nearMiss(name, known);
    if (meant === undefined) continue;
    warnOnce(
      'KV_SESSION_UNKNOWN_VARIABLE',
      `koa-kv-session: the environment variable ${name} is not one koa-kv-session reads: did you mean ${meant}?`,
    );
  }
}

/** The known name `name` is likely a typo of: one it starts (SESSION_SECRET), else one at most two edits away. */
function nearMiss(name: string, known: readonly string[]): string | undefined {
  const started = known.find((candidate) => candidate.startsWith(`${name}_`));
  if (started !== undefined) return started;
  const nearest = known.reduce(
    (best, candidate) => (distance(name, candidate) < distance(name, best) ? candidate : best),
    known[0] as string,
  );
  return distance(name, nearest) <= 2 ? nearest : undefined;
}

/** Levenshtein distance. */
export function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}
