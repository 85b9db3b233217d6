/**
 * The shapes of the core model the forms edit: enum values (labels come from
 * the catalog, `enum.<name>.<value>`), the child card's fields grouped as on
 * the paper registration form, and path helpers. Rules (what is valid) live
 * in Rust and are asked for through `validate_*` commands.
 */
import { t, hasKey } from './i18n/index.svelte';
import type { Kind } from '../components/Field.svelte';

export const ENUMS = {
  gender: ['male', 'female'],
  health_status: ['healthy', 'disabled', 'ill'],
  disability_category: ['visual', 'hearing', 'speech', 'physical', 'intellectual', 'mental', 'multiple'],
  schooling_stage: [
    'kindergarten',
    'not_in_kindergarten',
    'primary',
    'junior',
    'senior',
    'vocational',
    'dropped_out',
    'not_in_school',
  ],
  left_behind_type: [
    'both_away',
    'father_away',
    'mother_away',
    'father_away_mother_unable',
    'mother_away_father_unable',
  ],
  guardian_relation: ['grandparent', 'other_relative', 'entrusted', 'none'],
  grandparent_relation: ['paternal_grandfather', 'paternal_grandmother', 'maternal_grandfather', 'maternal_grandmother'],
  guardianship_type: ['unattended', 'parent_incapable', 'guardian_insufficient', 'fair', 'good'],
  income_source: ['migrant_work', 'farming', 'livestock', 'business', 'subsidy', 'other'],
  assistance: ['dibao', 'temporary', 'medical', 'housing', 'other'],
  dropout_risk: ['learning_difficulty', 'school_weary', 'family_hardship', 'other'],
  child_status: ['active', 'parents_returned', 'graduated', 'transferred', 'dropped_out', 'aged_out'],
  visit_mode: ['home', 'phone', 'video', 'at_school'],
  hazard: ['electric_wiring', 'water_nearby', 'fire', 'traffic', 'building', 'other'],
  measure_kind: ['tutoring', 'counseling', 'aid', 'guardian_training', 'family_contact', 'other'],
  session_kind: ['individual', 'group', 'crisis'],
  risk_level: ['low', 'medium', 'high', 'crisis'],
  safety_alert: ['none', 'watch', 'urgent'],
  aid_kind: ['cash', 'goods', 'boarding_subsidy', 'other'],
  absence_reason: ['sick', 'personal', 'unexcused', 'other'],
  dropout_reason: ['school_weary', 'learning_difficulty', 'family_hardship', 'went_to_work', 'illness', 'marriage', 'other'],
  persuasion_outcome: ['returned', 'promised', 'refused', 'other'],
  contact_mode: ['phone', 'video'],
  contact_with: ['father', 'mother', 'both', 'other'],
  safety_topic: ['drowning', 'fire_electricity', 'traffic', 'food', 'disease', 'strangers', 'other'],
  screening_outcome: ['added', 'confirmed', 'removed'],
} as const;

export type EnumName = keyof typeof ENUMS;

/** The label of an enum value in the current language. */
export function enumLabel(name: EnumName | string, value: string | null | undefined): string {
  if (!value) return '';
  const key = `enum.${name}.${value}`;
  return hasKey(key) ? t(key) : value;
}

export function enumOptions(name: EnumName): { value: string; label: string }[] {
  return ENUMS[name].map((v) => ({ value: v, label: enumLabel(name, v) }));
}

/** The 56 ethnic groups (GB/T 3304), as written on forms. */
export const ETHNICITIES = [
  '汉族', '蒙古族', '回族', '藏族', '维吾尔族', '苗族', '彝族', '壮族', '布依族', '朝鲜族', '满族', '侗族', '瑶族', '白族',
  '土家族', '哈尼族', '哈萨克族', '傣族', '黎族', '傈僳族', '佤族', '畲族', '高山族', '拉祜族', '水族', '东乡族', '纳西族',
  '景颇族', '柯尔克孜族', '土族', '达斡尔族', '仫佬族', '羌族', '布朗族', '撒拉族', '毛南族', '仡佬族', '锡伯族', '阿昌族',
  '普米族', '塔吉克族', '怒族', '乌孜别克族', '俄罗斯族', '鄂温克族', '德昂族', '保安族', '裕固族', '京族', '塔塔尔族',
  '独龙族', '鄂伦春族', '赫哲族', '门巴族', '珞巴族', '基诺族',
];

export function getPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.split('.')) {
    if (cur === null || cur === undefined || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

export function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur: Record<string, unknown> = obj;
  for (const part of parts.slice(0, -1)) {
    if (typeof cur[part] !== 'object' || cur[part] === null) cur[part] = {};
    cur = cur[part] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]] = value;
}

export interface FieldSpec {
  path: string;
  kind: Kind;
  /** Catalog key of the label (defaults to `field.child.<path>`). */
  label?: string;
  enumName?: EnumName;
  nullable?: boolean;
  wide?: boolean;
  /** Special option sources filled by the form. */
  source?: 'schools' | 'ethnicities' | 'households';
}

const parent = (who: 'father' | 'mother'): FieldSpec[] => [
  { path: `${who}.name`, kind: 'text', label: 'field.child.parent.name' },
  { path: `${who}.phone`, kind: 'text', nullable: true, label: 'field.child.parent.phone' },
  { path: `${who}.id_number`, kind: 'text', nullable: true, label: 'field.child.parent.id_number' },
  { path: `${who}.birth_date`, kind: 'date', nullable: true, label: 'field.child.parent.birth_date' },
  { path: `${who}.work_province`, kind: 'text', label: 'field.child.parent.work_province' },
  { path: `${who}.work_city`, kind: 'text', label: 'field.child.parent.work_city' },
  { path: `${who}.contact_frequency`, kind: 'text', nullable: true, label: 'field.child.parent.contact_frequency' },
  { path: `${who}.deceased`, kind: 'check', label: 'field.child.parent.deceased' },
];

/** The card's fields, grouped as on the paper registration form. */
export const CHILD_GROUPS: { key: string; fields: FieldSpec[]; sub?: { key: string; fields: FieldSpec[] }[] }[] = [
  {
    key: 'child.group.basic',
    fields: [
      { path: 'name', kind: 'text' },
      { path: 'gender', kind: 'select', enumName: 'gender', nullable: true },
      { path: 'ethnicity', kind: 'select', source: 'ethnicities', nullable: true },
      { path: 'birth_date', kind: 'date', nullable: true },
      { path: 'id_number', kind: 'text', nullable: true },
      { path: 'hukou_registered', kind: 'check' },
      { path: 'registered_address', kind: 'text', wide: true },
      { path: 'current_address.county', kind: 'text' },
      { path: 'current_address.township', kind: 'text' },
      { path: 'current_address.village', kind: 'text' },
      { path: 'current_address.group', kind: 'text' },
      { path: 'current_address.detail', kind: 'text' },
      { path: 'health.status', kind: 'select', enumName: 'health_status' },
      { path: 'health.disability_category', kind: 'select', enumName: 'disability_category', nullable: true },
      { path: 'health.disability_grade', kind: 'number' },
      { path: 'health.illness', kind: 'text', nullable: true },
    ],
  },
  {
    key: 'child.group.schooling',
    fields: [
      { path: 'school_id', kind: 'select', source: 'schools', nullable: true },
      { path: 'schooling_stage', kind: 'select', enumName: 'schooling_stage' },
      { path: 'grade', kind: 'text' },
      { path: 'class_name', kind: 'text' },
      { path: 'student_number', kind: 'text' },
      { path: 'boarding', kind: 'check' },
      { path: 'dropout_risks', kind: 'multi', enumName: 'dropout_risk', wide: true },
    ],
  },
  {
    key: 'child.group.family',
    fields: [
      { path: 'left_behind_type', kind: 'select', enumName: 'left_behind_type' },
      { path: 'household_id', kind: 'select', source: 'households', nullable: true },
      { path: 'family_income_sources', kind: 'multi', enumName: 'income_source', wide: true },
    ],
    sub: [
      { key: 'child.father', fields: parent('father') },
      { key: 'child.mother', fields: parent('mother') },
    ],
  },
  {
    key: 'child.group.guardianship',
    fields: [
      { path: 'guardian.name', kind: 'text' },
      { path: 'guardian.relation', kind: 'select', enumName: 'guardian_relation' },
      { path: 'guardian.phone', kind: 'text', nullable: true },
      { path: 'guardian.id_number', kind: 'text', nullable: true },
      { path: 'guardian.age', kind: 'number' },
      { path: 'guardian.health', kind: 'text', nullable: true },
      { path: 'guardian.address', kind: 'text', wide: true },
      { path: 'guardianship_type', kind: 'select', enumName: 'guardianship_type' },
    ],
  },
  {
    key: 'child.group.support',
    fields: [
      { path: 'assistance', kind: 'multi', enumName: 'assistance', wide: true },
      { path: 'poverty_registered', kind: 'check' },
      { path: 'pairing_teacher', kind: 'text' },
      { path: 'pairing_teacher_phone', kind: 'text', nullable: true },
      { path: 'status', kind: 'select', enumName: 'child_status' },
      { path: 'status_date', kind: 'date', nullable: true },
      { path: 'status_reason', kind: 'text', nullable: true },
      { path: 'notes', kind: 'textarea', wide: true },
    ],
  },
];

/** A new, empty card with the core model's defaults. */
export function emptyCard(schoolId: string | null): Record<string, unknown> {
  const parentBody = () => ({
    name: '',
    birth_date: null,
    id_number: null,
    work_province: '',
    work_city: '',
    phone: null,
    deceased: false,
    contact_frequency: null,
  });
  return {
    name: '',
    gender: null,
    ethnicity: '',
    birth_date: null,
    id_number: null,
    hukou_registered: true,
    registered_address: '',
    current_address: { county: '', township: '', village: '', group: '', detail: '' },
    health: { status: 'healthy', disability_category: null, disability_grade: null, illness: null },
    boarding: false,
    schooling_stage: 'primary',
    school_id: schoolId,
    grade: '',
    class_name: '',
    student_number: '',
    dropout_risks: [],
    household_id: null,
    father: parentBody(),
    mother: parentBody(),
    grandparents: [],
    left_behind_type: 'both_away',
    family_income_sources: [],
    guardian: {
      name: '',
      relation: 'grandparent',
      phone: null,
      id_number: null,
      address: '',
      age: null,
      health: null,
    },
    guardianship_type: 'fair',
    assistance: [],
    poverty_registered: false,
    pairing_teacher: '',
    pairing_teacher_phone: null,
    status: 'active',
    status_date: null,
    status_reason: null,
    notes: '',
    counseling: { active: false, since: null, alert: 'none', alert_text: '' },
  };
}

/** Enter moves to the next field of the form (not in a textarea or on a button). */
export function enterToNext(e: KeyboardEvent, form: HTMLElement | null): void {
  if (e.key !== 'Enter' || e.isComposing || !form) return;
  const target = e.target as HTMLElement;
  if (target.tagName === 'TEXTAREA' || target.tagName === 'BUTTON') return;
  if (!(target.tagName === 'INPUT' || target.tagName === 'SELECT')) return;
  const focusable = [...form.querySelectorAll<HTMLElement>('input, select, textarea, button')].filter(
    (el) => !(el as HTMLInputElement).disabled && el.offsetParent !== null,
  );
  const i = focusable.indexOf(target);
  if (i >= 0 && i + 1 < focusable.length) {
    e.preventDefault();
    focusable[i + 1].focus();
  }
}
