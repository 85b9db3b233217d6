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
  type ConflictView,
  type CurrentUser,
  type RecordRow,
  type Role,
  type FieldProblem,
  type FollowUp,
  type HomeVisit,
  type Settings,
  type Stored,
  type StoreSummary,
  type SyncStatus,
  type XlsxImportReport,
} from './bridge';

export interface MockBridgeOptions {
  appInfo?: AppInfo;
  storeSummary?: StoreSummary;
  settings?: Partial<Settings>;
  /** Children already in the mock store. */
  children?: { id?: string; card: ChildCard }[];
  /** `runSync` keeps running until `cancelSync` (the cancel button's test). */
  syncWaitsForCancel?: boolean;
  /** What `listChildRecords` answers (by kind), e.g. a note sealed for others. */
  records?: RecordRow[];
  /**
   * The laptop's accounts. Default: one teacher `liming` (password
   * `qingshan2026`), logged in, so screens can be tested directly.
   */
  vault?: {
    state?: 'empty' | 'plain' | 'ready';
    users?: MockUser[];
    /** Who is logged in at start (null: the log-in screen). */
    loggedIn?: string | null;
    demo?: boolean;
  };
  /**
   * Excel: what the import answers (default: two children created), and
   * whether the file dialogs are cancelled (then both answer null).
   */
  excelImport?: XlsxImportReport;
  excelDialogCancelled?: boolean;
  /** The picked workbook is protected with this password. */
  excelImportPassword?: string;
  /** Make a command fail with this backend error. */
  failWith?: Partial<Record<keyof Bridge, AppErrorPayload>>;
  // uiconf: conflicts to review
  /** Open conflicts `listConflicts` answers; `resolveConflict` closes them. */
  conflicts?: ConflictView[];
  // uiconf: households editable, printable card
  /** Households already in the mock store, by id. */
  households?: Record<string, Record<string, unknown>>;
  /** Their versions (as a sync left them); an edit opened at another is refused. */
  householdVersions?: Record<string, number>;
}

export const MOCK_APP_INFO: AppInfo = { name: '守护 Shouhu', version: '0.0.0-mock' };
export const MOCK_SUMMARY: StoreSummary = {
  schools: 8,
  children: 600,
  households: 420,
  home_visits: 1800,
  pending_changes: 12,
};

export interface MockUser {
  login_name: string;
  display_name: string;
  role: Role;
  password: string;
  /** A county server user's initial password: asked to change it at log-in. */
  must_change?: boolean;
}

export const MOCK_TEACHER: MockUser = { login_name: 'liming', display_name: '李明', role: 'teacher', password: 'qingshan2026' };

/** The password rules of `shouhu_auth::password::check_new_password`. */
export function mockPasswordProblem(password: string, login: string): AppErrorPayload | null {
  const fail = (code: string, message: string) => ({ code, message, details: null });
  if ([...password].length < 8) return fail('auth.password_too_short', '密码至少需要8个字符');
  if (!/[0-9]/.test(password) || !/\p{L}/u.test(password)) return fail('auth.password_too_simple', '密码需同时包含字母和数字');
  if (password.trim().toLowerCase() === login.trim().toLowerCase()) return fail('auth.password_is_user_name', '密码不能与用户名相同');
  return null;
}

/** Commands that work without a logged-in session. */
const ACCOUNT_COMMANDS = new Set<string>(['appInfo', 'vaultState', 'setUp', 'useDemo', 'logIn', 'logOut', 'lock', 'onBeforeClose']);

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
): Bridge & {
  calls: string[];
  closeWindow(): Promise<void>;
  resolutions: { id: string; choice: string; merged: unknown }[];
  printed: string[];
} {
  const calls: string[] = [];
  // uiconf: conflicts to review
  let conflicts: ConflictView[] = structuredClone(options.conflicts ?? []);
  const resolutions: { id: string; choice: string; merged: unknown }[] = [];
  let settings: Settings = { language: 'zh-CN', text_size: 'normal', school_id: null, auto_lock_minutes: 10, demo: false, ...options.settings };
  let vaultState = options.vault?.state ?? 'ready';
  const users: MockUser[] = structuredClone(options.vault?.users ?? (vaultState === 'ready' ? [MOCK_TEACHER] : []));
  let demo = options.vault?.demo ?? false;
  const loggedIn = options.vault?.loggedIn === undefined ? (users[0]?.login_name ?? null) : options.vault.loggedIn;
  let current: MockUser | null = users.find((u) => u.login_name === loggedIn) ?? null;
  const failures = new Map<string, number>();
  const fail = (code: string, message: string, details: unknown = null) => new BridgeError({ code, message, details });
  const me = (u: MockUser): CurrentUser => ({
    user_id: `user-${u.login_name}`,
    login_name: u.login_name,
    display_name: u.display_name,
    role: u.role,
    scope: { kind: 'county' },
    reads_notes: u.role === 'counselor' || u.role === 'psych_supervisor',
    writes_records: u.role === 'teacher' || u.role === 'counselor' || u.role === 'principal',
    manages_users: u.role === 'principal' || u.role === 'county_admin',
    exports: u.role === 'principal' || u.role === 'township_staff' || u.role === 'county_admin',
    auto_lock_minutes: settings.auto_lock_minutes,
    must_change_password: u.must_change ?? false,
  });
  const checkNew = (password: string, again: string, login: string) => {
    if (password !== again) throw fail('auth.password_mismatch', '两次输入的密码不一致，请重新输入');
    const problem = mockPasswordProblem(password, login);
    if (problem) throw new BridgeError(problem);
  };
  const children = new Map<string, ChildCard>();
  for (const c of options.children ?? []) children.set(c.id ?? newId(), structuredClone(c.card));
  const visits = new Map<string, { visit: HomeVisit; updated_at: string }>();
  const records: RecordRow[] = structuredClone(options.records ?? []);
  const households = new Map<string, Record<string, unknown>>();
  // uiconf: households editable (a sync bumps a version), the print audit
  const householdVersions = new Map<string, number>(Object.entries(options.householdVersions ?? {}));
  for (const [hid, h] of Object.entries(options.households ?? {})) households.set(hid, structuredClone(h));
  const printed: string[] = [];
  let cancelRunning: (() => void) | null = null;
  const followUps = new Map<string, Stored<FollowUp>>();
  let beforeClose: (() => Promise<void>) | null = null;
  /** The Rust side keeps the picked workbook for a password retry. */
  let pendingImport = false;

  const answer = async <T>(command: keyof Bridge, value: () => T): Promise<T> => {
    calls.push(command);
    if (!current && !ACCOUNT_COMMANDS.has(command)) throw fail('auth.locked', '已锁定，请重新登录');
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
    resolutions,
    printed,
    appInfo: () => answer('appInfo', () => options.appInfo ?? MOCK_APP_INFO),
    storeSummary: () => answer('storeSummary', () => options.storeSummary ?? MOCK_SUMMARY),
    getSettings: () => answer('getSettings', () => settings),
    setSetting: (key, value) =>
      answer('setSetting', () => {
        const allowed: Record<string, string[] | null> = {
          language: ['zh-CN', 'en'],
          text_size: ['normal', 'large'],
          auto_lock_minutes: ['5', '10', '15', '30', '60'],
          school_id: null,
        };
        if (!(key in allowed) || (allowed[key] && !allowed[key]!.includes(value))) {
          throw new BridgeError({ code: 'input.invalid', message: 'invalid', details: { field: key, value } });
        }
        const v = key === 'school_id' ? value || null : key === 'auto_lock_minutes' ? Number(value) : value;
        settings = { ...settings, [key]: v };
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
        // As the API: only a counselor changes the counseling flag.
        const none = { active: false, since: null, alert: 'none', alert_text: '' };
        const before = JSON.stringify((id && children.get(id)?.counseling) || none);
        const after = JSON.stringify(card.counseling ?? none);
        if (before !== after && current?.role !== 'counselor') {
          throw fail('auth.forbidden', '您的角色无权进行此操作', { action: 'set the counseling flag' });
        }
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
    vaultState: () =>
      answer('vaultState', () => ({
        state: vaultState,
        users: users.map((u) => ({ login_name: u.login_name, display_name: u.display_name, role: u.role })),
        demo_password: vaultState === 'ready' && demo ? 'shouhu2026' : null,
        current: current ? me(current) : null,
      })),
    setUp: (req) =>
      answer('setUp', () => {
        if (vaultState === 'ready') throw fail('vault.already_set_up', '本机已完成初始设置');
        checkNew(req.password, req.password_again, req.login_name);
        const u: MockUser = { login_name: req.login_name.trim().toLowerCase(), display_name: req.display_name, role: req.role, password: req.password };
        users.push(u);
        vaultState = 'ready';
        current = u;
        return me(u);
      }),
    useDemo: (onProgress) =>
      answer('useDemo', () => {
        if (vaultState !== 'empty') throw fail('demo.store_not_empty', '已有数据，不能再生成演示数据');
        for (const done of [200, 400, 600]) onProgress({ children: done, children_total: 600, records: done * 5, fraction: done / 600 });
        const roles: [string, Role][] = [
          ['demo-admin', 'county_admin'],
          ['demo-teacher', 'teacher'],
          ['demo-counselor', 'counselor'],
          ['demo-principal', 'principal'],
          ['demo-township', 'township_staff'],
          ['demo-supervisor', 'psych_supervisor'],
        ];
        for (const [login, role] of roles) users.push({ login_name: login, display_name: `${login}（演示）`, role, password: 'shouhu2026' });
        vaultState = 'ready';
        demo = true;
        settings = { ...settings, demo: true };
        return { children: 600, records: 3000 };
      }),
    logIn: (login, password) =>
      answer('logIn', () => {
        if (vaultState !== 'ready') throw fail('vault.not_set_up', '本机尚未设置，请先创建第一个用户');
        current = null;
        const u = users.find((x) => x.login_name === login.trim().toLowerCase());
        const failed = u ? (failures.get(u.login_name) ?? 0) : 0;
        if (u && failed >= 3) throw fail('auth.locked_out', '登录失败次数过多，请5秒后再试', { retry_after_secs: 5 });
        if (!u || u.password !== password) {
          if (u) failures.set(u.login_name, failed + 1);
          throw fail('auth.wrong_password', '用户名或密码不正确');
        }
        failures.delete(u.login_name);
        current = u;
        return me(u);
      }),
    logOut: () => answer('logOut', () => void (current = null)),
    lock: () => answer('lock', () => void (current = null)),
    changePassword: (old, next, again) =>
      answer('changePassword', () => {
        const u = current!;
        if (u.password !== old) throw fail('auth.wrong_password', '用户名或密码不正确');
        checkNew(next, again, u.login_name);
        u.password = next;
        u.must_change = false;
      }),
    addUser: (req) =>
      answer('addUser', () => {
        if (!me(current!).manages_users) throw fail('auth.forbidden', '您的角色无权进行此操作');
        checkNew(req.password, req.password_again, req.login_name);
        const login = req.login_name.trim().toLowerCase();
        if (users.some((u) => u.login_name === login)) throw fail('vault.user_exists', `用户名“${login}”在本机已存在`, { login_name: login });
        users.push({ login_name: login, display_name: req.display_name, role: req.role, password: req.password });
      }),
    resetPassword: (login, password, again) =>
      answer('resetPassword', () => {
        if (!me(current!).manages_users) throw fail('auth.forbidden', '您的角色无权进行此操作');
        checkNew(password, again, login);
        const u = users.find((x) => x.login_name === login);
        if (!u) throw fail('vault.no_such_user', `本机没有用户“${login}”`);
        u.password = password;
        failures.delete(login);
      }),
    listUsers: () => answer('listUsers', () => users.map((u) => ({ login_name: u.login_name, display_name: u.display_name, role: u.role }))),
    listHouseholds: () =>
      answer('listHouseholds', () =>
        [...households.entries()].map(([id, h]) => ({
          id,
          label: String(h.label ?? ''),
          head_name: String(h.head_name ?? ''),
          village: String((h.address as Record<string, unknown> | undefined)?.village ?? ''),
          children: 0,
          review_date: null,
        })),
      ),
    getHousehold: (id) =>
      answer('getHousehold', () => ({
        id,
        household: structuredClone(households.get(id) ?? { label: '张家', head_name: '张建国' }),
        version: householdVersions.get(id) ?? 0,
        members: [...children.entries()].filter(([, c]) => c.household_id === id).map(([cid, c]) => ({ id: cid, name: String(c.name ?? ''), grade: String(c.grade ?? '') })),
        plans: [],
        versions: [],
      })),
    saveHousehold: (id, household, version) =>
      answer('saveHousehold', () => {
        if (id && version !== undefined && version !== null && version !== (householdVersions.get(id) ?? 0)) {
          throw fail('record.changed', '这条记录在您打开后已被同步更新，请重新打开后再修改');
        }
        if (household.phone && !/^1\d{10}$/.test(String(household.phone))) throw invalid([{ field: 'phone', code: 'field.phone', message: '手机号码应为11位数字，请核对' }]);
        if (!String(household.label ?? '').trim()) throw invalid([{ field: 'label', code: 'field.required', message: '家庭名称不能为空，请填写' }]);
        if (!String(household.head_name ?? '').trim()) throw invalid([{ field: 'head_name', code: 'field.required', message: '户主姓名不能为空，请填写' }]);
        const key = id ?? newId();
        households.set(key, structuredClone(household));
        return key;
      }),
    deleteChild: (id, reason) =>
      answer('deleteChild', () => {
        if (!reason.trim()) throw fail('record.delete_reason_required', '删除必须填写原因');
        if (!children.delete(id)) throw fail('record.not_found', 'not found', { id });
      }),
    savePlan: () => answer('savePlan', () => newId()),
    listChildRecords: (_childId, kind) =>
      answer('listChildRecords', () => {
        if (kind === 'psych_note' && !me(current!).reads_notes) {
          throw new BridgeError({ code: 'auth.forbidden', message: 'forbidden', details: null });
        }
        return structuredClone(records.filter((r) => r.kind === kind));
      }),
    listSchoolRecords: () => answer('listSchoolRecords', () => []),
    saveRecord: (kind, id, body) =>
      answer('saveRecord', () => {
        const found = id ? records.find((r) => r.id === id) : undefined;
        if (id && !found) throw fail('record.not_found', 'not found', { id });
        if (found?.locked) throw fail('crypto.not_a_reader', 'not a reader');
        const key = id ?? newId();
        const row: RecordRow = { id: key, kind, updated_at: now(), body: structuredClone(body), locked: false };
        if (found) records.splice(records.indexOf(found), 1, row);
        else records.push(row);
        return key;
      }),
    // uiconf: a household is validated as typed (the shape of the Rust answer)
    validateRecord: (kind, body) =>
      answer('validateRecord', () =>
        kind === 'household' && body.phone && !/^1\d{10}$/.test(String(body.phone))
          ? [{ field: 'phone', code: 'phone.invalid', message: '电话格式不正确：手机号为1开头的11位数字' }]
          : [],
      ),
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
    runSync: (onProgress) => {
      if (options.syncWaitsForCancel) {
        calls.push('runSync');
        onProgress({ phase: 'push', done: 1, total: 4, bytes_sent: 300, bytes_received: 40, retry: null });
        return new Promise((_, reject) => {
          cancelRunning = () => reject(fail('sync.cancelled', '同步已取消，下次会从中断处继续'));
        });
      }
      return answer('runSync', () => {
        onProgress({ phase: 'push', done: 1, total: 2, bytes_sent: 300, bytes_received: 40, retry: null });
        onProgress({ phase: 'pull', done: 2, total: 2, bytes_sent: 300, bytes_received: 900, retry: null });
        sync.last_sync = now();
        return { pushed: 2, pulled: 5, conflicts: 0, fields_kept: 0, bytes_up: 300, bytes_down: 900, retries: 0, duration_ms: 1200 };
      });
    },
    cancelSync: async () => {
      calls.push('cancelSync');
      const running = cancelRunning !== null;
      cancelRunning?.();
      cancelRunning = null;
      return running;
    },
    // uiconf: conflicts to review
    listConflicts: () => answer('listConflicts', () => conflicts),
    resolveConflict: (id, choice, merged) =>
      answer('resolveConflict', () => {
        if (!conflicts.some((c) => c.id === id)) throw fail('conflict.already_resolved', '这条冲突已经处理过了');
        resolutions.push({ id, choice, merged });
        conflicts = conflicts.filter((c) => c.id !== id);
      }),
    // uiconf: the printable card, household members
    printChild: (childId) =>
      answer('printChild', () => {
        if (!children.has(childId)) throw fail('record.not_found', '找不到这名儿童的档案');
        printed.push(childId);
      }),
    setChildHousehold: (childId, householdId) =>
      answer('setChildHousehold', () => {
        const c = children.get(childId);
        if (!c) throw fail('record.not_found', '找不到这名儿童的档案');
        c.household_id = householdId;
      }),
    onBeforeClose: async (save) => {
      beforeClose = save;
      return () => (beforeClose = null);
    },
    closeWindow: async () => {
      await beforeClose?.();
    },
    // Excel in and out (the Rust side opens the dialogs and checks the role).
    exportChildrenXlsx: (filter, template, password, onProgress) =>
      answer('exportChildrenXlsx', () => {
        if (!template && current && !me(current).exports) throw fail('auth.forbidden', '您的角色无权进行此操作');
        if (!template) {
          if (!password) throw fail('export.password_required', '导出的儿童信息必须设置打开密码：请输入密码（至少8位）');
          const problem = mockPasswordProblem(password, '');
          if (problem) throw new BridgeError(problem);
        }
        if (options.excelDialogCancelled) return null;
        const count = template ? 0 : [...children.values()].filter((c) => !filter?.status || (c.status ?? 'active') === filter.status).length;
        onProgress({ phase: 'write', done: count, total: count });
        return { children: count, file_name: template ? '留守儿童登记表-空白模板.xlsx' : '留守儿童登记表.xlsx' };
      }),
    importChildrenXlsx: (onProgress, password = null, retry = false) =>
      answer('importChildrenXlsx', () => {
        if (current && !me(current).writes_records) throw fail('auth.forbidden', '您的角色无权进行此操作');
        const kept = pendingImport;
        pendingImport = false;
        if (retry && !kept) return null;
        if (!retry && options.excelDialogCancelled) return null;
        const protectedWith = options.excelImportPassword;
        if (protectedWith !== undefined && password !== protectedWith) {
          pendingImport = true;
          if (!password) throw fail('import.password_required', '这个Excel文件设置了打开密码：请输入导出时设置的密码');
          throw fail('import.wrong_password', '密码不正确，无法打开这个Excel文件，没有导入任何儿童');
        }
        const report = options.excelImport ?? { rows: 2, created: 2, updated: 0, unchanged: 0, ignored_columns: [] };
        onProgress({ phase: 'check', done: report.rows, total: report.rows });
        onProgress({ phase: 'write', done: report.rows, total: report.rows });
        return report;
      }),
  };
}
