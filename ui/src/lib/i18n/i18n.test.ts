import { beforeEach, describe, expect, it } from 'vitest';
import { errorMessage, getLocale, resetLocale, setLocale, t } from './index.svelte';

describe('t()', () => {
  beforeEach(() => resetLocale());

  it('defaults to zh-CN and fills placeholders', () => {
    expect(getLocale()).toBe('zh-CN');
    expect(t('app.title')).toBe('守护');
    expect(t('app.version', { version: '1.2.3' })).toBe('版本 1.2.3');
  });

  it('switches language and remembers the choice', () => {
    setLocale('en');
    expect(t('app.version', { version: '1.2.3' })).toBe('Version 1.2.3');
    expect(localStorage.getItem('shouhu.locale')).toBe('en');
    expect(document.documentElement.lang).toBe('en');
    setLocale('zh-CN');
    resetLocale();
    expect(getLocale()).toBe('zh-CN');
  });

  it('maps backend error codes to catalog messages', () => {
    expect(errorMessage('visit.finalised', 'x')).toBe('家访记录已定稿，不能直接修改，请添加更正记录');
    expect(errorMessage('sync.network', 'x')).toContain('连接不上服务器');
    expect(errorMessage('no.such_code', 'backend text')).toBe('backend text');
  });
});
