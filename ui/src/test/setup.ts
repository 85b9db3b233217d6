import { afterEach } from 'vitest';
import { clearMocks } from '@tauri-apps/api/mocks';

// Every test starts without a fake Tauri backend and with the default language.
afterEach(() => {
  clearMocks();
  localStorage.clear();
});
