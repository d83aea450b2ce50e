// What the sessions service and the operator command both work on, made in one place from the settings: the store,
// the index of each user's sessions (with userKey), revocations, and whether a switch of hashSids is under way (the
// command's `migrate --hash-sids` keeps a switch of its own, which reports to its output).
import { LayoutSwitch } from './layout-switch.js';
import { Revoker } from './revoke.js';
import type { Settings } from './settings.js';
import { SessionStore } from './store.js';
import { UserIndex } from './users.js';

export interface Wired {
  readonly store: SessionStore;
  /** Undefined without the userKey option. */
  readonly users: UserIndex | undefined;
  readonly revoker: Revoker;
  readonly layout: LayoutSwitch;
}

/** The parts the sessions service (and the operator command) run on; errors handled without failing go to `report`. */
export function wire(settings: Settings, report: (error: Error) => void): Wired {
  const store = new SessionStore(settings, report);
  const { userKey } = settings;
  const users = userKey === undefined ? undefined : new UserIndex(store, { ...settings, userKey });
  const revoker = new Revoker(store, settings, users);
  return { store, users, revoker, layout: new LayoutSwitch(store, settings.absoluteLifetime, report) };
}
