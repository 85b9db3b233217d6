import { describe, expect, it } from 'vitest';
import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import Conflicts from './Conflicts.svelte';
import { createMockBridge } from '../lib/bridge.mock';
import { nav } from '../lib/app.svelte';
import type { ConflictView } from '../lib/bridge';
import { conflictFieldLabel, conflictValueText, mergedValue } from '../lib/conflicts';

const stamp = (by: string, device: string) => ({ by, device, at: '2026-11-28T06:30:00Z' });
const conflict = (id: string, field: string, current: unknown, other: unknown, local: ConflictView['local_side'] = 'current'): ConflictView => ({
  id,
  entity: 'child',
  record_id: 'child-1',
  record_label: '赵小雨',
  kind: 'same_field',
  field,
  current_value: current,
  current_by: stamp('me', 'aaaa1111'),
  other_value: other,
  other_by: stamp('0193abcd', 'bbbb2222'),
  local_side: local,
});

describe('conflicts screen', () => {
  it('shows both values side by side with the field in Chinese and keeps the server’s', async () => {
    const mock = createMockBridge({ conflicts: [conflict('c1', 'guardian.phone', '13900002222', '13700003333')] });
    render(Conflicts, { props: { bridge: mock } });
    const row = await screen.findByTestId('conflict-row');
    expect(row.dataset.field).toBe('guardian.phone');
    expect(row.textContent).toContain('赵小雨');
    expect(row.textContent).toContain('监护人电话');
    expect(within(row).getByTestId('conflict-current-value').textContent).toBe('13900002222');
    expect(within(row).getByTestId('conflict-other-value').textContent).toBe('13700003333');
    expect(row.textContent).toContain('本机的值');
    expect(row.textContent).toContain('服务器的值');
    // An unknown user is named by their device.
    expect(row.textContent).toContain('设备 bbbb2222 上的用户');
    expect(within(row).getByTestId('conflict-open-record').textContent).toBe('打开记录');
    await fireEvent.click(within(row).getByTestId('conflict-keep-server'));
    await waitFor(() => expect(mock.resolutions).toEqual([{ id: 'c1', choice: 'keep_other', merged: null }]));
    expect(await screen.findByTestId('conflicts-none')).toBeTruthy();
  });

  it('keeps this computer’s value when it is the one that lost on the server', async () => {
    const mock = createMockBridge({ conflicts: [conflict('c1', 'notes', '服务器写的', '本机写的', 'other')] });
    render(Conflicts, { props: { bridge: mock } });
    await fireEvent.click(await screen.findByTestId('conflict-open-record'));
    expect(nav.screen).toBe('child');
    expect(nav.params).toEqual({ id: 'child-1' });
    await fireEvent.click(await screen.findByTestId('conflict-keep-local'));
    await waitFor(() => expect(mock.resolutions[0]?.choice).toBe('keep_other'));
  });

  it('refuses an empty merged value in Chinese, then sends a typed number as a number', async () => {
    const mock = createMockBridge({ conflicts: [conflict('c2', 'guardian.age', null, 66)] });
    render(Conflicts, { props: { bridge: mock } });
    const row = await screen.findByTestId('conflict-row');
    await fireEvent.click(within(row).getByTestId('conflict-use-merged'));
    expect((await screen.findByTestId('conflict-merged-error')).textContent).toContain('合并');
    expect(mock.resolutions).toEqual([]);
    await fireEvent.input(within(row).getByTestId('conflict-merged'), { target: { value: '67' } });
    expect(screen.queryByTestId('conflict-merged-error')).toBeNull();
    await fireEvent.click(within(row).getByTestId('conflict-use-merged'));
    await waitFor(() => expect(mock.resolutions).toEqual([{ id: 'c2', choice: 'merged', merged: 67 }]));
  });

  it('shows enum values, yes/no and dates in words, and a parent’s field with whose it is', async () => {
    const mock = createMockBridge({
      conflicts: [conflict('c3', 'guardian.relation', 'grandparent', 'entrusted'), conflict('c4', 'father.phone', '13800001111', null)],
    });
    render(Conflicts, { props: { bridge: mock } });
    const rows = await screen.findAllByTestId('conflict-row');
    expect(rows[0].textContent).toContain('祖父母');
    expect(rows[0].textContent).toContain('受委托人');
    expect(rows[0].textContent).not.toContain('grandparent');
    expect(rows[1].textContent).toContain('父亲 · 电话');
    expect(within(rows[1]).getByTestId('conflict-other-value').textContent).toBe('—');
  });
});

describe('conflict values', () => {
  const c = (field: string) => ({ entity: 'child', field });
  it('labels and values', () => {
    expect(conflictFieldLabel(c('notes'))).toBe('备注');
    expect(conflictFieldLabel(c('no.such'))).toBe('no.such');
    expect(conflictValueText(c('boarding'), true)).toBe('是');
    expect(conflictValueText(c('birth_date'), '2015-06-01')).toBe('2015年6月1日');
    expect(conflictValueText(c('dropout_risks'), ['school_weary'])).not.toContain('school_weary');
  });
  it('merged values keep the field’s type', () => {
    expect(mergedValue({ current_value: 'a', other_value: 'b' }, '12')).toBe('12');
    expect(mergedValue({ current_value: 3, other_value: null }, '4')).toBe(4);
    expect(mergedValue({ current_value: '138', other_value: null }, '  ')).toBeNull();
    expect(mergedValue({ current_value: ['a'], other_value: ['b'] }, '["a","b"]')).toEqual(['a', 'b']);
  });
});
