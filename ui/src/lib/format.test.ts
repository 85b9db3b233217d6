import { describe, expect, it } from 'vitest';
import { fingerprintDigits, formatDate, maskId, maskPhone, parseDate } from './format';

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

  it('reads a certificate fingerprint as the Rust side does', () => {
    const full = '96:71:A0:10:E9:95:3B:B0:26:74:DF:70:C9:85:61:EC:93:3B:F7:2B:D7:50:77:CE:AF:0E:26:35:52:70:D9:82';
    const hex = full.replaceAll(':', '').toLowerCase();
    expect(fingerprintDigits(full)).toBe(hex);
    expect(fingerprintDigits(`SHA256:${hex.toUpperCase()}`)).toBe(hex);
    expect(fingerprintDigits('96:71:A0:10 E9:95:3B:B0')).toBe(hex.slice(0, 16));
    // Typed with a Chinese input method: full-width colons and letters.
    expect(fingerprintDigits('96：71：Ａ0：10：E9：95：3B：B0')).toBe(hex.slice(0, 16));
    expect(fingerprintDigits('96:71:A0:10:E9:95:3B')).toBeNull();
    expect(fingerprintDigits(`${hex}00`)).toBeNull();
    expect(fingerprintDigits('96:71:A0:10:E9:95:3B:BG')).toBeNull();
    expect(fingerprintDigits('')).toBeNull();
  });
});
