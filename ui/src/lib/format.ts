/** Display helpers: dates as 2026年11月28日, masked ID numbers and phones. */

const ISO = /^(\d{4})-(\d{2})-(\d{2})/;

/** `2026-11-28` (or an RFC 3339 instant) → `2026年11月28日` / `2026-11-28` (en). */
export function formatDate(value: string | null | undefined, locale: string = 'zh-CN'): string {
  if (!value) return '';
  const m = ISO.exec(value);
  if (!m) return value;
  if (locale !== 'zh-CN') return `${m[1]}-${m[2]}-${m[3]}`;
  return `${m[1]}年${Number(m[2])}月${Number(m[3])}日`;
}

/** An instant in local time: `2026年11月28日 14:05`. */
export function formatInstant(value: string | null | undefined, locale: string = 'zh-CN'): string {
  if (!value) return '';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return value;
  const pad = (n: number) => String(n).padStart(2, '0');
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return `${formatDate(day, locale)} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * What people type as a date → `YYYY-MM-DD`, or `null` when empty.
 * Accepts 2015-03-07, 2015/3/7, 2015.3.7, 20150307 and 2015年3月7日.
 * Returns `undefined` when the text is not a real date.
 */
export function parseDate(text: string): string | null | undefined {
  const s = text.trim().replace(/[０-９]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0));
  if (s === '') return null;
  let m = /^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$/.exec(s);
  if (!m) m = /^(\d{4})(\d{2})(\d{2})$/.exec(s);
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return undefined;
  return `${m[1]}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

/** `520502201503070036` → `5205**********0036` (lists never show an ID whole). */
export function maskId(id: string | null | undefined): string {
  if (!id) return '';
  if (id.includes('*')) return id;
  if (id.length <= 8) return '*'.repeat(id.length);
  return id.slice(0, 4) + '*'.repeat(id.length - 8) + id.slice(-4);
}

/** `13812345678` → `138****5678`; landlines keep area code and last 4. */
export function maskPhone(phone: string | null | undefined): string {
  if (!phone) return '';
  const digits = phone.replace(/\s/g, '');
  if (/^1\d{10}$/.test(digits)) return `${digits.slice(0, 3)}****${digits.slice(7)}`;
  if (digits.length <= 4) return '*'.repeat(digits.length);
  const dash = digits.indexOf('-');
  const head = dash > 0 ? digits.slice(0, dash + 1) : '';
  const rest = digits.slice(head.length);
  return head + '*'.repeat(Math.max(0, rest.length - 4)) + rest.slice(-4);
}

/** Bytes for people: 1.2 MB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * The hex digits of a typed certificate fingerprint (lower case), or null when
 * it cannot be one: the same reading as the Rust side (`shouhu_tls::Pin`) —
 * separators (`:`, `-`, spaces), case, full-width forms and a `SHA256:` label
 * do not matter; all 64 digits, or at least the first 16.
 */
export function fingerprintDigits(text: string): string | null {
  let s = [...text]
    .map((c) => {
      const code = c.codePointAt(0) ?? 0;
      if (code >= 0xff01 && code <= 0xff5e) return String.fromCodePoint(code - 0xfee0);
      if (code === 0x3000) return ' ';
      return c;
    })
    .join('')
    .trim();
  s = s.replace(/^sha-?256:?/i, '');
  const hex = s.replace(/[:\-\s]/g, '').toLowerCase();
  if (!/^[0-9a-f]*$/.test(hex) || hex.length < 16 || hex.length > 64) return null;
  return hex;
}
