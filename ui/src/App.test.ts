import { describe, expect, it } from 'vitest';
import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { mockIPC } from '@tauri-apps/api/mocks';
import App from './App.svelte';
import { bridge } from './lib/bridge';
import { createMockBridge } from './lib/bridge.mock';
import { nav } from './lib/app.svelte';

const CHILD = {
  id: 'child-1',
  card: { name: '张小明', gender: 'male', birth_date: '2015-03-07', id_number: '520502201503070036', status: 'active' },
};

describe('App', () => {
  it('starts on the home screen in Chinese with every navigation entry', async () => {
    nav.screen = 'home';
    render(App, { props: { bridge: createMockBridge({ children: [CHILD] }) } });
    expect(await screen.findByTestId('screen-home')).toBeTruthy();
    for (const n of ['home', 'children', 'households', 'visits', 'records', 'sync', 'settings']) {
      expect(screen.getByTestId(`nav-${n}`)).toBeTruthy();
    }
    expect(screen.getByTestId('nav-children').textContent).toBe('儿童档案');
    expect((await screen.findByTestId('home-active-children')).textContent).toBe('1');
  });

  it('talks to the real bridge through mocked Tauri IPC', async () => {
    const seen: string[] = [];
    mockIPC((cmd, args) => {
      seen.push(cmd);
      switch (cmd) {
        case 'vault_state':
          return {
            state: 'ready',
            users: [{ login_name: 'liming', display_name: '李明', role: 'teacher' }],
            demo_password: null,
            current: { user_id: 'u1', login_name: 'liming', display_name: '李明', role: 'teacher', scope: { kind: 'county' }, reads_notes: false, writes_records: true, manages_users: false, auto_lock_minutes: 10 },
          };
        case 'get_settings':
          return { language: 'zh-CN', text_size: 'normal', school_id: null, auto_lock_minutes: 10, demo: false };
        case 'list_schools':
          return [];
        case 'app_info':
          return { name: 'shouhu', version: '0.1.0' };
        case 'set_setting':
          return { language: (args as { change: { value: string } }).change.value, text_size: 'normal', school_id: null, auto_lock_minutes: 10, demo: false };
        default:
          throw { code: 'internal', message: `unexpected ${cmd}`, details: null };
      }
    });
    render(App, { props: { bridge } });
    await waitFor(() => expect(screen.getByTestId('app-version').textContent).toBe('0.1.0'));
    await fireEvent.click(await screen.findByTestId('nav-settings'));
    await fireEvent.change(await screen.findByTestId('settings-language'), { target: { value: 'en' } });
    await waitFor(() => expect(document.documentElement.lang).toBe('en'));
    expect(screen.getByTestId('nav-children').textContent).toBe('Children');
    expect(seen).toContain('set_setting');
  });

  it('shows backend errors in the user’s language', async () => {
    nav.screen = 'home';
    const mock = createMockBridge({ failWith: { dashboard: { code: 'store.database', message: 'boom', details: null } } });
    render(App, { props: { bridge: mock } });
    await waitFor(() => expect(screen.getByTestId('toast').textContent).toContain('数据库出错'));
    expect(screen.getByTestId('toast').dataset.kind).toBe('error');
  });
});
