// Debug lines on stderr when the DEBUG variable names them (`DEBUG=koa-kv-session*`), read as the debug
// package reads it, without depending on it: its dynamic require() breaks ESM bundles (esbuild).

/** A debug line writer for `namespace`; enabled when DEBUG matched it at the first line written. */
export function debugLog(namespace: string): (message: string, ...values: unknown[]) => void {
  let enabled: boolean | undefined;
  return (message, ...values) => {
    enabled ??= debugEnabled(namespace, process.env.DEBUG);
    if (!enabled) return;
    let at = 0;
    // printf's placeholders, as the debug package reads them: %s, %d, %o, %O, %j.
    const text = message.replace(/%[sdoOj]/g, () => String(values[at++]));
    process.stderr.write(`${new Date().toISOString()} ${namespace} ${text}\n`);
  };
}

/**
 * True when `debug` (the DEBUG variable: names separated by commas or spaces, `*` for anything, a
 * leading `-` to leave a name out) names `namespace`.
 */
export function debugEnabled(namespace: string, debug: string | undefined): boolean {
  let enabled = false;
  for (const name of (debug ?? '').split(/[\s,]+/)) {
    if (name === '') continue;
    const excluded = name.startsWith('-');
    const pattern = new RegExp(
      `^${(excluded ? name.slice(1) : name).replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*?')}$`,
    );
    if (!pattern.test(namespace)) continue;
    if (excluded) return false;
    enabled = true;
  }
  return enabled;
}
