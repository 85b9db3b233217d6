import { afterEach, describe, expect, it, vi } from 'vitest';
import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import Household from './Household.svelte';
import Child from './Child.svelte';
import { createMockBridge } from '../lib/bridge.mock';
import { account, closeDialog, dialog, toastState } from '../lib/app.svelte';

const HOUSEHOLD = {
  label: '王家',
  head_name: '王建国',
  phone: '13800001111',
  school_id: null,
  address: { county: '青山县', township: '青山镇', village: '', group: '', detail: '' },
  notes: '',
};

const CHILD = {
  id: 'child-1',
  card: {
    name: '王小红',
    gender: 'female',
    birth_date: '2015-06-01',
    id_number: '520502201506010023',
    grade: '四年级',
    class_name: '2班',
    household_id: 'h1',
    guardian: { name: '王奶奶', relation: 'grandparent', phone: '13800001111' },
    counseling: { active: true, since: '2026-09-01', alert: 'watch', alert_text: '最近情绪低落，请多关心' },
    status: 'active',
  },
};

afterEach(() => {
  account.user = null;
  vi.restoreAllMocks();
});

describe('household editing', () => {
  it('edits the address and phone with the version it was opened at, errors in Chinese under the field', async () => {
    const mock = createMockBridge({ households: { h1: HOUSEHOLD }, householdVersions: { h1: 4 } });
    render(Household, { props: { bridge: mock, id: 'h1' } });
    expect((await screen.findByTestId('household-info')).textContent).toContain('青山县 青山镇');
    await fireEvent.click(screen.getByTestId('household-edit'));
    const form = await screen.findByTestId('household-form');
    await fireEvent.input(within(form).getByTestId('household-field-address.village'), { target: { value: '石桥村' } });
    await fireEvent.input(within(form).getByTestId('household-field-phone'), { target: { value: '12345' } });
    // As typed: the validator's message under the field, before any save.
    expect((await screen.findByTestId('household-error-phone')).textContent).toContain('电话格式不正确');
    expect(mock.calls).not.toContain('saveHousehold');
    await fireEvent.click(screen.getByTestId('household-save'));
    await waitFor(() => expect(screen.getByTestId('household-error-phone').textContent).toContain('手机号码'));
    expect((within(form).getByTestId('household-field-phone') as HTMLInputElement).value).toBe('12345');
    await fireEvent.input(within(form).getByTestId('household-field-phone'), { target: { value: '13900002222' } });
    await fireEvent.click(screen.getByTestId('household-save'));
    await waitFor(() => expect(screen.queryByTestId('household-form')).toBeNull());
    const saved = await mock.getHousehold('h1');
    expect(saved.household.phone).toBe('13900002222');
    expect((saved.household.address as Record<string, string>).village).toBe('石桥村');
    expect((await screen.findByTestId('household-info')).textContent).toContain('石桥村');
  });

  it('refuses a save after a sync changed the household and offers to open it again', async () => {
    const versions = { h1: 4 };
    const mock = createMockBridge({ households: { h1: HOUSEHOLD }, householdVersions: versions });
    const real = mock.getHousehold;
    // The form was opened at version 3: a sync has changed it since.
    mock.getHousehold = async (id) => ({ ...(await real(id)), version: 3 });
    render(Household, { props: { bridge: mock, id: 'h1' } });
    await fireEvent.click(await screen.findByTestId('household-edit'));
    await fireEvent.input(await screen.findByTestId('household-field-label'), { target: { value: '王家（新）' } });
    await fireEvent.click(screen.getByTestId('household-save'));
    expect((await screen.findByTestId('household-changed')).textContent).toContain('同步');
    expect((await mock.getHousehold('h1')).household.label).toBe('王家');
    mock.getHousehold = real;
    await fireEvent.click(screen.getByTestId('household-reopen'));
    await fireEvent.input(await screen.findByTestId('household-field-label'), { target: { value: '王家（新）' } });
    await fireEvent.click(screen.getByTestId('household-save'));
    await waitFor(() => expect(toastState.text).toBe('已保存'));
    expect((await mock.getHousehold('h1')).household.label).toBe('王家（新）');
  });

  it('adds a sibling by name and removes one after asking', async () => {
    const mock = createMockBridge({
      households: { h1: HOUSEHOLD },
      children: [CHILD, { id: 'child-2', card: { name: '王小明', gender: 'male', grade: '一年级', class_name: '1班' } }],
    });
    render(Household, { props: { bridge: mock, id: 'h1' } });
    const members = await screen.findAllByTestId('household-member');
    expect(members.map((m) => m.dataset.id)).toEqual(['child-1']);
    await fireEvent.input(screen.getByTestId('household-member-search'), { target: { value: '王小明' } });
    const add = await screen.findByTestId('household-member-add');
    expect(add.dataset.id).toBe('child-2');
    await fireEvent.click(add);
    await waitFor(() => expect(screen.getAllByTestId('household-member').length).toBe(2));
    expect((await mock.getChild('child-2')).card.household_id).toBe('h1');
    const first = screen.getAllByTestId('household-member').find((m) => m.dataset.id === 'child-1')!;
    await fireEvent.click(within(first).getByTestId('household-member-remove'));
    await waitFor(() => expect(dialog.open).toBe(true));
    expect(dialog.title).toContain('王小红');
    closeDialog(true);
    await waitFor(() => expect(screen.getAllByTestId('household-member').length).toBe(1));
    expect((await mock.getChild('child-1')).card.household_id).toBeNull();
  });

  it('is read-only for roles that only read', async () => {
    const mock = createMockBridge({
      households: { h1: HOUSEHOLD },
      children: [CHILD],
      vault: { users: [{ login_name: 'town', display_name: '乡镇教育办', role: 'township_staff', password: 'town2026ok' }] },
    });
    account.user = await mock.logIn('town', 'town2026ok');
    render(Household, { props: { bridge: mock, id: 'h1' } });
    await screen.findByTestId('household-info');
    await screen.findAllByTestId('household-member');
    expect(screen.queryByTestId('household-edit')).toBeNull();
    expect(screen.queryByTestId('household-member-remove')).toBeNull();
    expect(screen.queryByTestId('household-member-search')).toBeNull();
  });
});

describe('printable child card', () => {
  it('asks, then prints (audited by the command) the card grouped like the paper form, with the flag but no counseling text', async () => {
    const mock = createMockBridge({ children: [CHILD], households: { h1: HOUSEHOLD } });
    render(Child, { props: { bridge: mock, id: 'child-1' } });
    await fireEvent.click(await screen.findByTestId('child-print'));
    await waitFor(() => expect(dialog.open).toBe(true));
    expect(dialog.body).toContain('审计');
    // Cancelled: nothing printed, nothing audited.
    closeDialog(false);
    await new Promise((r) => setTimeout(r, 20));
    expect(mock.printed).toEqual([]);
    expect(document.body.querySelector('[data-testid="print-card"]')).toBeNull();
    await fireEvent.click(screen.getByTestId('child-print'));
    await waitFor(() => expect(dialog.open).toBe(true));
    closeDialog(true);
    await waitFor(() => expect(mock.printed).toEqual(['child-1']));
    const card = document.body.querySelector('[data-testid="print-card"]') as HTMLElement;
    expect(card.parentElement).toBe(document.body);
    const groups = [...card.querySelectorAll('[data-testid="print-group"] caption')].map((c) => c.textContent);
    expect(groups).toEqual(['儿童基本情况', '就学情况', '家庭情况', '监护情况', '帮扶情况']);
    expect(card.textContent).toContain('520502201506010023');
    expect(card.textContent).toContain('2015年6月1日');
    expect(card.textContent).toContain('祖父母');
    expect(card.querySelector('[data-testid="print-counseling"]')!.textContent).toContain('正在接受心理辅导');
    expect(card.textContent).not.toContain('最近情绪低落');
    expect(card.querySelector('button')).toBeNull();
  });
});

describe('plan approval', () => {
  it('lets only a principal fill in 审批人; others see it but cannot change it', async () => {
    const mock = createMockBridge({
      households: { h1: HOUSEHOLD },
      vault: {
        users: [
          { login_name: 'li', display_name: '李老师', role: 'teacher', password: 'teacher2026ok' },
          { login_name: 'wang', display_name: '王校长', role: 'principal', password: 'principal2026ok' },
        ],
      },
    });
    account.user = await mock.logIn('li', 'teacher2026ok');
    const teacherView = render(Household, { props: { bridge: mock, id: 'h1' } });
    await fireEvent.click(await screen.findByTestId('plan-new'));
    const field = (await screen.findByTestId('plan-field-approved_by')) as HTMLInputElement;
    expect(field.disabled).toBe(true);
    teacherView.unmount();
    account.user = await mock.logIn('wang', 'principal2026ok');
    render(Household, { props: { bridge: mock, id: 'h1' } });
    await fireEvent.click(await screen.findByTestId('plan-new'));
    expect(((await screen.findByTestId('plan-field-approved_by')) as HTMLInputElement).disabled).toBe(false);
  });
});
