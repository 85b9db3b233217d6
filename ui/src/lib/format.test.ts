import { describe, expect, it } from 'vitest';
import { formatDate, maskId, maskPhone, parseDate } from './format';

describe('format', () => {
  it('shows dates the Chinese way', () => {
    expect(formatDate('2026-11-28')).toBe('2026年11月28日');
    expect(formatDate('2026-01-05T03:00:00Z')).toBe('2026年1月5日');
    expect(formatDate('2026-11-28', 'en')).toBe('2026-11-28');
    expect(formatDate(null)).toBe('');
  });

  it('reads dates as people type them', () => {
    for (const s of ['2015-03-07', '2015/3/7', '2015.3.7', '20150307', '2015年3月7日', '２０１５-０３-０７']) {
      expect(parseDate(s), s).toBe('2015-03-07');
    }
    expect(parseDate('')).toBeNull();
    expect(parseDate('2015-02-30')).toBeUndefined();
    expect(parseDate('明天')).toBeUndefined();
  });

  it('masks ID numbers and phones in lists', () => {
    expect(maskId('520502201503070036')).toBe('5205**********0036');
    expect(maskId('5205**********0036')).toBe('5205**********0036');
    expect(maskPhone('13812345678')).toBe('138****5678');
    expect(maskPhone('0851-82345678')).toBe('0851-****5678');
  });
});
