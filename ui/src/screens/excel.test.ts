/**
 * Excel in and out on the children screen, against the mock bridge: who sees
 * which button, the confirmation before an export, the progress bar, the
 * import result and the table of row errors.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import Children from './Children.svelte';
import { createMockBridge } from '../lib/bridge.mock';
import { account, toastState } from '../lib/app.svelte';
import type { XlsxProgress } from '../lib/bridge';

const CHILD = {
  id: 'child-1',
  card: { name: '张小明', gender: 'male', birth_date: '2015-03-07', id_number: '520502201503070036', status: 'active' },
};

const users = [
  { login_name: 'wang', display_name: '王校长', role: 'principal' as const, password: 'wang2026ok' },
  { login_name: 'liming', display_name: '李明', role: 'teacher' as const, password: 'qingshan2026' },
  { login_name: 'town', display_name: '乡镇教育办', role: 'township_staff' as const, password: 'town2026ok' },
];

afterEach(() => {
  account.user = null;
});

describe('Excel buttons by role', () => {
  it('a principal exports and imports, a teacher only imports, township staff only export', async () => {
    const mock = createMockBridge({ children: [CHILD], vault: { users } });

    account.user = await mock.logIn('wang', 'wang2026ok');
    let view = render(Children, { props: { bridge: mock } });
    await screen.findByTestId('children-row');
    expect(screen.getByTestId('excel-export')).toBeTruthy();
    expect(screen.getByTestId('excel-import')).toBeTruthy();
    view.unmount();

    account.user = await mock.logIn('liming', 'qingshan2026');
    view = render(Children, { props: { bridge: mock } });
    await screen.findByTestId('children-row');
    expect(screen.queryByTestId('excel-export')).toBeNull();
    expect(screen.getByTestId('excel-import')).toBeTruthy();
    expect(screen.getByTestId('excel-template')).toBeTruthy();
    view.unmount();

    account.user = await mock.logIn('town', 'town2026ok');
    render(Children, { props: { bridge: mock } });
    await screen.findByTestId('children-row');
    expect(screen.getByTestId('excel-export')).toBeTruthy();
    expect(screen.queryByTestId('excel-import')).toBeNull();
  });
});

describe('Excel export', () => {
  it('asks first, with the workbook password typed twice, sends the list filter, and says how many were exported', async () => {
    const mock = createMockBridge({ children: [CHILD], vault: { users } });
    account.user = await mock.logIn('wang', 'wang2026ok');
    const sent: unknown[] = [];
    const real = mock.exportChildrenXlsx;
    mock.exportChildrenXlsx = (filter, template, password, onProgress) => {
      sent.push({ filter, template, password });
      return real(filter, template, password, onProgress);
    };
    render(Children, { props: { bridge: mock } });
    await screen.findByTestId('children-row');
    await fireEvent.click(screen.getByTestId('excel-export'));
    const form = await screen.findByTestId('excel-export-form');
    expect(form.textContent).toContain('1 名儿童');
    expect(mock.calls).not.toContain('exportChildrenXlsx');

    // Two different passwords: said so, nothing sent.
    await fireEvent.input(screen.getByTestId('excel-export-password'), { target: { value: 'qingshan2026' } });
    await fireEvent.input(screen.getByTestId('excel-export-password-again'), { target: { value: 'qingshan2025' } });
    await fireEvent.click(screen.getByTestId('excel-export-ok'));
    expect((await screen.findByTestId('excel-export-error')).textContent).toBe('两次输入的密码不一致，请重新输入');
    expect(sent).toEqual([]);

    // A weak one: the backend's rule, shown in the form.
    await fireEvent.input(screen.getByTestId('excel-export-password'), { target: { value: 'abc' } });
    await fireEvent.input(screen.getByTestId('excel-export-password-again'), { target: { value: 'abc' } });
    await fireEvent.click(screen.getByTestId('excel-export-ok'));
    await waitFor(() => expect(screen.getByTestId('excel-export-error').textContent).toContain('8'));
    expect(screen.getByTestId('excel-export-form')).toBeTruthy();

    await fireEvent.input(screen.getByTestId('excel-export-password'), { target: { value: 'qingshan2026' } });
    await fireEvent.input(screen.getByTestId('excel-export-password-again'), { target: { value: 'qingshan2026' } });
    await fireEvent.click(screen.getByTestId('excel-export-ok'));
    await waitFor(() => expect(toastState.text).toBe('已导出 1 名儿童到 留守儿童登记表.xlsx'));
    expect(screen.queryByTestId('excel-export-form')).toBeNull();
    expect(sent[sent.length - 1]).toEqual({ filter: expect.objectContaining({ status: 'active', query: '' }), template: false, password: 'qingshan2026' });
  });

  it('does nothing when the form is cancelled; the template needs no password and may be cancelled', async () => {
    const mock = createMockBridge({ children: [CHILD], vault: { users }, excelDialogCancelled: true });
    account.user = await mock.logIn('wang', 'wang2026ok');
    render(Children, { props: { bridge: mock } });
    await screen.findByTestId('children-row');
    await fireEvent.click(screen.getByTestId('excel-export'));
    await fireEvent.click(await screen.findByTestId('excel-export-cancel'));
    expect(screen.queryByTestId('excel-export-form')).toBeNull();
    expect(mock.calls).not.toContain('exportChildrenXlsx');
    toastState.text = '';
    await fireEvent.click(screen.getByTestId('excel-template'));
    await waitFor(() => expect(mock.calls).toContain('exportChildrenXlsx'));
    expect(toastState.text).toBe('');
  });
});

describe('Excel import', () => {
  it('shows a progress bar while it runs, then 已导入 N 名儿童', async () => {
    const mock = createMockBridge({
      vault: { users },
      excelImport: { rows: 12, created: 10, updated: 2, unchanged: 0, ignored_columns: ['序号'] },
    });
    account.user = await mock.logIn('liming', 'qingshan2026');
    let release: () => void = () => {};
    const real = mock.importChildrenXlsx;
    mock.importChildrenXlsx = async (onProgress: (p: XlsxProgress) => void) => {
      onProgress({ phase: 'check', done: 12, total: 12 });
      onProgress({ phase: 'write', done: 5, total: 12 });
      await new Promise<void>((r) => (release = r));
      return real(onProgress);
    };
    render(Children, { props: { bridge: mock } });
    await fireEvent.click(screen.getByTestId('excel-import'));
    const bar = await screen.findByTestId('excel-progress');
    await waitFor(() => expect(bar.dataset.done).toBe('5'));
    expect(bar.dataset.total).toBe('12');
    expect(bar.textContent).toContain('正在导入：5 / 12');
    expect((screen.getByTestId('excel-import') as HTMLButtonElement).disabled).toBe(true);
    release();
    const ok = await screen.findByTestId('excel-result-ok');
    expect(ok.textContent).toBe('已导入 12 名儿童');
    expect(screen.getByTestId('excel-result').textContent).toContain('新增 10 名，更新 2 名');
    expect(screen.getByTestId('excel-result').textContent).toContain('序号');
    expect(screen.queryByTestId('excel-progress')).toBeNull();
    await fireEvent.click(screen.getByTestId('excel-result-close'));
    expect(screen.queryByTestId('excel-result')).toBeNull();
  });

  it('lists every bad row in Chinese when the import is refused', async () => {
    const errors = [
      { row: 5, column: '身份证号码', code: 'id_number.checksum', message: '身份证号第18位校验码应为X，请核对' },
      { row: 9, column: '出生日期', code: 'import.date_invalid', message: '出生日期“2015-13-45”不是有效的日期，请写成2015-03-07这样的格式' },
    ];
    const mock = createMockBridge({
      vault: { users },
      failWith: {
        importChildrenXlsx: { code: 'import.rows_invalid', message: '表格中有2处错误，没有导入任何儿童', details: { errors } },
      },
    });
    account.user = await mock.logIn('liming', 'qingshan2026');
    render(Children, { props: { bridge: mock } });
    await fireEvent.click(screen.getByTestId('excel-import'));
    const msg = await screen.findByTestId('excel-result-error');
    expect(msg.textContent).toBe('表格中有 2 处错误，没有导入任何儿童');
    const rows = screen.getAllByTestId('excel-row-error');
    expect(rows.map((r) => r.dataset.row)).toEqual(['5', '9']);
    expect(rows[0].textContent).toContain('身份证号码');
    expect(rows[0].textContent).toContain('校验码');
    expect(rows[1].textContent).toContain('2015-13-45');
  });

  it('names the missing headers', async () => {
    const mock = createMockBridge({
      vault: { users },
      failWith: {
        importChildrenXlsx: { code: 'import.header_missing', message: 'x', details: { missing: ['性别', '出生日期'] } },
      },
    });
    account.user = await mock.logIn('liming', 'qingshan2026');
    render(Children, { props: { bridge: mock } });
    await fireEvent.click(screen.getByTestId('excel-import'));
    const msg = await screen.findByTestId('excel-result-error');
    expect(msg.textContent).toContain('性别”“出生日期');
    expect(screen.queryByTestId('excel-row-errors')).toBeNull();
  });

  it('asks for the password of a protected workbook and retries with it', async () => {
    const mock = createMockBridge({ vault: { users }, excelImportPassword: 'county2026' });
    account.user = await mock.logIn('liming', 'qingshan2026');
    const seen: unknown[] = [];
    const real = mock.importChildrenXlsx;
    mock.importChildrenXlsx = (onProgress, password, retry) => {
      seen.push({ password: password ?? null, retry: retry ?? false });
      return real(onProgress, password, retry);
    };
    render(Children, { props: { bridge: mock } });
    await fireEvent.click(screen.getByTestId('excel-import'));
    const input = await screen.findByTestId('excel-import-password');
    expect(screen.queryByTestId('excel-import-password-error')).toBeNull();
    await fireEvent.input(input, { target: { value: 'guess1234' } });
    await fireEvent.click(screen.getByTestId('excel-import-password-ok'));
    expect((await screen.findByTestId('excel-import-password-error')).textContent).toContain('密码不正确');
    await fireEvent.input(screen.getByTestId('excel-import-password'), { target: { value: 'county2026' } });
    await fireEvent.click(screen.getByTestId('excel-import-password-ok'));
    expect((await screen.findByTestId('excel-result-ok')).textContent).toBe('已导入 2 名儿童');
    expect(screen.queryByTestId('excel-import-password-form')).toBeNull();
    // The first call opens the dialog, the retries reuse the picked file.
    expect(seen).toEqual([
      { password: null, retry: false },
      { password: 'guess1234', retry: true },
      { password: 'county2026', retry: true },
    ]);
  });
});
