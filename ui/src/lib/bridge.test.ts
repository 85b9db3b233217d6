import { describe, expect, it } from 'vitest';
import { mockIPC } from '@tauri-apps/api/mocks';
import { bridge, BridgeError } from './bridge';

describe('bridge (through the Tauri IPC mock)', () => {
  it('calls app_info', async () => {
    const seen: string[] = [];
    mockIPC((cmd) => {
      seen.push(cmd);
      if (cmd === 'app_info') return { name: 'shouhu', version: '9.8.7' };
      throw new Error(`unexpected command ${cmd}`);
    });
    await expect(bridge.appInfo()).resolves.toEqual({ name: 'shouhu', version: '9.8.7' });
    expect(seen).toEqual(['app_info']);
  });

  it('sends command arguments in the shape the Rust commands take', async () => {
    const seen: [string, unknown][] = [];
    mockIPC((cmd, args) => {
      seen.push([cmd, args]);
      return cmd === 'save_child' ? 'new-id' : [];
    });
    await bridge.saveChild(null, { name: '张三' });
    await bridge.searchChildren({ query: 'zs', offset: 0, limit: 50 });
    await bridge.setSetting('language', 'en');
    expect(seen[0]).toEqual(['save_child', { req: { id: null, card: { name: '张三' } } }]);
    expect(seen[1]).toEqual(['search_children', { params: { query: 'zs', offset: 0, limit: 50 } }]);
    expect(seen[2]).toEqual(['set_setting', { change: { key: 'language', value: 'en' } }]);
  });

  it('turns backend errors into BridgeError with code, details and field problems', async () => {
    mockIPC(() => {
      throw {
        code: 'field.required',
        message: '姓名不能为空，请填写',
        details: { errors: [{ code: 'field.required', message: '姓名不能为空，请填写', details: { field: 'name' } }] },
      };
    });
    const error = await bridge.saveChild(null, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BridgeError);
    expect((error as BridgeError).code).toBe('field.required');
    expect((error as BridgeError).fieldProblems()).toEqual([
      { field: 'name', code: 'field.required', message: '姓名不能为空，请填写' },
    ]);
  });

  it('reports a missing desktop shell as bridge_unavailable', async () => {
    const error = await bridge.appInfo().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'bridge_unavailable' });
  });
});
