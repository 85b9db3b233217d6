/**
 * In-memory twin of `bridge.ts` for tests and UI work without the Rust side.
 * Same `Bridge` interface; nothing here touches Tauri.
 */
import { BridgeError, type AppErrorPayload, type AppInfo, type Bridge, type StoreSummary } from './bridge';

export interface MockBridgeOptions {
  appInfo?: AppInfo;
  storeSummary?: StoreSummary;
  /** Make a command fail with this backend error. */
  failWith?: Partial<Record<keyof Bridge, AppErrorPayload>>;
}

export const MOCK_APP_INFO: AppInfo = { name: '守护 Shouhu', version: '0.0.0-mock' };
export const MOCK_SUMMARY: StoreSummary = {
  schools: 8,
  children: 600,
  households: 420,
  home_visits: 1800,
  pending_changes: 12,
};

export function createMockBridge(options: MockBridgeOptions = {}): Bridge & { calls: string[] } {
  const calls: string[] = [];
  const answer = async <T>(command: keyof Bridge, value: T): Promise<T> => {
    calls.push(command);
    const failure = options.failWith?.[command];
    if (failure) throw new BridgeError(failure);
    return structuredClone(value);
  };
  return {
    calls,
    appInfo: () => answer('appInfo', options.appInfo ?? MOCK_APP_INFO),
    storeSummary: () => answer('storeSummary', options.storeSummary ?? MOCK_SUMMARY),
  };
}
