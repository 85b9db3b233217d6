import { describe, expect, it } from 'vitest';
import zhCN from './zh-CN';
import en from './en';
import { catalogs, LOCALES } from './index.svelte';

const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('message catalogs', () => {
  const sourceKeys = Object.keys(zhCN);

  it('zh-CN (the source) has semantic keys and no empty value', () => {
    expect(sourceKeys.length).toBeGreaterThan(10);
    for (const key of sourceKeys) {
      expect(key).toMatch(/^[a-z]+(\.[a-zA-Z0-9_-]+)+$/);
      expect(zhCN[key as keyof typeof zhCN].trim(), key).not.toBe('');
    }
  });

  it('en has every zh-CN key, no extra key and no empty value', () => {
    expect(Object.keys(en).sort()).toEqual([...sourceKeys].sort());
    for (const [key, value] of Object.entries(en)) {
      expect(value.trim(), key).not.toBe('');
    }
  });

  it('every locale keeps the placeholders of the source', () => {
    for (const locale of LOCALES) {
      for (const key of sourceKeys) {
        const k = key as keyof typeof zhCN;
        expect(placeholders(catalogs[locale][k]), `${locale} ${key}`).toEqual(placeholders(zhCN[k]));
      }
    }
  });
});
