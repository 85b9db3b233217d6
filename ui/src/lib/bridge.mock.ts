/**
 * In-memory twin of `bridge.ts` for tests and UI work without the Rust side.
 * Same `Bridge` interface; nothing here touches Tauri. Its few checks only
 * imitate the Rust validator's shape (`{field, code, message}`) so screens can
 * be tested; the real rules live in Rust.
 */
import {
  BridgeError,
  type AppErrorPayload,
  type AppInfo,
  type Bridge,
  type ChildCard,
  type ChildSummary,
  type FieldProblem,
  type FollowUp,
  type HomeVisit,
  type Settings,
  type Stored,
  type StoreSummary,
  type SyncStatus,
} from './bridge';

export interface MockBridgeOptions {
  appInfo?: AppInfo;
  storeSummary?: StoreSummary;
  settings?: Partial<Settings>;
  /** Children already in the mock store. */
  children?: { id?: string; card: ChildCard }[];
  demoOffer?: boolean;
  /** Make a command fail with this backend error. */
  failWith?: Partial<Record<keyof Bridge, AppErrorPayload>>;
}

export const MOCK_APP_INFO: AppInfo = { name: '守护 Shouhu', version: '0.0.0-mock' };
export const MOCK_SUMMARY: StoreSummary = {
  schools: 8,
  children: 600,
  households: 420,
  home_visits: 1800,
  pending_changes: 12,
};

let counter = 0;
function newId(): string {
  counter += 1;
  return `00000000-0000-7000-8000-${String(counter).padStart(12, '0')}`;
}

function now(): string {
  return new Date().toISOString();
}

function meta(id: string) {
  const at = now();
  return { id, created_at: at, updated_at: at, created_by: 'me', updated_by: 'me' };
}

/** A few of the Rust rules, enough for screens to show messages under fields. */
export function mockValidateChild(card: ChildCard): FieldProblem[] {
  const out: FieldProblem[] = [];
  const need = (field: string, label: string) =>
    out.push({ field, code: 'field.required', message: `${label}不能为空，请填写` });
  if (!String(card.name ?? '').trim()) need('name', '姓名');
  if (!card.gender) need('gender', '性别');
  if (!card.birth_date) need('birth_date', '出生日期');
  const id = card.id_number as string | null | undefined;
  if (id && id.length !== 18) {
    out.push({ field: 'id_number', code: 'id_number.length', message: `身份证号应为18位，现在是${id.length}位，请核对` });
  }
  return out;
}

function invalid(problems: FieldProblem[]): BridgeError {
  return new BridgeError({
    code: problems[0]?.code ?? 'validation.failed',
    message: problems.map((p) => p.message).join('；'),
    details: { errors: problems.map((p) => ({ code: p.code, message: p.message, details: { field: p.field } })) },
  });
}

/** The mock plus `closeWindow()`, which runs what the UI registered for closing. */
export function createMockBridge(
  options: MockBridgeOptions = {},
): Bridge & { calls: string[]; closeWindow(): Promise<void> } {
  const calls: string[] = [];
  let settings: Settings = { language: 'zh-CN', text_size: 'normal', school_id: null, role: 'teacher', ...options.settings };
  const children = new Map<string, ChildCard>();
  for (const c of options.children ?? []) children.set(c.id ?? newId(), structuredClone(c.card));
  const visits = new Map<string, { visit: HomeVisit; updated_at: string }>();
  const followUps = new Map<string, Stored<FollowUp>>();
  let offer = options.demoOffer ?? false;
  let beforeClose: (() => Promise<void>) | null = null;

  const answer = async <T>(command: keyof Bridge, value: () => T): Promise<T> => {
    calls.push(command);
    const failure = options.failWith?.[command];
    if (failure) throw new BridgeError(failure);
    return structuredClone(value());
  };

  const summary = (id: string, c: ChildCard): ChildSummary => ({
    id,
    name: String(c.name ?? ''),
    gender: (c.gender as string) ?? null,
    birth_date: (c.birth_date as string) ?? null,
    id_number_masked: c.id_number ? String(c.id_number) : null,
    school_id: (c.school_id as string) ?? null,
    township: '',
    grade: String(c.grade ?? ''),
    class_name: String(c.class_name ?? ''),
    left_behind_type: String(c.left_behind_type ?? 'both_away'),
    guardianship_type: String(c.guardianship_type ?? 'fair'),
    status: String(c.status ?? 'active'),
  });

  const sync: SyncStatus = {
    enrolled: false,
    server_url: null,
    device_id: 'dev',
    device_name: null,
    server_fingerprint: null,
    pending: 0,
    pull_cursor: 0,
    last_sync: null,
  };

  return {
    calls,
    appInfo: () => answer('appInfo', () => options.appInfo ?? MOCK_APP_INFO),
    storeSummary: () => answer('storeSummary', () => options.storeSummary ?? MOCK_SUMMARY),
    getSettings: () => answer('getSettings', () => settings),
    setSetting: (key, value) =>
      answer('setSetting', () => {
        const allowed: Record<string, string[] | null> = {
          language: ['zh-CN', 'en'],
          text_size: ['normal', 'large'],
          role: ['teacher', 'counselor', 'principal'],
          school_id: null,
        };
        if (!(key in allowed) || (allowed[key] && !allowed[key]!.includes(value))) {
          throw new BridgeError({ code: 'input.invalid', message: 'invalid', details: { field: key, value } });
        }
        settings = { ...settings, [key]: key === 'school_id' ? value || null : value };
        return settings;
      }),
    listSchools: () => answer('listSchools', () => [{ id: 'school-1', name: '青山小学', township: '青山镇' }]),
    searchChildren: (p) =>
      answer('searchChildren', () => {
        const q = p.query.trim().toLowerCase();
        const all = [...children.entries()]
          .filter(([, c]) => !q || String(c.name).includes(q) || String(c.id_number ?? '').startsWith(q))
          .filter(([, c]) => !p.status || (c.status ?? 'active') === p.status)
          .map(([id, c]) => summary(id, c));
        return { total: all.length, offset: p.offset, items: all.slice(p.offset, p.offset + p.limit), query_kind: q ? 'name' : 'empty' };
      }),
    getChild: (id) =>
      answer('getChild', () => {
        const card = children.get(id);
        if (!card) throw new BridgeError({ code: 'record.not_found', message: 'not found', details: { id } });
        const rows = [...visits.entries()]
          .filter(([, v]) => v.visit.child_id === id)
          .map(([vid, v]) => ({
            id: vid,
            visit_date: (v.visit.visit_date as string) ?? null,
            status: (v.visit.status === 'finalised' ? 'final' : 'draft') as 'draft' | 'final',
            mode: String(v.visit.mode ?? 'home'),
            campaign: (v.visit.campaign as string) ?? null,
            summary: String(v.visit.living_conditions ?? '').slice(0, 40),
          }));
        return { id, card, created_at: now(), updated_at: now(), household_label: null, visits: rows, timeline: [] };
      }),
    validateChild: (card) => answer('validateChild', () => mockValidateChild(card)),
    saveChild: (id, card) =>
      answer('saveChild', () => {
        const problems = mockValidateChild(card);
        if (problems.length) throw invalid(problems);
        const key = id ?? newId();
        children.set(key, structuredClone(card));
        return key;
      }),
    saveVisitDraft: (id, visit) =>
      answer('saveVisitDraft', () => {
        if (id && visits.get(id)?.visit.status === 'finalised') {
          throw new BridgeError({ code: 'visit.finalised', message: 'finalised', details: { id } });
        }
        const key = id ?? newId();
        const updated_at = now();
        visits.set(key, { visit: { ...structuredClone(visit), status: 'draft', visit_date: visit.visit_date ?? updated_at.slice(0, 10) }, updated_at });
        return { id: key, updated_at };
      }),
    finaliseVisit: (id, visit) =>
      answer('finaliseVisit', () => {
        if (!Array.isArray(visit.visitors) || visit.visitors.length === 0) {
          throw invalid([{ field: 'visitors', code: 'field.required', message: '走访人员不能为空，请填写' }]);
        }
        const updated_at = now();
        visits.set(id, { visit: { ...structuredClone(visit), status: 'finalised' }, updated_at });
        return { id, updated_at };
      }),
    amendVisit: (visitId) => answer('amendVisit', () => `${visitId}-amendment`),
    getVisit: (id) =>
      answer('getVisit', () => {
        const v = visits.get(id);
        if (!v) throw new BridgeError({ code: 'record.not_found', message: 'not found', details: { id } });
        const childName = v.visit.child_id ? String(children.get(String(v.visit.child_id))?.name ?? '') : null;
        return {
          id,
          visit: v.visit,
          updated_at: v.updated_at,
          child_name: childName,
          amendments: [],
          follow_ups: [...followUps.values()].filter((f) => f.body.visit_id === id),
        };
      }),
    saveFollowUp: (id, f) =>
      answer('saveFollowUp', () => {
        const key = id ?? newId();
        followUps.set(key, { ...meta(key), body: structuredClone(f) });
        return key;
      }),
    listVisits: () => answer('listVisits', () => []),
    dashboard: (schoolId) =>
      answer('dashboard', () => ({
        school_id: schoolId,
        active_children: children.size,
        by_left_behind_type: { both_away: children.size },
        by_guardianship_type: { fair: children.size },
        visits_due: 0,
        visits_overdue: children.size,
        overdue_children: [],
        visit_drafts: [...visits.values()].filter((v) => v.visit.status === 'draft').length,
        follow_ups_due: 0,
        follow_ups_overdue: 0,
        follow_up_list: [],
        counseling_flags: [],
        safety_alerts: [],
        last_sync: null,
        pending_changes: 0,
      })),
    demoOffer: () => answer('demoOffer', () => offer),
    generateDemo: (onProgress) =>
      answer('generateDemo', () => {
        for (const done of [200, 400, 600]) onProgress({ children: done, children_total: 600, records: done * 5, fraction: done / 600 });
        offer = false;
        return { children: 600, records: 3000 };
      }),
    listHouseholds: () => answer('listHouseholds', () => []),
    getHousehold: (id) =>
      answer('getHousehold', () => ({ id, household: { label: '张家', head_name: '张建国' }, members: [], plans: [], versions: [] })),
    savePlan: () => answer('savePlan', () => newId()),
    listChildRecords: (_childId, kind) =>
      answer('listChildRecords', () => {
        if (kind === 'psych_note' && settings.role !== 'counselor') {
          throw new BridgeError({ code: 'auth.forbidden', message: 'forbidden', details: null });
        }
        return [];
      }),
    listSchoolRecords: () => answer('listSchoolRecords', () => []),
    saveRecord: () => answer('saveRecord', () => newId()),
    validateRecord: () => answer('validateRecord', () => []),
    screeningChecklist: () => answer('screeningChecklist', () => []),
    syncStatus: () => answer('syncStatus', () => sync),
    enroll: (serverUrl, _code, fingerprint) =>
      answer('enroll', () => {
        sync.enrolled = true;
        sync.server_url = serverUrl;
        // The Rust side pins the whole fingerprint of the certificate it was shown.
        sync.server_fingerprint = fingerprint.trim() ? fingerprint.trim().toUpperCase() : null;
        return sync;
      }),
    runSync: (onProgress) =>
      answer('runSync', () => {
        onProgress({ phase: 'push', done: 1, total: 2, bytes_sent: 300, bytes_received: 40, retry: null });
        onProgress({ phase: 'pull', done: 2, total: 2, bytes_sent: 300, bytes_received: 900, retry: null });
        sync.last_sync = now();
        return { pushed: 2, pulled: 5, conflicts: 0, fields_kept: 0, bytes_up: 300, bytes_down: 900, retries: 0, duration_ms: 1200 };
      }),
    listConflicts: () => answer('listConflicts', () => []),
    resolveConflict: () => answer('resolveConflict', () => undefined),
    onBeforeClose: async (save) => {
      beforeClose = save;
      return () => (beforeClose = null);
    },
    closeWindow: async () => {
      await beforeClose?.();
    },
  };
}
