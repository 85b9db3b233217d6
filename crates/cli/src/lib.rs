//! # shouhu-cli
//!
//! The `shouhu` command line over the same store the desktop app uses: a
//! township office can script it (import a roster, export for the county,
//! look a child up, print counts) and benchmarks and tests drive it.
//!
//! # Layout
//! - this file: argument parsing (`clap`) and [`run`], which tests call with
//!   their own output buffers; `main.rs` only forwards the process's.
//! - `show`: the text rendering of one child's file.
//!
//! Every failure prints `错误 [code] message` (or English with `--lang en`)
//! and exits non-zero: 1 for a failed command, 2 for an import that kept its
//! good lines but had bad ones (or an Excel import refused for bad rows:
//! nothing written), 64 for bad arguments.

mod show;

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::json;
use shouhu_core::{ChildStatus, EntityKind, GuardianshipType, Lang, LeftBehindType};
use shouhu_exchange::{
    export_jsonl, import_jsonl, ExchangeError, ExportOptions, ImportOptions, Progress,
};
use shouhu_store::{AuditAction, AuditTarget, SearchParams, SortBy, Store, StoreError};
use uuid::Uuid;

#[derive(Parser, Debug)]
#[command(
    name = "shouhu",
    version,
    about = "守护 Shouhu — 留守儿童关爱档案（命令行）",
    long_about = "守护 Shouhu: records for the care of left-behind children. Every command works on one local store file."
)]
pub struct Cli {
    /// The store file (created by `init` or on first use).
    #[arg(long, env = "SHOUHU_DB", default_value = "shouhu.db", global = true)]
    pub db: PathBuf,
    /// Message language.
    #[arg(long, value_enum, default_value = "zh", global = true)]
    pub lang: LangArg,
    /// Where this laptop's device key lives (outside the data folder, so a
    /// copied store is recognised). Default: ~/.local/share/shouhu/identity.
    #[arg(long, env = "SHOUHU_IDENTITY_DIR", global = true)]
    pub identity_dir: Option<PathBuf>,
    /// Log-in name, for an encrypted store (its keyring `<db>.keys.json` lies
    /// beside it). The password comes from SHOUHU_PASSWORD (for a scheduled
    /// sync) or, with --password-stdin, from the first line of standard input.
    #[arg(long, env = "SHOUHU_USER", global = true)]
    pub user: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long, global = true)]
    pub password_stdin: bool,
    /// Read the password from the first line of this file (keep it readable
    /// by the scheduler's account only).
    #[arg(long, global = true)]
    pub password_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LangArg {
    Zh,
    En,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create (or upgrade) the store and print its identity.
    Init,
    /// Import JSON Lines (see the README for the format).
    Import {
        /// The file to read, or `-` for standard input.
        file: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// The password of a password-protected export (first line of this
        /// file); needed when the file was exported from an encrypted store.
        #[arg(long)]
        export_password_file: Option<PathBuf>,
    },
    /// Export every live record as JSON Lines.
    Export {
        /// The file to write, or `-` for standard output.
        file: PathBuf,
        /// Only these kinds (comma-separated, e.g. `child,home_visit`).
        #[arg(long, value_delimiter = ',')]
        kinds: Vec<String>,
        /// Leave out psychological notes.
        #[arg(long)]
        without_notes: bool,
        /// Protect the file with the password on the first line of this file
        /// (required for an encrypted store: its exports are never plain).
        #[arg(long)]
        export_password_file: Option<PathBuf>,
    },
    /// Export children as the Excel register (.xlsx: Chinese headers, or
    /// English with --lang en; one row per child; the last column 系统编号
    /// lets a re-import find each child).
    ExportXlsx {
        /// The .xlsx file to write.
        file: PathBuf,
        /// Only this school's children (a school user always gets their own).
        #[arg(long)]
        school: Option<Uuid>,
        /// Only children living in this township.
        #[arg(long)]
        township: Option<String>,
        #[arg(long, value_parser = parse_enum::<ChildStatus>)]
        status: Option<ChildStatus>,
        /// Write the empty register (headers only) to fill in, no children.
        #[arg(long)]
        template: bool,
        /// Protect the workbook with the password on the first line of this
        /// file, as Excel's "Encrypt with Password" does (Excel and WPS ask
        /// for it; required for an encrypted store unless --unprotected).
        #[arg(long)]
        export_password_file: Option<PathBuf>,
        /// From an encrypted store: write a workbook without a password
        /// anyway (the export is audited as unprotected).
        #[arg(long, conflicts_with = "export_password_file")]
        unprotected: bool,
    },
    /// Import children from an Excel register (.xlsx). All or nothing: one
    /// bad row and nothing is written; every bad cell is listed with its
    /// Excel row number. A child already on file (same 系统编号 or ID
    /// number) is updated, never duplicated.
    ImportXlsx {
        /// The .xlsx file to read.
        file: PathBuf,
        /// Print the report (or the row errors) as JSON.
        #[arg(long)]
        json: bool,
        /// The password of a password-protected workbook (first line of this
        /// file).
        #[arg(long)]
        export_password_file: Option<PathBuf>,
    },
    /// Copy the store, still encrypted, with its keyring, to a backup file
    /// (`<file>` and `<file>.keys.json`): restore by copying both back.
    Backup {
        /// The backup file to write (must not exist).
        file: PathBuf,
    },
    /// Search children by name, pinyin, initials or ID-number prefix.
    Search {
        /// What to look for (may be empty to list with filters only).
        #[arg(default_value = "")]
        query: String,
        #[arg(long)]
        school: Option<Uuid>,
        #[arg(long)]
        township: Option<String>,
        #[arg(long, value_parser = parse_enum::<LeftBehindType>)]
        left_behind_type: Option<LeftBehindType>,
        #[arg(long, value_parser = parse_enum::<GuardianshipType>)]
        guardianship_type: Option<GuardianshipType>,
        #[arg(long, value_parser = parse_enum::<ChildStatus>)]
        status: Option<ChildStatus>,
        #[arg(long, value_parser = parse_enum::<SortBy>, default_value = "name")]
        sort: SortBy,
        #[arg(long)]
        desc: bool,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
        #[arg(long)]
        json: bool,
    },
    /// Show one child's file: the card and everything recorded about the child.
    Show {
        id: Uuid,
        /// Include psychological notes (counselors only).
        #[arg(long)]
        notes: bool,
        #[arg(long)]
        json: bool,
    },
    /// Counts of records and of children by type.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Enroll this store with the county server (a one-time code from the
    /// server's admin).
    Enroll {
        /// The server address, https://… (http:// only for a test server on
        /// this computer).
        #[arg(long)]
        server: String,
        #[arg(long)]
        code: String,
        /// The server certificate's SHA-256 fingerprint, as the admin gave
        /// it with the code (`shouhu-server enroll` prints it): all 64 hex
        /// digits (colons optional) or at least the first 16. It is pinned:
        /// later syncs accept that certificate only.
        #[arg(long)]
        fingerprint: Option<String>,
        /// A name for the server's device list (default: the host name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Send this store's changes to the county server and fetch everyone
    /// else's (resumable: run it again after a dropped connection).
    Sync {
        /// The server address (remembered; needed only the first time or
        /// when it moved).
        #[arg(long)]
        server: Option<String>,
        /// Enroll first with this one-time code.
        #[arg(long)]
        code: Option<String>,
        /// With --code: the server certificate's fingerprint to pin (see
        /// `enroll --fingerprint`).
        #[arg(long, requires = "code")]
        fingerprint: Option<String>,
        #[arg(long, default_value_t = 500)]
        push_batch: usize,
        #[arg(long, default_value_t = 1000)]
        pull_page: usize,
        #[arg(long)]
        json: bool,
    },
    /// Encrypt this store (SQLCipher) and make its first user: a plain store
    /// is encrypted in place, a missing one is created encrypted. Afterwards
    /// every command needs --user and the password.
    Encrypt {
        /// The first user's log-in name (also --user for later commands).
        #[arg(long)]
        login: String,
        /// The name shown to people (e.g. 王校长).
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: shouhu_auth::Role,
        /// The user's school (with --township): a school user.
        #[arg(long)]
        school: Option<Uuid>,
        /// The user's township: a township user, or with --school a school user.
        #[arg(long)]
        township: Option<Uuid>,
    },
    /// Fill the store with realistic demo records (a fictional county).
    Demo {
        #[arg(long, default_value_t = 600)]
        children: usize,
        #[arg(long, default_value_t = 8)]
        schools: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn parse_role(s: &str) -> Result<shouhu_auth::Role, String> {
    shouhu_auth::Role::parse(s).ok_or_else(|| {
        let all: Vec<&str> = shouhu_auth::Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("unknown role “{s}” (one of {})", all.join(", "))
    })
}

fn parse_enum<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("unknown value “{s}”"))
}

/// A command's failure: a coded error body.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    #[error(transparent)]
    Xlsx(#[from] shouhu_exchange::XlsxError),
    /// The logged-in role may not do this (import: the roles that only read).
    #[error("the {0} role may not {1}")]
    Forbidden(&'static str, &'static str),
    #[error("cannot open {path}: {error}")]
    File { path: String, error: String },
    #[error("unknown record type {0}")]
    UnknownKind(String),
    #[error("cannot write output: {0}")]
    Output(String),
    #[error(transparent)]
    Sync(#[from] shouhu_sync::SyncError),
    #[error(transparent)]
    Vault(#[from] shouhu_vault::VaultError),
    /// The store is encrypted and no user or password was given.
    #[error(
        "this store is encrypted: log in with --user and SHOUHU_PASSWORD (or --password-stdin)"
    )]
    LoginRequired,
    /// --school without --township.
    #[error("--school needs --township too")]
    ScopeIncomplete,
    /// Only counselors and psychology supervisors see psychological notes.
    #[error("only counselors may see psychological notes")]
    NotesForbidden,
    /// An encrypted store's export must be password-protected.
    #[error("this store is encrypted: protect the export with --export-password-file")]
    ExportPasswordRequired,
    /// The file to import is password-protected.
    #[error("this file is password-protected: give its password with --export-password-file")]
    ImportPasswordRequired,
    /// A password-protected file that the password does not open, or that was
    /// changed or cut short.
    #[error("the protected file cannot be opened: {0}")]
    Sealed(shouhu_auth::AuthError),
    #[error("the backup file {0} exists already")]
    BackupExists(String),
}

impl CliError {
    pub fn code(&self) -> &'static str {
        match self {
            CliError::Store(e) => e.code(),
            CliError::Exchange(e) => e.code(),
            CliError::Xlsx(e) => e.code(),
            CliError::Forbidden(..) => "auth.forbidden",
            CliError::File { .. } => "io.open_failed",
            CliError::UnknownKind(_) => "cli.unknown_kind",
            CliError::Output(_) => "io.write_failed",
            CliError::Sync(e) => e.code(),
            CliError::Vault(e) => e.code(),
            CliError::LoginRequired => "cli.login_required",
            CliError::ScopeIncomplete => "cli.scope_incomplete",
            CliError::NotesForbidden => "auth.forbidden",
            CliError::ExportPasswordRequired => "export.password_required",
            CliError::ImportPasswordRequired => "import.password_required",
            CliError::Sealed(shouhu_auth::AuthError::WrongPassword) => "import.wrong_password",
            CliError::Sealed(_) => "import.file_damaged",
            CliError::BackupExists(_) => "backup.exists",
        }
    }

    pub fn message(&self, lang: Lang) -> String {
        match (self, lang) {
            (CliError::Store(e), l) => e.message(l),
            (CliError::Exchange(e), l) => e.message(l),
            (CliError::Xlsx(e), l) => e.message(l),
            (CliError::Forbidden(..), Lang::ZhCn) => "您的角色无权进行此操作".into(),
            (CliError::Sync(e), l) => e.message(l),
            (CliError::Vault(e), Lang::ZhCn) => e.message_zh(),
            (CliError::LoginRequired, Lang::ZhCn) => {
                "此数据库已加密：请用 --user 指定用户名，并通过 SHOUHU_PASSWORD 或 --password-stdin 提供密码".into()
            }
            (CliError::ScopeIncomplete, Lang::ZhCn) => "指定 --school 时必须同时指定 --township".into(),
            (CliError::NotesForbidden, Lang::ZhCn) => "只有心理教师可以查看心理辅导记录".into(),
            (CliError::File { path, error }, Lang::ZhCn) => {
                format!("无法打开文件 {path}：{error}")
            }
            (CliError::UnknownKind(k), Lang::ZhCn) => format!("未知的记录类型“{k}”"),
            (CliError::ExportPasswordRequired, Lang::ZhCn) => {
                "此数据库已加密，导出文件也必须加密：请用 --export-password-file 指定导出文件的密码".into()
            }
            (CliError::ImportPasswordRequired, Lang::ZhCn) => {
                "此文件已加密：请用 --export-password-file 提供导出时设置的密码".into()
            }
            (CliError::Sealed(shouhu_auth::AuthError::WrongPassword), Lang::ZhCn) => {
                "导出文件的密码不正确（或文件开头已损坏），没有导入任何记录".into()
            }
            (CliError::Sealed(_), Lang::ZhCn) => {
                "加密的导出文件已损坏或不完整，没有导入任何记录".into()
            }
            (CliError::BackupExists(p), Lang::ZhCn) => format!("备份文件 {p} 已存在，不会覆盖"),
            (CliError::Output(e), Lang::ZhCn) => format!("无法输出：{e}"),
            (other, Lang::En) => other.to_string(),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Output(e.to_string())
    }
}

/// Run the CLI with `args` (including the program name); returns the exit code.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = write!(err, "{e}");
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => 0,
                _ => 64,
            };
        }
    };
    let lang = match cli.lang {
        LangArg::Zh => Lang::ZhCn,
        LangArg::En => Lang::En,
    };
    match execute(&cli, lang, out, err) {
        Ok(code) => code,
        Err(e) => {
            let label = if lang == Lang::ZhCn {
                "错误"
            } else {
                "error"
            };
            let _ = writeln!(err, "{label} [{}] {}", e.code(), e.message(lang));
            1
        }
    }
}

fn identity_dir(cli: &Cli) -> PathBuf {
    if let Some(d) = &cli.identity_dir {
        return d.clone();
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .or_else(|| std::env::var_os("APPDATA").map(PathBuf::from))
        .unwrap_or_else(std::env::temp_dir);
    base.join("shouhu").join("identity")
}

fn password(cli: &Cli) -> Result<String, CliError> {
    if let Some(path) = &cli.password_file {
        return file_password(path);
    }
    if cli.password_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_string());
    }
    std::env::var("SHOUHU_PASSWORD").map_err(|_| CliError::LoginRequired)
}

/// The first line of a password file.
fn file_password(path: &std::path::Path) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::File {
        path: path.display().to_string(),
        error: e.to_string(),
    })?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// An I/O error from a sealed stream as the CLI reports it.
fn sealed_io(e: std::io::Error) -> CliError {
    match shouhu_auth::stream::auth_error(&e) {
        Some(a) => CliError::Sealed(a),
        None => CliError::Output(e.to_string()),
    }
}

/// The store, and who opened it (`None` for a plain store, which has no users).
fn open_session(cli: &Cli) -> Result<(Store, Option<shouhu_vault::LocalUser>), CliError> {
    let (store, who, _) = open_session_keys(cli)?;
    Ok((store, who))
}

type ReaderKeys = Option<std::sync::Arc<shouhu_auth::ReaderKeyPair>>;

/// [`open_session`], with the user's notes reader keys (readers only).
fn open_session_keys(
    cli: &Cli,
) -> Result<(Store, Option<shouhu_vault::LocalUser>, ReaderKeys), CliError> {
    let vault = shouhu_vault::Vault::new(&cli.db).with_identity_dir(identity_dir(cli));
    match vault.state()? {
        shouhu_vault::VaultState::Ready { .. } => {
            let user = cli.user.as_deref().ok_or(CliError::LoginRequired)?;
            let session = vault.log_in(user, &password(cli)?, chrono::Utc::now())?;
            let who = session.user().clone();
            let keys = session.reader_keys_shared();
            Ok((session.into_store(), Some(who), keys))
        }
        _ => {
            let (store, _) = Store::open_with_identity(&cli.db, &identity_dir(cli))?;
            Ok((store, None, None))
        }
    }
}

/// Opens the sealed notes `reader` may read, in place (the others stay
/// sealed: only their child and date show).
fn open_notes(
    notes: &mut [shouhu_core::Stored<shouhu_core::PsychNote>],
    reader: Option<(uuid::Uuid, &shouhu_auth::ReaderKeyPair)>,
) {
    let Some((me, keys)) = reader else {
        return;
    };
    for n in notes {
        let Some(sealed) = &n.body.sealed else {
            continue;
        };
        if let Ok(content) = shouhu_auth::note::open_value::<shouhu_core::PsychNoteContent>(
            n.meta.id, sealed, me, keys,
        ) {
            n.body.set_content(content);
            n.body.sealed = None;
        }
    }
}

/// Write `bytes` beside `file` and rename: a failed export never leaves a
/// half-written file under the real name.
fn write_atomically(file: &std::path::Path, bytes: &[u8]) -> Result<(), CliError> {
    let tmp = file.with_extension("partial");
    let failed = |p: &std::path::Path, e: std::io::Error| CliError::File {
        path: p.display().to_string(),
        error: e.to_string(),
    };
    std::fs::write(&tmp, bytes).map_err(|e| failed(&tmp, e))?;
    std::fs::rename(&tmp, file).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        failed(file, e)
    })
}

fn open_store(cli: &Cli) -> Result<Store, CliError> {
    Ok(open_session(cli)?.0)
}

fn print_json(out: &mut dyn Write, v: &impl Serialize) -> Result<(), CliError> {
    let s = serde_json::to_string_pretty(v).map_err(|e| CliError::Output(e.to_string()))?;
    writeln!(out, "{s}")?;
    Ok(())
}

fn execute(
    cli: &Cli,
    lang: Lang,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, CliError> {
    let zh = lang == Lang::ZhCn;
    match &cli.command {
        Command::Init => {
            let s = open_store(cli)?;
            if zh {
                writeln!(out, "数据库：{}", cli.db.display())?;
                writeln!(out, "设备编号：{}", s.device_id())?;
                writeln!(out, "数据库版本：{}", s.schema_version()?)?;
            } else {
                writeln!(out, "store: {}", cli.db.display())?;
                writeln!(out, "device: {}", s.device_id())?;
                writeln!(out, "schema version: {}", s.schema_version()?)?;
            }
            Ok(0)
        }
        Command::Import {
            file,
            json,
            export_password_file,
        } => {
            let mut s = open_store(cli)?;
            let opts = ImportOptions { lang };
            let mut tick = |p: Progress| {
                let _ = write!(
                    err,
                    "\r{} {} …",
                    if zh { "已处理行数" } else { "lines" },
                    p.done
                );
            };
            let mut input: Box<dyn std::io::BufRead> = if file.as_os_str() == "-" {
                Box::new(BufReader::new(std::io::stdin()))
            } else {
                let f = File::open(file).map_err(|e| CliError::File {
                    path: file.display().to_string(),
                    error: e.to_string(),
                })?;
                Box::new(BufReader::new(f))
            };
            let sealed = shouhu_auth::stream::is_sealed_stream(input.fill_buf()?);
            let report = if sealed {
                let pw = file_password(
                    export_password_file
                        .as_deref()
                        .ok_or(CliError::ImportPasswordRequired)?,
                )?;
                // The whole file is checked before the first record is
                // written: a wrong password or a damaged file imports nothing.
                let mut raw = Vec::new();
                input.read_to_end(&mut raw)?;
                let mut plain = Vec::new();
                shouhu_auth::stream::OpenReader::new(raw.as_slice(), &pw)
                    .and_then(|mut r| r.read_to_end(&mut plain))
                    .map_err(sealed_io)?;
                drop(raw);
                import_jsonl(&mut s, plain.as_slice(), &opts, &mut tick)?
            } else {
                import_jsonl(&mut s, input, &opts, &mut tick)?
            };
            writeln!(err)?;
            s.audit(
                AuditAction::Import,
                AuditTarget::default(),
                json!({
                    "via": "cli",
                    "protected": sealed,
                    "lines": report.lines,
                    "created": report.created,
                    "updated": report.updated,
                    "errors": report.errors.len(),
                }),
            )?;
            if *json {
                print_json(out, &report)?;
            } else {
                for e in &report.errors {
                    if zh {
                        writeln!(err, "第{}行 [{}] {}", e.line, e.code, e.message)?;
                    } else {
                        writeln!(err, "line {} [{}] {}", e.line, e.code, e.message)?;
                    }
                }
                if zh {
                    writeln!(
                        out,
                        "共{}行：新增{}，更新{}，未变{}，错误{}",
                        report.lines,
                        report.created,
                        report.updated,
                        report.unchanged,
                        report.errors.len()
                    )?;
                } else {
                    writeln!(
                        out,
                        "{} lines: {} created, {} updated, {} unchanged, {} errors",
                        report.lines,
                        report.created,
                        report.updated,
                        report.unchanged,
                        report.errors.len()
                    )?;
                }
            }
            Ok(if report.errors.is_empty() { 0 } else { 2 })
        }
        Command::Export {
            file,
            kinds,
            without_notes,
            export_password_file,
        } => {
            let (s, who) = open_session(cli)?;
            // An encrypted store's data never leaves it in the clear.
            let seal = match export_password_file {
                Some(p) => Some(file_password(p)?),
                None if who.is_some() => return Err(CliError::ExportPasswordRequired),
                None => None,
            };
            if let Some(pw) = &seal {
                shouhu_auth::password::check_new_password(pw, "")
                    .map_err(|e| CliError::Vault(e.into()))?;
            }
            let kinds = kinds
                .iter()
                .map(|k| {
                    EntityKind::parse(k.trim()).ok_or_else(|| CliError::UnknownKind(k.clone()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let opts = ExportOptions {
                kinds,
                without_notes: *without_notes,
            };
            if !*without_notes && !s.list_all::<shouhu_core::PsychNote>()?.is_empty() {
                if let Some(u) = &who {
                    if !u.role.reads_notes() {
                        return Err(CliError::NotesForbidden);
                    }
                }
            }
            let mut quiet = |_: Progress| {};
            let sealed_export = |w: &mut dyn Write,
                                 quiet: &mut dyn FnMut(Progress)|
             -> Result<shouhu_exchange::ExportReport, CliError> {
                match &seal {
                    None => Ok(export_jsonl(&s, w, &opts, quiet)?),
                    Some(pw) => {
                        let mut sw = shouhu_auth::stream::SealWriter::new(
                            w,
                            pw,
                            shouhu_auth::password::KdfParams::INTERACTIVE,
                        )
                        .map_err(sealed_io)?;
                        let r = export_jsonl(&s, &mut sw, &opts, quiet)?;
                        sw.finish().map_err(sealed_io)?;
                        Ok(r)
                    }
                }
            };
            let report = if file.as_os_str() == "-" {
                sealed_export(&mut *out, &mut quiet)?
            } else {
                // Write beside the target and rename: a failed export never
                // leaves a half-written file under the real name.
                let tmp = file.with_extension("partial");
                let f = File::create(&tmp).map_err(|e| CliError::File {
                    path: tmp.display().to_string(),
                    error: e.to_string(),
                })?;
                let mut w = BufWriter::new(f);
                let r = sealed_export(&mut w, &mut quiet).and_then(|r| {
                    w.flush()?;
                    Ok(r)
                });
                match r {
                    Ok(r) => {
                        std::fs::rename(&tmp, file).map_err(|e| CliError::File {
                            path: file.display().to_string(),
                            error: e.to_string(),
                        })?;
                        r
                    }
                    Err(e) => {
                        let _ = std::fs::remove_file(&tmp);
                        return Err(e);
                    }
                }
            };
            s.audit(
                AuditAction::Export,
                AuditTarget::default(),
                json!({
                    "via": "cli",
                    "format": "jsonl",
                    "protected": seal.is_some(),
                    "records": report.records,
                    "without_notes": without_notes,
                }),
            )?;
            if zh {
                writeln!(
                    err,
                    "已导出{}条记录（{}字节）",
                    report.records, report.bytes
                )?;
            } else {
                writeln!(
                    err,
                    "exported {} records ({} bytes)",
                    report.records, report.bytes
                )?;
            }
            Ok(0)
        }
        Command::ExportXlsx {
            file,
            school,
            township,
            status,
            template,
            export_password_file,
            unprotected,
        } => {
            let (s, who) = open_session(cli)?;
            // An encrypted store's data leaves it password-protected, or
            // without a password only when asked for by name.
            let seal = match export_password_file {
                Some(p) => Some(file_password(p)?),
                None if who.is_some() && !*unprotected && !*template => {
                    return Err(CliError::ExportPasswordRequired)
                }
                None => None,
            };
            if let Some(pw) = &seal {
                shouhu_auth::password::check_new_password(pw, "")
                    .map_err(|e| CliError::Vault(e.into()))?;
            }
            if let Some(u) = who.as_ref().filter(|_| !*template) {
                if !shouhu_auth::role::allowed(
                    u.role,
                    shouhu_auth::Scope::County,
                    shouhu_auth::Action::Export,
                    shouhu_auth::Target::County,
                ) {
                    return Err(CliError::Forbidden(u.role.as_str(), "export children"));
                }
            }
            let own_school = who.as_ref().and_then(|u| match u.scope {
                shouhu_auth::Scope::School { school_id, .. } => Some(school_id),
                _ => None,
            });
            let (bytes, count) = if *template {
                (shouhu_exchange::template_xlsx(lang)?, 0)
            } else {
                let params = SearchParams {
                    school_id: own_school.or(*school),
                    township: township.clone(),
                    status: *status,
                    ..Default::default()
                };
                let children = shouhu_exchange::children_matching(&s, &params)?;
                let mut tick = |p: shouhu_exchange::XlsxProgress| {
                    let _ = write!(
                        err,
                        "\r{} {}/{} …",
                        if zh { "已导出" } else { "exported" },
                        p.done,
                        p.total
                    );
                };
                let (b, r) = shouhu_exchange::export_children_xlsx(&s, &children, lang, &mut tick)?;
                writeln!(err)?;
                (b, r.children)
            };
            // Excel's own "Encrypt with Password": Excel and WPS ask for it.
            let bytes = match &seal {
                None => bytes,
                Some(pw) => shouhu_exchange::protect_xlsx(&bytes, pw)?,
            };
            write_atomically(file, &bytes)?;
            if !*template {
                s.audit(
                    AuditAction::Export,
                    AuditTarget {
                        entity: Some("child".into()),
                        record_id: None,
                        school_id: own_school.or(*school),
                    },
                    json!({
                        "via": "cli",
                        "format": "xlsx",
                        "protected": seal.is_some(),
                        "children": count,
                        "filter": { "school": own_school.or(*school), "township": township, "status": status },
                    }),
                )?;
            }
            if *template {
                if zh {
                    writeln!(out, "已生成空白登记表 {}", file.display())?;
                } else {
                    writeln!(out, "wrote the empty register {}", file.display())?;
                }
            } else if zh {
                writeln!(out, "已导出{}名儿童到 {}", count, file.display())?;
            } else {
                writeln!(out, "exported {} children to {}", count, file.display())?;
            }
            Ok(0)
        }
        Command::ImportXlsx {
            file,
            json,
            export_password_file,
        } => {
            let (mut s, who) = open_session(cli)?;
            if let Some(u) = &who {
                if !shouhu_auth::role::allowed(
                    u.role,
                    shouhu_auth::Scope::County,
                    shouhu_auth::Action::WriteRecords,
                    shouhu_auth::Target::County,
                ) {
                    return Err(CliError::Forbidden(u.role.as_str(), "import children"));
                }
            }
            let only_school = who.as_ref().and_then(|u| match u.scope {
                shouhu_auth::Scope::School { school_id, .. } => Some(school_id),
                _ => None,
            });
            let bytes = std::fs::read(file).map_err(|e| CliError::File {
                path: file.display().to_string(),
                error: e.to_string(),
            })?;
            let password = export_password_file
                .as_deref()
                .map(file_password)
                .transpose()?;
            let sealed = shouhu_exchange::office_crypt::is_compound_file(&bytes);
            let opts = shouhu_exchange::XlsxImportOptions {
                lang,
                only_school,
                password,
            };
            let mut tick = |p: shouhu_exchange::XlsxProgress| {
                let _ = write!(
                    err,
                    "\r{} {}/{} …",
                    match (p.phase, zh) {
                        ("check", true) => "已检查",
                        ("check", false) => "checked",
                        (_, true) => "已写入",
                        (_, false) => "written",
                    },
                    p.done,
                    p.total
                );
            };
            let result = shouhu_exchange::import_children_xlsx(&mut s, &bytes, &opts, &mut tick);
            s.audit(
                AuditAction::Import,
                AuditTarget {
                    entity: Some("child".into()),
                    record_id: None,
                    school_id: only_school,
                },
                match &result {
                    Ok(r) => json!({
                        "via": "cli", "format": "xlsx", "protected": sealed,
                        "rows": r.rows, "created": r.created, "updated": r.updated,
                    }),
                    Err(e) => json!({
                        "via": "cli", "format": "xlsx", "protected": sealed,
                        "failed": e.code(),
                    }),
                },
            )?;
            match result {
                Ok(report) => {
                    writeln!(err)?;
                    if *json {
                        print_json(out, &report)?;
                    } else if zh {
                        writeln!(
                            out,
                            "已导入{}名儿童：新增{}，更新{}，未变{}",
                            report.rows, report.created, report.updated, report.unchanged
                        )?;
                        if !report.ignored_columns.is_empty() {
                            writeln!(
                                out,
                                "未识别的列（已忽略）：{}",
                                report.ignored_columns.join("、")
                            )?;
                        }
                    } else {
                        writeln!(
                            out,
                            "imported {} children: {} created, {} updated, {} unchanged",
                            report.rows, report.created, report.updated, report.unchanged
                        )?;
                        if !report.ignored_columns.is_empty() {
                            writeln!(
                                out,
                                "columns ignored: {}",
                                report.ignored_columns.join(", ")
                            )?;
                        }
                    }
                    Ok(0)
                }
                Err(shouhu_exchange::XlsxError::Rows { errors }) => {
                    if *json {
                        print_json(out, &json!({ "errors": errors }))?;
                    }
                    for e in &errors {
                        if zh {
                            writeln!(err, "第{}行 {} [{}] {}", e.row, e.column, e.code, e.message)?;
                        } else {
                            writeln!(err, "row {} {} [{}] {}", e.row, e.column, e.code, e.message)?;
                        }
                    }
                    let e = shouhu_exchange::XlsxError::Rows { errors };
                    writeln!(
                        err,
                        "{} [{}] {}",
                        if zh { "错误" } else { "error" },
                        e.code(),
                        e.message(lang)
                    )?;
                    Ok(2)
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Backup { file } => {
            let (s, who) = open_session(cli)?;
            if file.exists() {
                return Err(CliError::BackupExists(file.display().to_string()));
            }
            s.backup_to(file)?;
            // The keyring goes beside the copy: without it the copy (of an
            // encrypted store) opens for nobody, with it for the same users.
            let ring = shouhu_vault::keyring::path_for(&cli.db);
            if who.is_some() {
                let to = shouhu_vault::keyring::path_for(file);
                std::fs::copy(&ring, &to).map_err(|e| CliError::File {
                    path: to.display().to_string(),
                    error: e.to_string(),
                })?;
            }
            s.audit(
                AuditAction::Export,
                AuditTarget::default(),
                json!({ "via": "cli", "format": "backup", "encrypted": who.is_some() }),
            )?;
            if zh {
                writeln!(out, "已备份到 {}", file.display())?;
            } else {
                writeln!(out, "backed up to {}", file.display())?;
            }
            Ok(0)
        }
        Command::Search {
            query,
            school,
            township,
            left_behind_type,
            guardianship_type,
            status,
            sort,
            desc,
            limit,
            offset,
            json,
        } => {
            let s = open_store(cli)?;
            let page = s.search_children(&SearchParams {
                query: query.clone(),
                school_id: *school,
                township: township.clone(),
                left_behind_type: *left_behind_type,
                guardianship_type: *guardianship_type,
                status: *status,
                sort: *sort,
                descending: *desc,
                offset: *offset,
                limit: *limit,
            })?;
            if *json {
                print_json(out, &page)?;
                return Ok(0);
            }
            if page.query_kind == "unsupported" {
                let hint = if zh {
                    "无法识别的查询：请输入姓名、拼音或首字母，或至少4位身份证号"
                } else {
                    "unrecognised query: type a name, pinyin or initials, or at least 4 digits of an ID number"
                };
                writeln!(err, "{hint}")?;
                return Ok(1);
            }
            for c in &page.items {
                writeln!(
                    out,
                    "{}  {}  {}  {}  {}{}  {}",
                    c.id,
                    c.name,
                    c.birth_date.as_deref().unwrap_or("-"),
                    c.id_number_masked.as_deref().unwrap_or("-"),
                    c.grade,
                    c.class_name,
                    c.township
                )?;
            }
            if zh {
                writeln!(out, "共{}人，显示{}人", page.total, page.items.len())?;
            } else {
                writeln!(out, "{} found, {} shown", page.total, page.items.len())?;
            }
            Ok(0)
        }
        Command::Show { id, notes, json } => {
            let (s, who, keys) = open_session_keys(cli)?;
            if *notes && who.as_ref().is_some_and(|u| !u.role.reads_notes()) {
                return Err(CliError::NotesForbidden);
            }
            let mut h = s.child_history(*id, *notes)?;
            if let (Some(u), Some(k)) = (&who, &keys) {
                open_notes(&mut h.psych_notes, Some((u.user_id, k)));
            }
            let target = AuditTarget {
                entity: Some("child".into()),
                record_id: Some(*id),
                school_id: None,
            };
            s.audit(
                AuditAction::ViewChild,
                target.clone(),
                json!({ "via": "cli" }),
            )?;
            if *notes {
                s.audit(AuditAction::ViewNote, target, json!({ "via": "cli" }))?;
            }
            if *json {
                print_json(out, &h)?;
            } else {
                show::render(&h, lang, out)?;
            }
            Ok(0)
        }
        Command::Stats { json } => {
            let s = open_store(cli)?;
            let st = s.stats()?;
            if *json {
                print_json(out, &st)?;
            } else {
                show::render_stats(&st, lang, out)?;
            }
            Ok(0)
        }
        Command::Enroll {
            server,
            code,
            fingerprint,
            name,
        } => {
            let mut s = open_store(cli)?;
            let name = name.clone().unwrap_or_else(host_name);
            let rt = runtime()?;
            let r = rt.block_on(shouhu_sync::enroll(
                &mut s,
                server,
                code,
                fingerprint.as_deref(),
                &name,
            ))?;
            if zh {
                writeln!(
                    out,
                    "已登记：设备 {}，可同步学校 {} 所",
                    r.device_id,
                    r.scope.schools.len()
                )?;
            } else {
                writeln!(
                    out,
                    "enrolled: device {}, {} school(s) in scope",
                    r.device_id,
                    r.scope.schools.len()
                )?;
            }
            if let Some(fp) = shouhu_sync::status(&s)?.server_fingerprint {
                if zh {
                    writeln!(out, "已记录服务器证书指纹：{fp}")?;
                } else {
                    writeln!(out, "pinned server certificate: {fp}")?;
                }
            }
            Ok(0)
        }
        Command::Sync {
            server,
            code,
            fingerprint,
            push_batch,
            pull_page,
            json,
        } => {
            let mut s = open_store(cli)?;
            let rt = runtime()?;
            if let Some(code) = code {
                let url = server
                    .clone()
                    .ok_or(CliError::Sync(shouhu_sync::SyncError::NotEnrolled))?;
                rt.block_on(shouhu_sync::enroll(
                    &mut s,
                    &url,
                    code,
                    fingerprint.as_deref(),
                    &host_name(),
                ))?;
            } else if let Some(url) = server {
                s.set_setting(shouhu_sync::SETTING_SERVER_URL, url)?;
            }
            let opts = shouhu_sync::SyncOptions {
                push_batch: *push_batch,
                pull_page: *pull_page,
                ..Default::default()
            };
            let cancel = shouhu_sync::CancelToken::new();
            let mut last_shown = std::time::Instant::now();
            let mut progress = |p: shouhu_sync::SyncProgress| {
                if last_shown.elapsed().as_millis() < 200 && p.retry.is_none() {
                    return;
                }
                last_shown = std::time::Instant::now();
                let phase = match (p.phase, zh) {
                    (shouhu_sync::SyncPhase::Push, true) => "上传",
                    (shouhu_sync::SyncPhase::Pull, true) => "下载",
                    (shouhu_sync::SyncPhase::Push, false) => "push",
                    (shouhu_sync::SyncPhase::Pull, false) => "pull",
                };
                eprint!(
                    "\r{phase} {}/{}  ↑{} ↓{} bytes   ",
                    p.done, p.total, p.bytes_sent, p.bytes_received
                );
            };
            let report = rt.block_on(shouhu_sync::sync(&mut s, &opts, &mut progress, &cancel))?;
            eprintln!();
            if *json {
                print_json(out, &report)?;
            } else if zh {
                writeln!(
                    out,
                    "同步完成：上传{}条，下载{}条，新冲突{}条，流量↑{}字节 ↓{}字节",
                    report.pushed,
                    report.pulled,
                    report.conflicts,
                    report.bytes_up,
                    report.bytes_down
                )?;
            } else {
                writeln!(
                    out,
                    "synced: {} sent, {} received, {} new conflicts, {} bytes up, {} bytes down",
                    report.pushed,
                    report.pulled,
                    report.conflicts,
                    report.bytes_up,
                    report.bytes_down
                )?;
            }
            if !*json {
                // A school that left this device's scope (`device set-scope`).
                for p in &report.schools_removed {
                    let name = p.name.clone().unwrap_or_else(|| p.school_id.to_string());
                    if zh {
                        writeln!(
                            out,
                            "已移出本机范围的学校：{name}，本机删除{}条记录",
                            p.records
                        )?;
                    } else {
                        writeln!(
                            out,
                            "left this device's scope: {name}, {} records removed here",
                            p.records
                        )?;
                    }
                }
            }
            Ok(0)
        }
        Command::Encrypt {
            login,
            name,
            role,
            school,
            township,
        } => {
            let scope = match (school, township) {
                (Some(school_id), Some(township_id)) => shouhu_auth::Scope::School {
                    school_id: *school_id,
                    township_id: *township_id,
                },
                (None, Some(township_id)) => shouhu_auth::Scope::Township {
                    township_id: *township_id,
                },
                (None, None) => shouhu_auth::Scope::County,
                (Some(_), None) => return Err(CliError::ScopeIncomplete),
            };
            let vault = shouhu_vault::Vault::new(&cli.db).with_identity_dir(identity_dir(cli));
            let session = vault.set_up(shouhu_vault::NewUser {
                user_id: Uuid::now_v7(),
                login_name: login.clone(),
                display_name: name.clone(),
                role: *role,
                scope,
                password: password(cli)?,
            })?;
            let user = session.user().login_name.clone();
            session.lock();
            if zh {
                writeln!(
                    out,
                    "数据库已加密：{}；第一个用户：{user}",
                    cli.db.display()
                )?;
            } else {
                writeln!(
                    out,
                    "store encrypted: {}; first user: {user}",
                    cli.db.display()
                )?;
            }
            Ok(0)
        }
        Command::Demo {
            children,
            schools,
            seed,
        } => {
            let mut s = open_store(cli)?;
            demo(&mut s, *children, *schools, *seed, lang, out, err)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Output(e.to_string()))
}

fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "shouhu-device".to_string())
}

fn demo(
    s: &mut Store,
    children: usize,
    schools: usize,
    seed: u64,
    lang: Lang,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, CliError> {
    let zh = lang == Lang::ZhCn;
    let spec = shouhu_demo::DemoSpec {
        seed,
        children,
        schools: schools.max(1),
        townships: schools.clamp(1, 3),
        ..Default::default()
    };
    let report = shouhu_demo::generate(s, &spec, &mut |p| {
        let label = if zh {
            "生成演示数据"
        } else {
            "generating"
        };
        let _ = write!(err, "\r{label} {:.0}%", p.fraction() * 100.0);
    })?;
    writeln!(err)?;
    if zh {
        writeln!(
            out,
            "已生成演示数据：{}条记录（儿童{}，家访{}），用时{:.1}秒",
            report.total,
            report.count(EntityKind::Child),
            report.count(EntityKind::HomeVisit),
            report.elapsed.as_secs_f64()
        )?;
    } else {
        writeln!(
            out,
            "demo data: {} records ({} children, {} visits) in {:.1}s",
            report.total,
            report.count(EntityKind::Child),
            report.count(EntityKind::HomeVisit),
            report.elapsed.as_secs_f64()
        )?;
    }
    Ok(0)
}
