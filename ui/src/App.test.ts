import { describe, expect, it } from 'vitest';
import { fireEvent, render, screen } from '@testing-library/svelte';
import { mockIPC } from '@tauri-apps/api/mocks';
import App from './App.svelte';
import { bridge } from './lib/bridge';
import { createMockBridge } from './lib/bridge.mock';

describe('App', () => {
  it('shows the title and the version from the (mock) bridge', async () => {
    const mock = createMockBridge({ appInfo: { name: '守护 Shouhu', version: '1.2.3' } });
    render(App, { props: { bridge: mock } });
    expect(screen.getByTestId('app-title').textContent).toBe('守护');
    expect((await screen.findByTestId('app-version')).textContent).toBe('版本 1.2.3');
    expect((await screen.findByTestId('summary-children')).textContent).toBe('600');
    expect(screen.getByTestId('summary-pending').textContent).toBe('12');
    expect(mock.calls.sort()).toEqual(['appInfo', 'storeSummary']);
  });

  it('renders the version through the real bridge and mocked Tauri IPC', async () => {
    mockIPC((cmd) =>
      cmd === 'app_info'
        ? { name: 'shouhu', version: '0.1.0' }
        : cmd === 'store_summary'
          ? { schools: 1, children: 2, households: 1, home_visits: 3, pending_changes: 0 }
          : undefined,
    );
    render(App, { props: { bridge } });
    expect((await screen.findByTestId('app-version')).textContent).toBe('版本 0.1.0');
  });

  it('switches between zh-CN and English', async () => {
    render(App, { props: { bridge: createMockBridge() } });
    await fireEvent.click(screen.getByTestId('lang-en'));
    expect(screen.getByTestId('app-title').textContent).toBe('Shouhu');
    expect(screen.getByTestId('lang-en').getAttribute('aria-pressed')).toBe('true');
    expect((await screen.findByTestId('app-version')).textContent).toBe('Version 0.0.0-mock');
    await fireEvent.click(screen.getByTestId('lang-zh-CN'));
    expect(screen.getByTestId('app-title').textContent).toBe('守护');
  });

  it('shows backend errors in the user’s language', async () => {
    const mock = createMockBridge({
      failWith: { appInfo: { code: 'internal', message: 'boom', details: null } },
    });
    render(App, { props: { bridge: mock } });
    const alert = await screen.findByTestId('app-error');
    expect(alert.dataset.code).toBe('internal');
    expect(alert.textContent).toContain('程序内部出错');
  });
});
