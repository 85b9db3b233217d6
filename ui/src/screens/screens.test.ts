import { describe, expect, it } from 'vitest';
import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import Child from './Child.svelte';
import Children from './Children.svelte';
import Visit from './Visit.svelte';
import Settings from './Settings.svelte';
import Records from './Records.svelte';
import Households from './Households.svelte';
import Sync from './Sync.svelte';
import { createMockBridge } from '../lib/bridge.mock';
import { app, go, toastState } from '../lib/app.svelte';
import App from '../App.svelte';

const CHILD = {
  id: 'child-1',
  card: { name: '张小明', gender: 'male', birth_date: '2015-03-07', id_number: '520502201503070036', status: 'active', grade: '三年级', class_name: '1班' },
};

describe('children list', () => {
  it('lists matches with masked ID numbers and the total', async () => {
    render(Children, { props: { bridge: createMockBridge({ children: [CHILD] }) } });
    const row = await screen.findByTestId('children-row');
    expect(row.dataset.id).toBe('child-1');
    expect(row.textContent).toContain('张小明');
    expect(row.textContent).toContain('5205**********0036');
    expect(row.textContent).not.toContain('520502201503070036');
    expect(screen.getByTestId('children-count').dataset.count).toBe('1');
    await fireEvent.input(screen.getByTestId('children-search'), { target: { value: '李' } });
    await waitFor(() => expect(screen.getByTestId('children-count').dataset.count).toBe('0'));
  });
  it('searches at the first key without waiting, and folds keys typed during a search into one', async () => {
    const mock = createMockBridge({ children: [CHILD] });
    const queries: string[] = [];
    let release: (() => void) | null = null;
    const real = mock.searchChildren;
    mock.searchChildren = async (p) => {
      queries.push(p.query);
      if (p.query === '张') await new Promise<void>((r) => (release = r));
      return real(p);
    };
    render(Children, { props: { bridge: mock } });
    await screen.findByTestId('children-row');
    const input = screen.getByTestId('children-search');
    const typed = () => queries.filter((q) => q !== '');
    await fireEvent.input(input, { target: { value: '张' } });
    // No timer: the search for '张' has started already.
    expect(typed()).toEqual(['张']);
    await fireEvent.input(input, { target: { value: '张小' } });
    await fireEvent.input(input, { target: { value: '张小明' } });
    expect(typed()).toEqual(['张']);
    release!();
    await waitFor(() => expect(typed()).toEqual(['张', '张小明']));
    await waitFor(() => expect(screen.getByTestId('children-count').dataset.count).toBe('1'));
  });
});

describe('child card', () => {
  it('shows the validator’s Chinese message under the field as you type, keeping the text', async () => {
    render(Child, { props: { bridge: createMockBridge() } });
    const id = screen.getByTestId('child-field-id_number') as HTMLInputElement;
    await fireEvent.input(id, { target: { value: '52050220' } });
    const error = await screen.findByTestId('child-error-id_number');
    expect(error.textContent).toContain('应为18位');
    expect(id.value).toBe('52050220');
    // Untouched fields stay quiet until a save is attempted.
    expect(screen.queryByTestId('child-error-name')).toBeNull();
    await fireEvent.click(screen.getByTestId('child-save'));
    expect((await screen.findByTestId('child-error-name')).textContent).toContain('姓名不能为空');
  });

  it('saves with Ctrl+S', async () => {
    const mock = createMockBridge({ children: [CHILD] });
    render(Child, { props: { bridge: mock, id: 'child-1' } });
    const grade = (await screen.findByTestId('child-field-grade')) as HTMLInputElement;
    await waitFor(() => expect(grade.value).toBe('三年级'));
    await fireEvent.input(grade, { target: { value: '四年级' } });
    await fireEvent.keyDown(grade, { key: 's', ctrlKey: true });
    await waitFor(() => expect(mock.calls).toContain('saveChild'));
    await waitFor(() => expect(toastState.text).toBe('已保存'));
    expect((await mock.getChild('child-1')).card.grade).toBe('四年级');
    expect(screen.getByTestId('child-add-visit')).toBeTruthy();
  });

  it('rejects a date that does not exist without clearing it', async () => {
    render(Child, { props: { bridge: createMockBridge() } });
    const birth = screen.getByTestId('child-field-birth_date') as HTMLInputElement;
    await fireEvent.input(birth, { target: { value: '2015-02-30' } });
    expect((await screen.findByTestId('child-error-birth_date')).textContent).toContain('日期格式不正确');
    expect(birth.value).toBe('2015-02-30');
  });
});

describe('home visit', () => {
  it('autosaves a draft after typing, then finalises it', async () => {
    const mock = createMockBridge({ children: [CHILD] });
    render(Visit, { props: { bridge: mock, child: 'child-1' } });
    expect(screen.getByTestId('visit-draft-status').dataset.state).toBe('new');
    await fireEvent.input(screen.getByTestId('visit-field-living_conditions'), { target: { value: '与奶奶同住' } });
    await waitFor(() => expect(screen.getByTestId('visit-draft-status').textContent).toBe('草稿已保存'), { timeout: 3000 });
    expect(mock.calls.filter((c) => c === 'saveVisitDraft').length).toBe(1);
    // Finalising without visitors is refused with the message under the field.
    await fireEvent.click(screen.getByTestId('visit-finalise'));
    expect((await screen.findByTestId('visit-error-visitors')).textContent).toContain('走访人员');
    await fireEvent.input(screen.getByTestId('visit-field-visitors'), { target: { value: '李老师，王老师' } });
    await fireEvent.click(screen.getByTestId('visit-finalise'));
    await waitFor(() => expect(screen.queryByTestId('visit-finalise')).toBeNull(), { timeout: 3000 });
    const child = await mock.getChild('child-1');
    expect(child.visits.map((v) => v.status)).toEqual(['final']);
  });
});

describe('closing the window', () => {
  it('saves the keystrokes typed since the last autosave first', async () => {
    const mock = createMockBridge({ children: [CHILD] });
    render(App, { props: { bridge: mock } });
    await screen.findByTestId('screen-home');
    await go('visit', { child: 'child-1' });
    const field = await screen.findByTestId('visit-field-problems_found');
    await fireEvent.input(field, { target: { value: '想念妈妈' } });
    // Closed at once, while the save may still be running.
    await mock.closeWindow();
    expect(mock.calls.filter((c) => c === 'saveVisitDraft').length).toBeGreaterThanOrEqual(1);
    const row = (await mock.getChild('child-1')).visits[0];
    expect(row.status).toBe('draft');
    expect((await mock.getVisit(row.id)).visit.problems_found).toBe('想念妈妈');
  });
});

describe('settings', () => {
  it('switches the text size and keeps the choice', async () => {
    const mock = createMockBridge();
    render(Settings, { props: { bridge: mock } });
    await fireEvent.change(screen.getByTestId('settings-text-size'), { target: { value: 'large' } });
    await waitFor(() => expect(document.documentElement.dataset.textSize).toBe('large'));
    expect(app.settings.text_size).toBe('large');
    expect((await mock.getSettings()).text_size).toBe('large');
    await waitFor(() => expect(screen.getByTestId('settings-version').textContent).toBe('0.0.0-mock'));
  });
});

describe('sync enrollment', () => {
  const FP = '96:71:A0:10:E9:95:3B:B0:26:74:DF:70:C9:85:61:EC:93:3B:F7:2B:D7:50:77:CE:AF:0E:26:35:52:70:D9:82';

  it('takes the certificate fingerprint with the code, checks it as typed and shows the pinned one', async () => {
    const mock = createMockBridge();
    const sent: string[][] = [];
    const enroll = mock.enroll;
    mock.enroll = (server, code, fingerprint) => {
      sent.push([server, code, fingerprint]);
      return enroll(server, code, fingerprint);
    };
    render(Sync, { props: { bridge: mock } });
    expect((await screen.findByTestId('sync-fingerprint-help')).textContent).toContain('前16位');
    await fireEvent.input(screen.getByTestId('sync-server'), { target: { value: 'https://10.0.0.5:8470' } });
    await fireEvent.input(screen.getByTestId('sync-code'), { target: { value: 'K7MQ2XRT9B' } });
    const fp = screen.getByTestId('sync-fingerprint') as HTMLInputElement;
    // Too short so far: said under the field, and what was typed stays.
    await fireEvent.input(fp, { target: { value: '96:71:A0' } });
    expect((await screen.findByTestId('sync-fingerprint-error')).textContent).toContain('至少前16位');
    expect(fp.value).toBe('96:71:A0');
    expect(fp.getAttribute('aria-invalid')).toBe('true');
    await fireEvent.input(fp, { target: { value: FP.slice(0, 23) } });
    await waitFor(() => expect(screen.queryByTestId('sync-fingerprint-error')).toBeNull());
    await fireEvent.input(fp, { target: { value: FP } });
    await fireEvent.click(screen.getByTestId('sync-run'));
    await screen.findByTestId('sync-result');
    expect(sent).toEqual([['https://10.0.0.5:8470', 'K7MQ2XRT9B', FP]]);
    expect((await screen.findByTestId('sync-pinned-fingerprint')).textContent).toContain(FP);
    expect(fp.value).toBe('');
    expect((screen.getByTestId('sync-code') as HTMLInputElement).value).toBe('');
  });

  it('a running sync can be cancelled, and says it will continue next time', async () => {
    const mock = createMockBridge({ syncWaitsForCancel: true });
    await mock.enroll('https://10.0.0.5:8470', 'K7MQ2XRT9B', FP);
    render(Sync, { props: { bridge: mock } });
    await fireEvent.click(await screen.findByTestId('sync-run'));
    const cancel = await screen.findByTestId('sync-cancel');
    expect(screen.getByTestId('sync-progress').dataset.total).toBe('4');
    await fireEvent.click(cancel);
    expect(mock.calls).toContain('cancelSync');
    expect((await screen.findByTestId('sync-error')).textContent).toContain('下次会从中断处继续');
    await waitFor(() => expect(screen.queryByTestId('sync-cancel')).toBeNull());
  });

  it('names the schools that left this computer\'s scope and those kept for unsent changes', async () => {
    const mock = createMockBridge();
    await mock.enroll('https://10.0.0.5:8470', 'K7MQ2XRT9B', FP);
    const run = mock.runSync;
    mock.runSync = async (onProgress) => ({
      ...(await run(onProgress)),
      schools_removed: [{ school_id: 'school-b', name: '八步中学', records: 42 }],
      schools_kept: [{ school_id: 'school-c', name: '龙场中学', pending: 2 }],
    });
    render(Sync, { props: { bridge: mock } });
    await fireEvent.click(await screen.findByTestId('sync-run'));
    const removed = await screen.findByTestId('sync-school-removed');
    expect(removed.textContent).toContain('已移出本机范围的学校：八步中学');
    expect(removed.textContent).toContain('42');
    expect(screen.getByTestId('sync-school-kept').textContent).toContain('2 条修改未能上传');
  });

  it('a wrong fingerprint at enrollment asks to check it, and nothing typed is lost', async () => {
    const mock = createMockBridge({
      failWith: {
        enroll: {
          code: 'sync.certificate_mismatch',
          message: 'mismatch',
          details: { expected: '00:11:22:33:44:55:66:77…', found: FP, at_enrollment: true },
        },
      },
    });
    render(Sync, { props: { bridge: mock } });
    await fireEvent.input(screen.getByTestId('sync-server'), { target: { value: 'https://10.0.0.5:8470' } });
    await fireEvent.input(screen.getByTestId('sync-code'), { target: { value: 'K7MQ2XRT9B' } });
    await fireEvent.input(screen.getByTestId('sync-fingerprint'), { target: { value: '0011223344556677' } });
    await fireEvent.click(screen.getByTestId('sync-run'));
    const error = await screen.findByTestId('sync-error');
    expect(error.dataset.code).toBe('sync.certificate_mismatch');
    expect(error.textContent).toContain('核对指纹');
    expect(error.textContent).toContain('没有注册');
    expect(screen.getByTestId('sync-cert-detail').textContent).toContain(FP);
    expect((screen.getByTestId('sync-fingerprint') as HTMLInputElement).value).toBe('0011223344556677');
    expect(mock.calls).not.toContain('runSync');
  });

  it('a changed certificate at sync time says not to sync and shows both fingerprints', async () => {
    const found = 'AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89';
    const mock = createMockBridge({
      failWith: {
        runSync: {
          code: 'sync.certificate_mismatch',
          message: 'mismatch',
          details: { expected: FP, found, at_enrollment: false },
        },
      },
    });
    render(Sync, { props: { bridge: mock } });
    await fireEvent.input(screen.getByTestId('sync-server'), { target: { value: 'https://10.0.0.5:8470' } });
    await fireEvent.input(screen.getByTestId('sync-code'), { target: { value: 'K7MQ2XRT9B' } });
    await fireEvent.input(screen.getByTestId('sync-fingerprint'), { target: { value: FP } });
    await fireEvent.click(screen.getByTestId('sync-run'));
    const error = await screen.findByTestId('sync-error');
    expect(error.textContent).toContain('证书变了');
    expect(error.textContent).toContain('不要继续同步');
    const detail = screen.getByTestId('sync-cert-detail').textContent ?? '';
    expect(detail).toContain(FP);
    expect(detail).toContain(found);
  });
});

describe('counseling flag and sealed notes', () => {
  const FLAGGED = {
    id: 'child-2',
    card: {
      ...CHILD.card,
      name: '王小红',
      counseling: { active: true, since: '2026-11-01', alert: 'urgent', alert_text: '放学后请确认有人接送' },
    },
  };

  it('shows a teacher the flag and the alert, read-only, and never the notes', async () => {
    const { account } = await import('../lib/app.svelte');
    account.user = null;
    render(Child, { props: { bridge: createMockBridge({ children: [FLAGGED] }), id: 'child-2' } });
    const box = await screen.findByTestId('child-counseling');
    await waitFor(() => expect(box.dataset.active).toBe('true'));
    expect(screen.getByTestId('child-counseling-status').textContent).toContain('心理辅导中');
    expect(screen.getByTestId('child-counseling-alert').textContent).toContain('紧急');
    expect(screen.getByTestId('child-counseling-alert').textContent).toContain('放学后请确认有人接送');
    expect(screen.queryByTestId('child-field-counseling.active')).toBeNull();
  });

  it('lets a counselor set the flag and save it', async () => {
    const { account } = await import('../lib/app.svelte');
    const mock = createMockBridge({
      children: [CHILD],
      vault: { users: [{ login_name: 'xinli', display_name: '心理老师', role: 'counselor', password: 'xinli2026ok' }] },
    });
    account.user = await mock.logIn('xinli', 'xinli2026ok');
    render(Child, { props: { bridge: mock, id: 'child-1' } });
    const active = (await screen.findByTestId('child-field-counseling.active')) as HTMLInputElement;
    await fireEvent.click(active);
    const text = (await screen.findByTestId('child-field-counseling.alert_text')) as HTMLTextAreaElement;
    await fireEvent.input(text, { target: { value: '情绪低落时请多陪伴' } });
    await fireEvent.click(screen.getByTestId('child-save'));
    await waitFor(() => expect(toastState.text).toBe('已保存'));
    const saved = (await mock.getChild('child-1')).card.counseling as { active: boolean; alert_text: string };
    expect(saved.active).toBe(true);
    expect(saved.alert_text).toBe('情绪低落时请多陪伴');
    account.user = null;
  });

  it('shows a note sealed for other readers as locked, the readable one in full', async () => {
    const { account } = await import('../lib/app.svelte');
    const mock = createMockBridge({
      children: [CHILD],
      vault: { users: [{ login_name: 'xinli', display_name: '心理老师', role: 'counselor', password: 'xinli2026ok' }] },
      records: [
        { id: 'n1', kind: 'psych_note', updated_at: '2026-11-20T08:00:00Z', locked: false,
          body: { child_id: 'child-1', session_date: '2026-11-20', presenting_issue: '想念妈妈', risk_level: 'medium' } },
        { id: 'n2', kind: 'psych_note', updated_at: '2026-11-21T08:00:00Z', locked: true,
          body: { child_id: 'child-1', session_date: '2026-11-21', presenting_issue: '', risk_level: 'low' } },
      ],
    });
    account.user = await mock.logIn('xinli', 'xinli2026ok');
    render(Records, { props: { bridge: mock, child: 'child-1', childName: '张小明' } });
    const rows = await screen.findAllByTestId('record-row');
    expect(rows.map((r) => r.dataset.locked)).toEqual(['false', 'true']);
    expect(rows[1].textContent).toContain('已加密');
    expect(rows[1].textContent).not.toContain('想念妈妈');
    // The readable note can be changed; the locked one offers no edit.
    expect(rows[1].querySelector('[data-testid="record-edit"]')).toBeNull();
    await fireEvent.click(rows[0].querySelector('[data-testid="record-edit"]') as HTMLElement);
    expect(screen.getByTestId('records-form-title').textContent).toContain('修改');
    const issue = screen.getByTestId('record-field-presenting_issue') as HTMLTextAreaElement;
    expect(issue.value).toBe('想念妈妈');
    await fireEvent.input(issue, { target: { value: '想念妈妈，已好转' } });
    await fireEvent.click(screen.getByTestId('record-save'));
    await waitFor(async () => {
      const list = await mock.listChildRecords('child-1', 'psych_note');
      expect(list.find((r) => r.id === 'n1')?.body.presenting_issue).toBe('想念妈妈，已好转');
    });
    expect((await mock.listChildRecords('child-1', 'psych_note')).length).toBe(2);
    account.user = null;
  });
});

describe('households and deleting a card', () => {
  it('creates a household, refusing a missing head of household in Chinese', async () => {
    const mock = createMockBridge();
    render(Households, { props: { bridge: mock } });
    await fireEvent.click(await screen.findByTestId('households-new'));
    await fireEvent.input(screen.getByTestId('household-field-label'), { target: { value: '张家' } });
    await fireEvent.click(screen.getByTestId('household-create'));
    await waitFor(() => expect(toastState.text).toContain('户主姓名不能为空'));
    expect((screen.getByTestId('household-field-label') as HTMLInputElement).value).toBe('张家');
    await fireEvent.input(screen.getByTestId('household-field-head_name'), { target: { value: '张建国' } });
    await fireEvent.click(screen.getByTestId('household-create'));
    await waitFor(() => expect(mock.calls.filter((c) => c === 'saveHousehold').length).toBe(2));
    const list = await mock.listHouseholds(null, '');
    expect(list.map((h) => h.head_name)).toEqual(['张建国']);
  });

  it('deletes a card only with a reason', async () => {
    const { account } = await import('../lib/app.svelte');
    const mock = createMockBridge({ children: [CHILD] });
    account.user = await mock.logIn('liming', 'qingshan2026');
    render(Child, { props: { bridge: mock, id: 'child-1' } });
    await fireEvent.click(await screen.findByTestId('child-delete'));
    await fireEvent.click(screen.getByTestId('child-delete-confirm'));
    expect(mock.calls).not.toContain('deleteChild');
    await fireEvent.input(screen.getByTestId('child-delete-reason'), { target: { value: '重复建档' } });
    await fireEvent.click(screen.getByTestId('child-delete-confirm'));
    await waitFor(() => expect(mock.calls).toContain('deleteChild'));
    await expect(mock.getChild('child-1')).rejects.toBeTruthy();
    account.user = null;
  });
});

describe('read-only roles', () => {
  it('show no save, delete or new buttons to a township officer, and no note form to a supervisor', async () => {
    const { account } = await import('../lib/app.svelte');
    const mock = createMockBridge({
      children: [CHILD],
      vault: {
        users: [
          { login_name: 'town', display_name: '乡镇教育办', role: 'township_staff', password: 'town2026ok' },
          { login_name: 'super', display_name: '督导', role: 'psych_supervisor', password: 'super2026ok' },
        ],
      },
      records: [{ id: 'n1', kind: 'psych_note', updated_at: '2026-11-20T08:00:00Z', body: { child_id: 'child-1', session_date: '2026-11-20', presenting_issue: '想念妈妈' } }],
    });
    account.user = await mock.logIn('town', 'town2026ok');
    const child = render(Child, { props: { bridge: mock, id: 'child-1' } });
    await screen.findByTestId('child-counseling');
    expect(screen.queryByTestId('child-save')).toBeNull();
    expect(screen.queryByTestId('child-delete')).toBeNull();
    expect(screen.queryByTestId('child-add-visit')).toBeNull();
    child.unmount();
    const hh = render(Households, { props: { bridge: mock } });
    await screen.findByTestId('screen-households');
    expect(screen.queryByTestId('households-new')).toBeNull();
    hh.unmount();
    account.user = await mock.logIn('super', 'super2026ok');
    render(Records, { props: { bridge: mock, child: 'child-1', childName: '张小明' } });
    const rows = await screen.findAllByTestId('record-row');
    expect(rows.length).toBe(1);
    expect(screen.queryByTestId('record-save')).toBeNull();
    expect(screen.queryByTestId('record-edit')).toBeNull();
    account.user = null;
  });
});
