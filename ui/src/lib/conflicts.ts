/**
 * How a sync conflict is shown and settled: the changed field's label and
 * values in the user's words (enum labels, 是/否, dates), and the merged
 * value typed by the user turned into the field's type.
 */
import type { ConflictView } from './bridge';
import { CHILD_GROUPS, enumLabel, type FieldSpec } from './model';
import { formatDate } from './format';
import { hasKey, t } from './i18n/index.svelte';

const CHILD_FIELDS: FieldSpec[] = CHILD_GROUPS.flatMap((g) => [...g.fields, ...(g.sub ?? []).flatMap((s) => s.fields)]);

/** The child card's field spec for a dotted path (`father.phone`, `guardian.relation`). */
export function childField(path: string): FieldSpec | undefined {
  return CHILD_FIELDS.find((f) => f.path === path);
}

/** The label of the conflicting field, by the record's kind; the path itself when unknown. */
export function conflictFieldLabel(c: Pick<ConflictView, 'entity' | 'field'>): string {
  if (!c.field) return '';
  const spec = c.entity === 'child' || c.entity === null ? childField(c.field) : undefined;
  const keys = [
    spec?.label ?? '',
    `field.${c.entity === 'home_visit' ? 'visit' : (c.entity ?? 'child')}.${c.field}`,
    `field.child.${c.field}`,
  ];
  const key = keys.find((k) => k !== '' && hasKey(k));
  if (!key) return c.field;
  // 父亲 · 电话: a parent's fields share their labels.
  const who = /^(father|mother)\./.exec(c.field)?.[1];
  return who && spec ? `${t(who === 'father' ? 'child.father' : 'child.mother')} · ${t(key)}` : t(key);
}

/** A value of the child card's field `path` as people read it (enum labels, 是/否, dates). */
export function childValueText(path: string | null, v: unknown, locale = 'zh-CN'): string {
  if (v === null || v === undefined || v === '') return '—';
  const spec = path ? childField(path) : undefined;
  if (typeof v === 'boolean') return t(v ? 'common.yes' : 'common.no');
  if (spec?.enumName) {
    if (Array.isArray(v)) return v.length ? v.map((x) => enumLabel(spec.enumName as string, String(x))).join('、') : '—';
    if (typeof v === 'string') return enumLabel(spec.enumName, v);
  }
  if (spec?.kind === 'date' && typeof v === 'string') return formatDate(v, locale);
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v.length ? v.join('、') : '—';
  return JSON.stringify(v);
}

/** A conflicting value as people read it. */
export function conflictValueText(c: Pick<ConflictView, 'entity' | 'field'>, v: unknown, locale = 'zh-CN'): string {
  const isChild = c.entity === 'child' || c.entity === null;
  return childValueText(isChild ? c.field : null, v, locale);
}

/**
 * The merged value to send for what was typed: text for a text field (either
 * side a string), else the typed JSON (a number, a list) when it parses, else
 * the text. An empty text clears a field that may be empty (either side null).
 */
export function mergedValue(c: Pick<ConflictView, 'current_value' | 'other_value'>, text: string): unknown {
  const sides = [c.current_value, c.other_value];
  const nullable = sides.some((v) => v === null || v === undefined);
  if (text.trim() === '' && nullable) return null;
  if (sides.some((v) => typeof v === 'string')) return text;
  if (sides.every((v) => v === null || v === undefined)) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
