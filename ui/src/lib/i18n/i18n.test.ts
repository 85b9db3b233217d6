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
    expect(errorMessage('child.id_number_invalid', 'bad')).toBe('身份证号第18位校验码不正确，请核对。');
    expect(errorMessage('no.such_code', 'backend text')).toBe('backend text');
  });
});
