/**
 * App-wide UI state: the current screen (a tiny router), the unsaved-changes
 * guard, the confirm dialog, the toast, and the settings loaded from the store.
 */
import type { Bridge, SchoolItem, Settings } from './bridge';
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
  settings: { language: 'zh-CN', text_size: 'normal', school_id: null, role: 'teacher' } as Settings,
  schools: [] as SchoolItem[],
});

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
