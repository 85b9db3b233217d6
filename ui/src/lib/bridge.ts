/**
 * The ONLY module that talks to the Rust side (`invoke`). Components receive a
 * `Bridge` (real one in the app, `bridge.mock.ts` in tests) and never import
 * `@tauri-apps/api/core` themselves.
 *
 * Every command rejects with a `BridgeError` carrying the backend's
 * `{ code, message, details }`; the UI shows `t('error.<code>')`.
 */
import { invoke, type InvokeArgs } from '@tauri-apps/api/core';

/** `app_info` → name and version of the running app. */
export interface AppInfo {
  name: string;
  version: string;
}

/** `store_summary` → counts of the local store. */
export interface StoreSummary {
  schools: number;
  children: number;
  households: number;
  home_visits: number;
  pending_changes: number;
}

/** Shape of every error the backend returns (src-tauri/src/error.rs). */
export interface AppErrorPayload {
  code: string;
  message: string;
  details: unknown;
}

export class BridgeError extends Error {
  readonly code: string;
  readonly details: unknown;

  constructor(payload: AppErrorPayload) {
    super(payload.message);
    this.name = 'BridgeError';
    this.code = payload.code;
    this.details = payload.details;
  }
}

/** Everything the UI can ask of the backend. Grows one method per command. */
export interface Bridge {
  appInfo(): Promise<AppInfo>;
  storeSummary(): Promise<StoreSummary>;
}

function isAppErrorPayload(value: unknown): value is AppErrorPayload {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { code?: unknown }).code === 'string' &&
    typeof (value as { message?: unknown }).message === 'string'
  );
}

function hasTauriIpc(): boolean {
  const internals = (globalThis as { __TAURI_INTERNALS__?: { invoke?: unknown } }).__TAURI_INTERNALS__;
  return typeof internals?.invoke === 'function';
}

/** Normalises whatever `invoke` rejected with into a `BridgeError`. */
export function toBridgeError(error: unknown): BridgeError {
  if (error instanceof BridgeError) return error;
  if (isAppErrorPayload(error)) {
    return new BridgeError({ code: error.code, message: error.message, details: error.details ?? null });
  }
  // Outside the desktop shell (plain browser) there is no IPC at all.
  if (!hasTauriIpc()) {
    return new BridgeError({ code: 'bridge_unavailable', message: 'Tauri IPC is not available', details: null });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new BridgeError({ code: 'internal', message, details: null });
}

async function call<T>(command: string, args?: InvokeArgs): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (error) {
    throw toBridgeError(error);
  }
}

export const bridge: Bridge = {
  appInfo: () => call<AppInfo>('app_info'),
  storeSummary: () => call<StoreSummary>('store_summary'),
};
