/**
 * The ONLY module that talks to the Rust side (`invoke`, channels). Components
 * receive a `Bridge` (real one in the app, `bridge.mock.ts` in tests) and never
 * import `@tauri-apps/api/core` themselves.
 *
 * Every command rejects with a `BridgeError` carrying the backend's
 * `{ code, message, details }`; the UI shows `t('error.<code>')`, and for a
 * validation error `details.errors` lists each field's problem.
 */
import { Channel, invoke, type InvokeArgs } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';

export interface AppInfo {
  name: string;
  version: string;
}

export interface StoreSummary {
  schools: number;
  children: number;
  households: number;
  home_visits: number;
  pending_changes: number;
}

export interface AppErrorPayload {
  code: string;
  message: string;
  details: unknown;
}

export class BridgeError extends Error {
  readonly code: string;
  readonly details: unknown;

  constructor(payload: AppErrorPayload) {
    super(payload.message);
    this.name = 'BridgeError';
    this.code = payload.code;
    this.details = payload.details;
  }

  /** The per-field problems of a validation error (`details.errors`). */
  fieldProblems(): FieldProblem[] {
    const errors = (this.details as { errors?: unknown } | null)?.errors;
    if (!Array.isArray(errors)) return [];
    return errors.flatMap((e: { code?: string; message?: string; details?: { field?: string } }) =>
      e && typeof e.details?.field === 'string'
        ? [{ field: e.details.field, code: e.code ?? '', message: e.message ?? '' }]
        : [],
    );
  }
}

/** The six roles of `shouhu_auth::Role`. */
export type Role = 'teacher' | 'counselor' | 'principal' | 'township_staff' | 'county_admin' | 'psych_supervisor';
export const ROLES: Role[] = ['teacher', 'counselor', 'principal', 'township_staff', 'county_admin', 'psych_supervisor'];
/** Roles that work for one school (they name a school and its township). */
export const SCHOOL_ROLES: Role[] = ['teacher', 'counselor', 'principal'];

export interface Settings {
  language: 'zh-CN' | 'en';
  text_size: 'normal' | 'large';
  school_id: string | null;
  /** Lock after this many minutes without input (1–240, default 10). */
  auto_lock_minutes: number;
  /** A store made by "use demo data". */
  demo: boolean;
}

export type Scope =
  | { kind: 'school'; school_id: string; township_id: string }
  | { kind: 'township'; township_id: string }
  | { kind: 'county' };

export interface UserItem {
  login_name: string;
  display_name: string;
  role: Role;
}

export interface CurrentUser {
  user_id: string;
  login_name: string;
  display_name: string;
  role: Role;
  scope: Scope;
  reads_notes: boolean;
  /** School staff change records; the other roles only read (the API refuses their saves). */
  writes_records: boolean;
  /** A principal or county admin: may add laptop users and reset passwords. */
  manages_users: boolean;
  /** Principals, township staff and county admins export (导出 Excel). */
  exports: boolean;
  auto_lock_minutes: number;
  /** Logged in with an initial password from the county server: a new password first. */
  must_change_password: boolean;
}

/** What the first screen needs: set-up (`empty`, `plain`) or log-in (`ready`). */
export interface VaultView {
  state: 'empty' | 'plain' | 'ready';
  users: UserItem[];
  /** Shown on the log-in screen of a demo store only. */
  demo_password: string | null;
  current: CurrentUser | null;
}

export interface SetUpRequest {
  login_name: string;
  display_name: string;
  role: Role;
  school_name: string;
  township: string;
  password: string;
  password_again: string;
}

export interface AddUserRequest {
  login_name: string;
  display_name: string;
  role: Role;
  school_id: string | null;
  password: string;
  password_again: string;
}

export interface SchoolItem {
  id: string;
  name: string;
  township: string;
}

export interface FieldProblem {
  field: string;
  code: string;
  message: string;
}

export interface SearchParams {
  query: string;
  school_id?: string | null;
  township?: string | null;
  left_behind_type?: string | null;
  guardianship_type?: string | null;
  status?: string | null;
  sort?: 'name' | 'birth_date' | 'grade' | 'updated_at';
  descending?: boolean;
  offset: number;
  limit: number;
}

export interface ChildSummary {
  id: string;
  name: string;
  gender: string | null;
  birth_date: string | null;
  id_number_masked: string | null;
  school_id: string | null;
  township: string;
  grade: string;
  class_name: string;
  left_behind_type: string;
  guardianship_type: string;
  status: string;
}

export interface SearchPage {
  total: number;
  offset: number;
  items: ChildSummary[];
  query_kind: string;
}

/** The core model's child card, as JSON (field names are the core's). */
export type ChildCard = Record<string, unknown>;
export type HomeVisit = Record<string, unknown>;

export interface VisitRow {
  id: string;
  visit_date: string | null;
  status: 'draft' | 'final';
  mode: string;
  campaign: string | null;
  summary: string;
}

export interface TimelineItem {
  at: string;
  kind: string;
  record_id: string;
  summary: string;
  by: string;
  fields: string[];
}

export interface ChildView {
  id: string;
  card: ChildCard;
  created_at: string;
  updated_at: string;
  household_label: string | null;
  visits: VisitRow[];
  timeline: TimelineItem[];
}

export interface Meta {
  id: string;
  created_at: string;
  updated_at: string;
  created_by: string;
  updated_by: string;
}

export type Stored<T> = Meta & { body: T };

export interface FollowUp {
  visit_id: string | null;
  child_id: string | null;
  action: string;
  assignee: string;
  due_date: string | null;
  done: boolean;
  done_date: string | null;
  outcome: string;
}

export interface VisitAmendment {
  visit_id: string;
  field: string;
  old_value: unknown;
  new_value: unknown;
  reason: string;
}

export interface VisitView {
  id: string;
  visit: HomeVisit;
  updated_at: string;
  child_name: string | null;
  amendments: Stored<VisitAmendment>[];
  follow_ups: Stored<FollowUp>[];
}

export interface VisitSaved {
  id: string;
  updated_at: string;
}

export interface VisitListRow extends VisitRow {
  child_id: string | null;
  child_name: string | null;
}

export interface VisitFilter {
  school_id?: string | null;
  status?: 'draft' | 'final' | null;
  campaign?: string | null;
  limit?: number;
}

export interface ChildRef {
  id: string;
  name: string;
  note: string;
}

export interface Dashboard {
  school_id: string | null;
  active_children: number;
  by_left_behind_type: Record<string, number>;
  by_guardianship_type: Record<string, number>;
  visits_due: number;
  visits_overdue: number;
  overdue_children: ChildRef[];
  visit_drafts: number;
  follow_ups_due: number;
  follow_ups_overdue: number;
  follow_up_list: ChildRef[];
  counseling_flags: ChildRef[];
  safety_alerts: ChildRef[];
  last_sync: string | null;
  pending_changes: number;
}

export interface HouseholdRow {
  id: string;
  label: string;
  head_name: string;
  village: string;
  children: number;
  review_date: string | null;
}

export interface Measure {
  kind: string;
  description: string;
  responsible: string;
  due_date: string | null;
}

export interface HelpPlan {
  household_id: string;
  school_id?: string | null;
  needs: string[];
  measures: Measure[];
  responsible_people: string[];
  review_date: string | null;
  approved_by: string | null;
  revision: number;
  revision_note: string;
}

export interface HouseholdView {
  id: string;
  household: Record<string, unknown>;
  /** Sent back with an edit (`saveHousehold`). */
  version: number;
  members: { id: string; name: string; grade: string }[];
  plans: Stored<HelpPlan>[];
  versions: Stored<{ plan_id: string; revision: number; content: HelpPlan; superseded_at: string }>[];
}

export interface RecordRow {
  id: string;
  kind: string;
  updated_at: string;
  body: Record<string, unknown>;
  /** A psychological note sealed for other readers: only its date shows. */
  locked?: boolean;
}

export interface ChecklistLine {
  child_id: string;
  name: string;
  class_name: string;
  entry_id: string | null;
  outcome: string | null;
  reason: string | null;
}

export interface SyncStatus {
  enrolled: boolean;
  server_url: string | null;
  device_id: string;
  device_name: string | null;
  /** The server certificate's SHA-256 fingerprint pinned at enrollment (`AB:CD:…`). */
  server_fingerprint: string | null;
  pending: number;
  pull_cursor: number;
  last_sync: string | null;
}

export interface SyncProgress {
  phase: 'push' | 'pull';
  done: number;
  total: number;
  bytes_sent: number;
  bytes_received: number;
  retry: { attempt: number; max_retries: number; delay_ms: number; code: string } | null;
}

export interface SyncReport {
  pushed: number;
  pulled: number;
  conflicts: number;
  fields_kept: number;
  bytes_up: number;
  bytes_down: number;
  retries: number;
  duration_ms: number;
  /** The server holds another notes key for this reader (registered on another laptop). */
  reader_key_mismatch?: boolean;
  /** Schools that left this computer's scope and were removed from it in this sync. */
  schools_removed?: { school_id: string; name: string | null; records: number }[];
  /** Schools that left the scope but stay until this computer's changes for them are sent. */
  schools_kept?: { school_id: string; name: string | null; pending: number }[];
}

export interface Stamp {
  by: string;
  device: string;
  at: string;
}

export interface ConflictView {
  id: string;
  entity: string | null;
  record_id: string;
  record_label: string | null;
  kind: 'same_field' | 'edit_vs_delete' | 'delete_vs_edit';
  field: string | null;
  current_value: unknown;
  current_by: Stamp;
  other_value: unknown;
  other_by: Stamp;
  /** Which side came from this device: `current`, `other` or `neither`. */
  local_side: 'current' | 'other' | 'neither';
}

export type ResolutionChoice = 'keep_current' | 'keep_other' | 'merged' | 'restore' | 'keep_deleted';

export interface DemoProgress {
  children: number;
  children_total: number;
  records: number;
  fraction: number;
}

// --- Excel in and out (the children register) ---

/** Rows done of all rows, while an Excel export or import runs. */
export interface XlsxProgress {
  /** `check`: an import reads and checks every row first; `write`: rows written. */
  phase: 'check' | 'write';
  done: number;
  total: number;
}

export interface ExcelExported {
  children: number;
  /** The file's name (the folder stays in Rust). */
  file_name: string;
}

export interface XlsxImportReport {
  rows: number;
  created: number;
  updated: number;
  unchanged: number;
  /** Headers of the file that no field matched (ignored). */
  ignored_columns: string[];
}

/** One bad cell of a refused import (`import.rows_invalid`, `details.errors`). */
export interface XlsxRowError {
  /** The row number as Excel shows it. */
  row: number;
  column: string;
  code: string;
  message: string;
}

/** Everything the UI can ask of the backend: one method per command. */
export interface Bridge {
  appInfo(): Promise<AppInfo>;
  storeSummary(): Promise<StoreSummary>;
  getSettings(): Promise<Settings>;
  setSetting(key: string, value: string): Promise<Settings>;
  listSchools(): Promise<SchoolItem[]>;
  searchChildren(params: SearchParams): Promise<SearchPage>;
  getChild(id: string): Promise<ChildView>;
  validateChild(card: ChildCard): Promise<FieldProblem[]>;
  saveChild(id: string | null, card: ChildCard): Promise<string>;
  /** A tombstone with a reason (the card stays in history and sync). */
  deleteChild(id: string, reason: string): Promise<void>;
  /**
   * Create (`id` null) or edit a household; an edit sends the `version` it
   * was opened at and is refused (`record.changed`) if a sync changed it since.
   */
  saveHousehold(id: string | null, household: Record<string, unknown>, version?: number | null): Promise<string>;
  saveVisitDraft(id: string | null, visit: HomeVisit): Promise<VisitSaved>;
  finaliseVisit(id: string, visit: HomeVisit): Promise<VisitSaved>;
  amendVisit(visitId: string, field: string, newValue: unknown, reason: string): Promise<string>;
  getVisit(id: string): Promise<VisitView>;
  saveFollowUp(id: string | null, followUp: FollowUp): Promise<string>;
  listVisits(filter: VisitFilter): Promise<VisitListRow[]>;
  dashboard(schoolId: string | null): Promise<Dashboard>;
  vaultState(): Promise<VaultView>;
  setUp(req: SetUpRequest): Promise<CurrentUser>;
  /** An encrypted demo store with one demo account per role; ends locked (log-in screen). */
  useDemo(onProgress: (p: DemoProgress) => void): Promise<{ children: number; records: number }>;
  logIn(loginName: string, password: string): Promise<CurrentUser>;
  logOut(): Promise<void>;
  lock(): Promise<void>;
  changePassword(old: string, next: string, again: string): Promise<void>;
  addUser(req: AddUserRequest): Promise<void>;
  resetPassword(loginName: string, password: string, again: string): Promise<void>;
  listUsers(): Promise<UserItem[]>;
  listHouseholds(schoolId: string | null, query: string): Promise<HouseholdRow[]>;
  getHousehold(id: string): Promise<HouseholdView>;
  savePlan(id: string | null, plan: HelpPlan): Promise<string>;
  listChildRecords(childId: string, kind: string): Promise<RecordRow[]>;
  listSchoolRecords(schoolId: string, kind: string): Promise<RecordRow[]>;
  saveRecord(kind: string, id: string | null, body: Record<string, unknown>): Promise<string>;
  validateRecord(kind: string, body: Record<string, unknown>): Promise<FieldProblem[]>;
  screeningChecklist(roundId: string): Promise<ChecklistLine[]>;
  syncStatus(): Promise<SyncStatus>;
  /**
   * Enroll with the county server: its address, the one-time code and the
   * certificate fingerprint the administrator gave (all 64 hex digits or at
   * least the first 16; empty only for a test server on this computer).
   */
  enroll(serverUrl: string, code: string, fingerprint: string): Promise<SyncStatus>;
  runSync(onProgress: (p: SyncProgress) => void): Promise<SyncReport>;
  /** Stops the running sync at its next step; whether one was running. */
  cancelSync(): Promise<boolean>;
  listConflicts(): Promise<ConflictView[]>;
  resolveConflict(id: string, choice: ResolutionChoice, merged: unknown): Promise<void>;
  /**
   * Run `save` when the window is about to close (then the window closes):
   * what is being typed is stored first.
   */
  onBeforeClose(save: () => Promise<void>): Promise<() => void>;
  // uiconf: the printable card, household members
  /** Print a child's card (the user confirmed, the print view is on the page): audited, then the print dialog. */
  printChild(childId: string): Promise<void>;
  /** Put a child into a household, or take it out (`null`). */
  setChildHousehold(childId: string, householdId: string | null): Promise<void>;
  // Excel in and out: the dialogs open in Rust; `null` when the user cancels.
  /**
   * The children the list's filter finds to an .xlsx the user picks,
   * protected with `password` (Excel's own "Encrypt with Password"; required
   * for children's data), or the empty template (no password).
   */
  exportChildrenXlsx(
    filter: SearchParams | null,
    template: boolean,
    password: string | null,
    onProgress: (p: XlsxProgress) => void,
  ): Promise<ExcelExported | null>;
  /**
   * All rows or none: a refusal is `import.rows_invalid` with
   * `details.errors: XlsxRowError[]`. A protected workbook answers
   * `import.password_required` / `import.wrong_password`; call again with
   * the password and `retry` to reuse the picked file (no new dialog).
   */
  importChildrenXlsx(
    onProgress: (p: XlsxProgress) => void,
    password?: string | null,
    retry?: boolean,
  ): Promise<XlsxImportReport | null>;
}

function isAppErrorPayload(value: unknown): value is AppErrorPayload {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { code?: unknown }).code === 'string' &&
    typeof (value as { message?: unknown }).message === 'string'
  );
}

function hasTauriIpc(): boolean {
  const internals = (globalThis as { __TAURI_INTERNALS__?: { invoke?: unknown } }).__TAURI_INTERNALS__;
  return typeof internals?.invoke === 'function';
}

/** Normalises whatever `invoke` rejected with into a `BridgeError`. */
export function toBridgeError(error: unknown): BridgeError {
  if (error instanceof BridgeError) return error;
  if (isAppErrorPayload(error)) {
    return new BridgeError({ code: error.code, message: error.message, details: error.details ?? null });
  }
  if (!hasTauriIpc()) {
    return new BridgeError({ code: 'bridge_unavailable', message: 'Tauri IPC is not available', details: null });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new BridgeError({ code: 'internal', message, details: null });
}

async function call<T>(command: string, args?: InvokeArgs): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (error) {
    throw toBridgeError(error);
  }
}

function channel<T>(onMessage: (value: T) => void): Channel<T> {
  const ch = new Channel<T>();
  ch.onmessage = onMessage;
  return ch;
}

export const bridge: Bridge = {
  appInfo: () => call('app_info'),
  storeSummary: () => call('store_summary'),
  getSettings: () => call('get_settings'),
  setSetting: (key, value) => call('set_setting', { change: { key, value } }),
  listSchools: () => call('list_schools'),
  searchChildren: (params) => call('search_children', { params }),
  getChild: (id) => call('get_child', { id }),
  validateChild: (card) => call('validate_child', { card }),
  saveChild: (id, card) => call('save_child', { req: { id, card } }),
  deleteChild: (id, reason) => call('delete_child', { id, reason }),
  saveHousehold: (id, household, version) => call('save_household', { req: { id, household, version: version ?? null } }),
  saveVisitDraft: (id, visit) => call('save_visit_draft', { req: { id, visit } }),
  finaliseVisit: (id, visit) => call('finalise_visit', { id, visit }),
  amendVisit: (visitId, field, newValue, reason) =>
    call('amend_visit', { req: { visit_id: visitId, field, new_value: newValue, reason } }),
  getVisit: (id) => call('get_visit', { id }),
  saveFollowUp: (id, followUp) => call('save_follow_up', { req: { id, follow_up: followUp } }),
  listVisits: (filter) => call('list_visits', { filter }),
  dashboard: (schoolId) => call('dashboard', { schoolId }),
  vaultState: () => call('vault_state'),
  setUp: (req) => call('set_up', { req }),
  useDemo: (onProgress) => call('use_demo', { onProgress: channel(onProgress) }),
  logIn: (loginName, password) => call('log_in', { req: { login_name: loginName, password } }),
  logOut: () => call('log_out'),
  lock: () => call('lock'),
  changePassword: (old, next, again) => call('change_password', { req: { old, new: next, new_again: again } }),
  addUser: (req) => call('add_user', { req }),
  resetPassword: (loginName, password, again) =>
    call('reset_password', { req: { login_name: loginName, password, password_again: again } }),
  listUsers: () => call('list_users'),
  listHouseholds: (schoolId, query) => call('list_households', { filter: { school_id: schoolId, query } }),
  getHousehold: (id) => call('get_household', { id }),
  savePlan: (id, plan) => call('save_plan', { req: { id, plan } }),
  listChildRecords: (childId, kind) => call('list_child_records', { childId, kind }),
  listSchoolRecords: (schoolId, kind) => call('list_school_records', { schoolId, kind }),
  saveRecord: (kind, id, body) => call('save_record', { req: { kind, id, body } }),
  validateRecord: (kind, body) => call('validate_record', { kind, body }),
  screeningChecklist: (roundId) => call('screening_checklist', { roundId }),
  syncStatus: () => call('sync_status'),
  enroll: (serverUrl, code, fingerprint) => call('enroll', { serverUrl, code, fingerprint }),
  runSync: (onProgress) => call('run_sync', { onProgress: channel(onProgress) }),
  cancelSync: () => call('cancel_sync'),
  listConflicts: () => call('list_conflicts'),
  resolveConflict: (id, choice, merged) => call('resolve_conflict', { req: { id, choice, merged } }),
  // uiconf: the printable card, household members
  printChild: (childId) => call('print_child', { childId }),
  setChildHousehold: (childId, householdId) => call('set_child_household', { childId, householdId }),
  onBeforeClose: (save) =>
    listen('flush-before-close', async () => {
      try {
        await save();
      } finally {
        await call('close_window').catch(() => undefined);
      }
    }),
  // Excel in and out
  exportChildrenXlsx: (filter, template, password, onProgress) =>
    call('export_children_xlsx', { req: { filter, template, password }, onProgress: channel(onProgress) }),
  importChildrenXlsx: (onProgress, password = null, retry = false) =>
    call('import_children_xlsx', { password, retry, onProgress: channel(onProgress) }),
};
