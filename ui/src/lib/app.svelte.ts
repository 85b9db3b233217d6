/**
 * App-wide UI state: the current screen (a tiny router), the unsaved-changes
 * guard, the confirm dialog, the toast, and the settings loaded from the store.
 */
import { toBridgeError, type Bridge, type CurrentUser, type SchoolItem, type Settings } from './bridge';
import { setLocale, t } from './i18n/index.svelte';

export type Screen =
  | 'home'
  | 'children'
  | 'child'
  | 'household'
  | 'households'
  | 'visit'
  | 'visits'
  | 'records'
  | 'sync'
  | 'conflicts'
  | 'settings';

export const nav = $state({ screen: 'home' as Screen, params: {} as Record<string, string>, seq: 0 });

/** Set by a form with unsaved changes: returns true while it is dirty. */
let dirtyCheck: (() => boolean) | null = null;

export function setDirtyCheck(check: (() => boolean) | null): void {
  dirtyCheck = check;
}

export const dialog = $state({
  open: false,
  title: '',
  body: '',
  okLabel: '',
  cancelLabel: '',
  resolve: null as ((ok: boolean) => void) | null,
});

/** Ask the user; resolves true when they confirm. */
export function ask(title: string, body: string, okLabel?: string, cancelLabel?: string): Promise<boolean> {
  return new Promise((resolve) => {
    dialog.title = title;
    dialog.body = body;
    dialog.okLabel = okLabel ?? t('common.confirm');
    dialog.cancelLabel = cancelLabel ?? t('common.cancel');
    dialog.resolve = resolve;
    dialog.open = true;
  });
}

export function closeDialog(ok: boolean): void {
  const r = dialog.resolve;
  dialog.open = false;
  dialog.resolve = null;
  r?.(ok);
}

/** Ask before discarding unsaved changes; true when it is fine to leave. */
export async function confirmLeave(): Promise<boolean> {
  if (!dirtyCheck?.()) return true;
  const ok = await ask(t('common.discard_title'), t('common.discard_body'), t('common.discard'), t('common.keep_editing'));
  if (ok) dirtyCheck = null;
  return ok;
}

/** Go to a screen (asking first if a form has unsaved changes). */
export async function go(screen: Screen, params: Record<string, string> = {}): Promise<boolean> {
  if (!(await confirmLeave())) return false;
  dirtyCheck = null;
  nav.screen = screen;
  nav.params = params;
  nav.seq += 1;
  return true;
}

export const toastState = $state({ text: '', kind: 'ok' as 'ok' | 'error', seq: 0 });

export function toast(text: string, kind: 'ok' | 'error' = 'ok'): void {
  toastState.text = text;
  toastState.kind = kind;
  toastState.seq += 1;
  const seq = toastState.seq;
  setTimeout(() => {
    if (toastState.seq === seq) toastState.text = '';
  }, 4000);
}

export const app = $state({
  settings: { language: 'zh-CN', text_size: 'normal', school_id: null, auto_lock_minutes: 10, demo: false } as Settings,
  schools: [] as SchoolItem[],
});

/**
 * Who is working. `phase`: `loading` (asking the vault), `setup` (first
 * start), `login` (nobody logged in yet, or logged out: no screen is kept),
 * `open` (working). `locked` covers the open screens with the log-in form:
 * they stay mounted, so what was being typed survives a lock and the same
 * user's log-in.
 */
export const account = $state({
  phase: 'loading' as 'loading' | 'setup' | 'login' | 'open',
  user: null as CurrentUser | null,
  locked: false,
  /** The log-in name to offer on the log-in form (the locked user's). */
  lastLogin: '',
});

/** The user's last input (keys, mouse, touch): the idle clock of auto-lock. */
let lastInput = Date.now();

/**
 * The logged-in role only reads records (township staff, county admin, the
 * county psychology supervisor): screens hide what the API would refuse.
 * No user known (screen tests): not read-only.
 */
export function readOnly(): boolean {
  return account.user !== null && !account.user.writes_records;
}

/** A help plan's approval (审批人) is set, changed or cleared by principals
 *  only; the library refuses it to everyone else (`auth.forbidden`). */
export function approvesPlans(): boolean {
  return account.user === null || account.user.role === 'principal';
}

/**
 * Exports (导出 Excel) are for principals, township staff and county admins
 * (the role table; the API refuses the others). No user known: allowed.
 */
export function mayExport(): boolean {
  return account.user === null || account.user.exports;
}

/** Psychological notes are written by counselors only (supervisors read). */
export function writesNotes(): boolean {
  return account.user === null || account.user.role === 'counselor';
}

export function noteInput(now: number = Date.now()): void {
  lastInput = now;
}

/** True when `now` is past the auto-lock deadline of an open, unlocked session. */
export function idleExpired(now: number = Date.now()): boolean {
  if (account.phase !== 'open' || account.locked || !account.user) return false;
  return now - lastInput > app.settings.auto_lock_minutes * 60_000;
}

/** The backend found no session (locked, idle time out): show the log-in form. */
export function markLocked(): void {
  if (account.phase === 'open') account.locked = true;
}

/**
 * Lock: what is being typed is saved first (drafts), then the session is
 * dropped in the backend (store closed, key forgotten). The screens stay.
 */
export async function lockNow(bridge: Bridge): Promise<void> {
  await saveAll();
  account.locked = true;
  try {
    await bridge.lock();
  } catch {
    // Already locked in the backend: nothing more to drop.
  }
}

/** Log-out: drafts saved, the session dropped, and no screen kept. */
export async function logOutNow(bridge: Bridge): Promise<void> {
  await saveAll();
  try {
    await bridge.logOut();
  } catch {
    // Already logged out.
  }
  dirtyCheck = null;
  account.user = null;
  account.locked = false;
  account.phase = 'login';
}

/**
 * After a log-in: the same user as before a lock finds their screens as they
 * left them; another user starts on the home screen.
 */
export async function loggedIn(bridge: Bridge, user: CurrentUser): Promise<void> {
  const same = account.user?.user_id === user.user_id && account.phase === 'open';
  account.user = user;
  account.lastLogin = user.login_name;
  account.locked = false;
  noteInput();
  await loadSettings(bridge);
  if (!same) {
    dirtyCheck = null;
    nav.screen = 'home';
    nav.params = {};
    nav.seq += 1;
  }
  account.phase = 'open';
}

/**
 * The bridge as the screens get it: an `auth.locked` answer (the backend's
 * idle deadline passed, or its session was dropped) turns into the log-in form.
 */
export function guarded(bridge: Bridge): Bridge {
  return new Proxy(bridge, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const out = value.apply(target, args);
        if (out && typeof (out as Promise<unknown>).then === 'function') {
          return (out as Promise<unknown>).catch((e: unknown) => {
            if (toBridgeError(e).code === 'auth.locked') markLocked();
            throw e;
          });
        }
        return out;
      };
    },
  });
}

export function applySettings(s: Settings): void {
  app.settings = s;
  setLocale(s.language);
  if (typeof document !== 'undefined') {
    document.documentElement.dataset.textSize = s.text_size;
  }
}

export async function loadSettings(bridge: Bridge): Promise<void> {
  applySettings(await bridge.getSettings());
  app.schools = await bridge.listSchools();
}

export function schoolName(id: string | null | undefined): string {
  return app.schools.find((s) => s.id === id)?.name ?? '';
}

/** Savers run before the window closes (a visit draft being typed). */
const savers = new Set<() => Promise<void>>();

export function addSaver(save: () => Promise<void>): () => void {
  savers.add(save);
  return () => savers.delete(save);
}

export async function saveAll(): Promise<void> {
  await Promise.allSettled([...savers].map((s) => s()));
}
