import { describe, expect, it } from 'vitest';
import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import Child from './Child.svelte';
import Children from './Children.svelte';
import Visit from './Visit.svelte';
import Settings from './Settings.svelte';
import { createMockBridge } from '../lib/bridge.mock';
import { app, toastState } from '../lib/app.svelte';

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

describe('settings', () => {
  it('switches the text size and keeps the choice', async () => {
    const mock = createMockBridge();
    render(Settings, { props: { bridge: mock } });
    await fireEvent.change(screen.getByTestId('settings-text-size'), { target: { value: 'large' } });
    await waitFor(() => expect(document.documentElement.dataset.textSize).toBe('large'));
    expect(app.settings.text_size).toBe('large');
    expect((await mock.getSettings()).text_size).toBe('large');
    expect((await screen.findByTestId('app-version')).textContent).toBe('0.0.0-mock');
  });
});
