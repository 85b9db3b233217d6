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

  it('turns backend errors into BridgeError with code and details', async () => {
    mockIPC(() => {
      throw { code: 'child.id_number_invalid', message: 'bad check digit', details: { field: 'idNumber' } };
    });
    const error = await bridge.appInfo().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BridgeError);
    expect(error).toMatchObject({ code: 'child.id_number_invalid', details: { field: 'idNumber' } });
  });

  it('reports a missing desktop shell as bridge_unavailable', async () => {
    const error = await bridge.appInfo().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'bridge_unavailable' });
  });
});
