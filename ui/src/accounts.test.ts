import { describe, expect, it } from 'vitest';
import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import App from './App.svelte';
import { createMockBridge, MOCK_TEACHER } from './lib/bridge.mock';
import { account, go, nav, noteInput } from './lib/app.svelte';

const CHILD = {
  id: 'child-1',
  card: { name: '张小明', gender: 'male', birth_date: '2015-03-07', status: 'active' },
};

const PRINCIPAL = { login_name: 'zhangxz', display_name: '张校长', role: 'principal' as const, password: 'xiaozhang2026' };

async function logIn(login: string, password: string) {
  const user = await screen.findByTestId('login-user');
  await fireEvent.input(user, { target: { value: login } });
  await fireEvent.input(screen.getByTestId('login-password'), { target: { value: password } });
  await fireEvent.click(screen.getByTestId('login-submit'));
}

describe('first start', () => {
  it('sets up the first account, refusing mismatched and weak passwords in Chinese', async () => {
    const mock = createMockBridge({ vault: { state: 'empty' } });
    render(App, { props: { bridge: mock } });
    await screen.findByTestId('screen-setup');
    expect(screen.getByTestId('setup-use-demo')).toBeTruthy();
    await fireEvent.input(screen.getByTestId('setup-login'), { target: { value: 'liming' } });
    await fireEvent.input(screen.getByTestId('setup-name'), { target: { value: '李明' } });
    // A teacher names a school and township.
    await fireEvent.click(screen.getByTestId('setup-submit'));
    expect((await screen.findByTestId('setup-error')).textContent).toBe('学校名称不能为空，请填写');
    await fireEvent.input(screen.getByTestId('setup-township'), { target: { value: '青山镇' } });
    await fireEvent.input(screen.getByTestId('setup-school'), { target: { value: '青山小学' } });
    await fireEvent.input(screen.getByTestId('setup-password'), { target: { value: 'qingshan2026' } });
    await fireEvent.input(screen.getByTestId('setup-password-again'), { target: { value: 'qingshan2027' } });
    await fireEvent.click(screen.getByTestId('setup-submit'));
    await waitFor(() => expect(screen.getByTestId('setup-error').textContent).toBe('两次输入的密码不一致，请重新输入'));
    await fireEvent.input(screen.getByTestId('setup-password'), { target: { value: 'qingshan' } });
    await fireEvent.input(screen.getByTestId('setup-password-again'), { target: { value: 'qingshan' } });
    await fireEvent.click(screen.getByTestId('setup-submit'));
    await waitFor(() => expect(screen.getByTestId('setup-error').textContent).toBe('密码需同时包含字母和数字'));
    await fireEvent.input(screen.getByTestId('setup-password'), { target: { value: 'qingshan2026' } });
    await fireEvent.input(screen.getByTestId('setup-password-again'), { target: { value: 'qingshan2026' } });
    await fireEvent.click(screen.getByTestId('setup-submit'));
    expect(await screen.findByTestId('screen-home')).toBeTruthy();
    expect(screen.getByTestId('app-user').textContent).toContain('李明');
    // The vault is ready now: a restart would ask for the password.
    expect((await mock.vaultState()).state).toBe('ready');
  });

  it('a plain store is set up (encrypted) without the demo offer', async () => {
    render(App, { props: { bridge: createMockBridge({ vault: { state: 'plain' } }) } });
    expect(await screen.findByTestId('setup-plain-note')).toBeTruthy();
    expect(screen.queryByTestId('setup-use-demo')).toBeNull();
  });

  it('uses demo data, then shows the demo password on the log-in screen', async () => {
    render(App, { props: { bridge: createMockBridge({ vault: { state: 'empty' } }) } });
    await fireEvent.click(await screen.findByTestId('setup-use-demo'));
    await screen.findByTestId('screen-login');
    expect((await screen.findByTestId('login-demo-password')).textContent).toContain('shouhu2026');
    expect(screen.getAllByTestId('login-pick').length).toBe(6);
    await fireEvent.click(screen.getAllByTestId('login-pick').find((b) => b.dataset.login === 'demo-counselor')!);
    await fireEvent.input(screen.getByTestId('login-password'), { target: { value: 'shouhu2026' } });
    await fireEvent.click(screen.getByTestId('login-submit'));
    expect(await screen.findByTestId('screen-home')).toBeTruthy();
    expect(screen.getByTestId('app-user').dataset.role).toBe('counselor');
    expect(screen.queryByTestId('app-read-only')).toBeNull();
  });

  it('tells a read-only role (county supervisor) so', async () => {
    const supervisor = { login_name: 'dudao', display_name: '县督导', role: 'psych_supervisor' as const, password: 'dudao2026' };
    render(App, { props: { bridge: createMockBridge({ vault: { users: [supervisor] } }) } });
    expect((await screen.findByTestId('app-read-only')).textContent).toContain('只读');
  });
});

describe('log-in', () => {
  it('says a wrong password and the wait after repeated failures in Chinese; no demo password on a real store', async () => {
    render(App, { props: { bridge: createMockBridge({ vault: { loggedIn: null } }) } });
    await screen.findByTestId('screen-login');
    expect(screen.queryByTestId('login-demo-password')).toBeNull();
    await logIn('liming', 'wrong2026');
    expect((await screen.findByTestId('login-error')).textContent).toBe('用户名或密码不正确');
    await logIn('liming', 'wrong2026');
    await logIn('liming', 'wrong2026');
    await logIn('liming', 'qingshan2026');
    await waitFor(() => expect(screen.getByTestId('login-error').textContent).toBe('登录失败次数过多，请5秒后再试'));
    expect(screen.queryByTestId('screen-home')).toBeNull();
  });
});

describe('a county server user', () => {
  it('logging in with the initial password sets a new one before anything else', async () => {
    const fromServer = { login_name: 'wangfang', display_name: '王芳', role: 'teacher' as const, password: 'chushi2026', must_change: true };
    const mock = createMockBridge({ vault: { users: [MOCK_TEACHER, fromServer], loggedIn: null } });
    render(App, { props: { bridge: mock } });
    await logIn('wangfang', 'chushi2026');
    expect(await screen.findByTestId('must-change-password')).toBeTruthy();
    expect(screen.queryByTestId('screen-home')).toBeNull();
    // Other screens wait too.
    await go('children');
    expect(screen.queryByTestId('screen-children')).toBeNull();
    expect(screen.getByTestId('must-change-password')).toBeTruthy();
    await fireEvent.input(screen.getByTestId('password-old'), { target: { value: 'chushi2026' } });
    await fireEvent.input(screen.getByTestId('password-new'), { target: { value: 'wode2026' } });
    await fireEvent.input(screen.getByTestId('password-again'), { target: { value: 'wode2026' } });
    await fireEvent.click(screen.getByTestId('password-save'));
    expect(await screen.findByTestId('screen-children')).toBeTruthy();
    expect(screen.queryByTestId('must-change-password')).toBeNull();
    expect(mock.calls).toContain('changePassword');
  });
});

describe('lock', () => {
  it('keeps a visit draft being typed through lock and the same user’s log-in', async () => {
    const mock = createMockBridge({ children: [CHILD] });
    render(App, { props: { bridge: mock } });
    await screen.findByTestId('screen-home');
    await go('visit', { child: 'child-1' });
    const field = (await screen.findByTestId('visit-field-problems_found')) as HTMLTextAreaElement;
    await fireEvent.input(field, { target: { value: '想念妈妈，夜里哭' } });
    await fireEvent.click(screen.getByTestId('nav-lock'));
    expect(await screen.findByTestId('login-locked-note')).toBeTruthy();
    expect(mock.calls).toContain('lock');
    // The draft was saved before the session was dropped.
    expect(mock.calls).toContain('saveVisitDraft');
    // The backend refuses data while locked.
    await expect(mock.storeSummary()).rejects.toMatchObject({ code: 'auth.locked' });
    expect(screen.getByTestId('screen-visit').closest('.shell')?.getAttribute('aria-hidden')).toBe('true');
    expect((screen.getByTestId('login-user') as HTMLInputElement).value).toBe('liming');
    await logIn('liming', 'wrong2026');
    expect((await screen.findByTestId('login-error')).textContent).toBe('用户名或密码不正确');
    await logIn('liming', 'qingshan2026');
    await waitFor(() => expect(screen.queryByTestId('login-locked-note')).toBeNull());
    expect(nav.screen).toBe('visit');
    const again = screen.getByTestId('visit-field-problems_found') as HTMLTextAreaElement;
    expect(again).toBe(field);
    expect(again.value).toBe('想念妈妈，夜里哭');
  });

  it('another user logging in after a lock starts on the home screen', async () => {
    const mock = createMockBridge({ children: [CHILD], vault: { users: [MOCK_TEACHER, PRINCIPAL] } });
    render(App, { props: { bridge: mock } });
    await screen.findByTestId('screen-home');
    await go('visit', { child: 'child-1' });
    await fireEvent.input(await screen.findByTestId('visit-field-problems_found'), { target: { value: '草稿' } });
    await fireEvent.click(screen.getByTestId('nav-lock'));
    await screen.findByTestId('login-locked-note');
    await logIn('zhangxz', 'xiaozhang2026');
    expect(await screen.findByTestId('screen-home')).toBeTruthy();
    expect(screen.queryByTestId('screen-visit')).toBeNull();
  });

  it('locks after the idle time, and when the backend answers auth.locked', async () => {
    const mock = createMockBridge();
    render(App, { props: { bridge: mock, idleCheckMs: 20 } });
    await screen.findByTestId('screen-home');
    noteInput(Date.now() - 11 * 60_000);
    expect(await screen.findByTestId('login-locked-note')).toBeTruthy();
    expect(mock.calls).toContain('lock');
    await logIn('liming', 'qingshan2026');
    await waitFor(() => expect(account.locked).toBe(false));
    // The backend's own deadline passed (its session dropped): the next
    // command's auth.locked brings the log-in form.
    await mock.lock();
    await fireEvent.click(screen.getByTestId('nav-children'));
    expect(await screen.findByTestId('login-locked-note')).toBeTruthy();
  });

  it('log-out keeps no screen and shows the log-in form', async () => {
    render(App, { props: { bridge: createMockBridge() } });
    await fireEvent.click(await screen.findByTestId('nav-settings'));
    await fireEvent.click(await screen.findByTestId('settings-logout'));
    expect(await screen.findByTestId('screen-login')).toBeTruthy();
    expect(screen.queryByTestId('screen-settings')).toBeNull();
  });
});

describe('settings: account', () => {
  it('has no role picker; changes the password; a teacher manages no users', async () => {
    const mock = createMockBridge();
    render(App, { props: { bridge: mock } });
    await fireEvent.click(await screen.findByTestId('nav-settings'));
    await screen.findByTestId('settings-account');
    expect(screen.queryByTestId('settings-role')).toBeNull();
    expect(screen.queryByTestId('laptop-users')).toBeNull();
    await fireEvent.change(screen.getByTestId('settings-auto-lock'), { target: { value: '30' } });
    await waitFor(async () => expect((await mock.getSettings()).auto_lock_minutes).toBe(30));
    await fireEvent.input(screen.getByTestId('password-old'), { target: { value: 'nope2026' } });
    await fireEvent.input(screen.getByTestId('password-new'), { target: { value: 'green2027' } });
    await fireEvent.input(screen.getByTestId('password-again'), { target: { value: 'green2027' } });
    await fireEvent.click(screen.getByTestId('password-save'));
    expect((await screen.findByTestId('password-error')).textContent).toBe('用户名或密码不正确');
    await fireEvent.input(screen.getByTestId('password-old'), { target: { value: 'qingshan2026' } });
    await fireEvent.click(screen.getByTestId('password-save'));
    await waitFor(() => expect(screen.queryByTestId('password-error')).toBeNull());
    await mock.logOut();
    await expect(mock.logIn('liming', 'green2027')).resolves.toMatchObject({ login_name: 'liming' });
  });

  it('a principal adds a laptop user and resets a password', async () => {
    const mock = createMockBridge({ vault: { users: [PRINCIPAL, MOCK_TEACHER] } });
    render(App, { props: { bridge: mock } });
    await fireEvent.click(await screen.findByTestId('nav-settings'));
    await screen.findByTestId('laptop-users');
    await waitFor(() => expect(screen.getAllByTestId('user-row').length).toBe(2));
    await fireEvent.input(screen.getByTestId('add-user-login'), { target: { value: 'wangfang' } });
    await fireEvent.input(screen.getByTestId('add-user-name'), { target: { value: '王芳' } });
    await fireEvent.input(screen.getByTestId('add-user-password'), { target: { value: 'wangfang2026' } });
    await fireEvent.input(screen.getByTestId('add-user-password-again'), { target: { value: 'wangfang2026' } });
    await fireEvent.click(screen.getByTestId('add-user-submit'));
    await waitFor(() => expect(screen.getAllByTestId('user-row').length).toBe(3));
    await fireEvent.change(screen.getByTestId('reset-user'), { target: { value: 'liming' } });
    await fireEvent.input(screen.getByTestId('reset-password-new'), { target: { value: 'reset2026' } });
    await fireEvent.input(screen.getByTestId('reset-password-again'), { target: { value: 'reset2026' } });
    await fireEvent.click(screen.getByTestId('reset-submit'));
    await waitFor(() => expect(mock.calls).toContain('resetPassword'));
    await mock.logOut();
    await expect(mock.logIn('liming', 'reset2026')).resolves.toMatchObject({ role: 'teacher' });
    await expect(mock.logIn('wangfang', 'wangfang2026')).resolves.toMatchObject({ display_name: '王芳' });
  });
});
