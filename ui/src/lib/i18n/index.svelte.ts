/**
 * Tiny i18n store. `t(key, params)` reads the current locale (a rune), so
 * templates that call it re-render when the language changes.
 */
import zhCN, { type Catalog, type MessageKey } from './zh-CN';
import en from './en';

export type { MessageKey } from './zh-CN';

export const LOCALES = ['zh-CN', 'en'] as const;
export type Locale = (typeof LOCALES)[number];
export const DEFAULT_LOCALE: Locale = 'zh-CN';

export const catalogs: Record<Locale, Catalog> = { 'zh-CN': zhCN, en };

const STORAGE_KEY = 'shouhu.locale';

function isLocale(value: unknown): value is Locale {
  return typeof value === 'string' && (LOCALES as readonly string[]).includes(value);
}

function storedLocale(): Locale {
  try {
    const value = globalThis.localStorage?.getItem(STORAGE_KEY);
    return isLocale(value) ? value : DEFAULT_LOCALE;
  } catch {
    return DEFAULT_LOCALE;
  }
}

let current = $state<Locale>(storedLocale());

export function getLocale(): Locale {
  return current;
}

export function setLocale(locale: Locale): void {
  current = locale;
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, locale);
  } catch {
    // storage unavailable: the choice lasts for this session only
  }
  if (typeof document !== 'undefined') document.documentElement.lang = locale;
}

/** Re-reads the stored choice (app start, tests). */
export function resetLocale(): void {
  setLocale(storedLocale());
}

export function hasKey(key: string): key is MessageKey {
  return Object.prototype.hasOwnProperty.call(zhCN, key);
}

/** Translates `key`, filling `{name}` placeholders from `params`. */
export function t(key: MessageKey, params: Record<string, string | number> = {}): string {
  const template = catalogs[current][key] ?? zhCN[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (match, name: string) =>
    name in params ? String(params[name]) : match,
  );
}

/**
 * Message for a backend error code, falling back to the backend's own text;
 * `params` fill the message's placeholders (`{secs}` of `auth.locked_out`).
 */
export function errorMessage(code: string, fallback: string, params: Record<string, string | number> = {}): string {
  const key = `error.${code}`;
  return hasKey(key) ? t(key, params) : fallback || t('error.internal');
}
