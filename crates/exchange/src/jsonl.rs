//! JSON Lines import and export.
//!
//! One record per line:
//!
//! ```json
//! {"type":"child","id":"0193…","record":{"name":"张三", …},"meta":{…}}
//! ```
//!
//! - `type`: the record kind (`school`, `household`, `child`, `help_plan`,
//!   `plan_version`, `home_visit`, `visit_amendment`, `follow_up`,
//!   `psych_note`, `aid`, `absence`, `dropout_event`, `persuasion_visit`,
//!   `family_contact`, `safety_session`, `screening_round`, `screening_entry`).
//! - `id`: the record's UUID. Optional on import (a new UUIDv7 is made); an
//!   existing id updates that record (an identical line changes nothing).
//! - `record`: the record body, as `shouhu-core` serialises it.
//! - `meta`: written by export (created/updated instants and authors, the
//!   version), ignored by import.
//!
//! Export writes kinds in dependency order (schools, households, children,
//! then what refers to them), so its output imports back as it is.
//!
//! Import keeps every good line and reports every bad one with its line number,
//! code and message. Lines are applied in batches, one transaction a batch and
//! one savepoint a line: a bad line leaves nothing behind, a good line is
//! written whole with its change-log entry.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shouhu_core::*;
use shouhu_store::{Store, StoreError, Upsert, Writer};
use uuid::Uuid;

use crate::error::ExchangeError;

/// Kinds in the order an import needs them.
pub const EXPORT_ORDER: [EntityKind; 18] = EntityKind::ALL;

/// Lines per transaction.
const BATCH: usize = 1000;

/// One bad line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineError {
    pub line: usize,
    pub code: String,
    pub message: String,
    pub details: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportReport {
    pub lines: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub errors: Vec<LineError>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Progress {
    /// Lines (import) or records (export) done.
    pub done: usize,
    /// Bytes read so far (import) or written (export).
    pub bytes: u64,
}

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Language of the messages in the report.
    pub lang: Lang,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    record: Value,
}

/// Import JSON Lines from `input`. Blank lines are skipped. Only I/O and
/// database failures abort (what was committed before them stays, whole).
pub fn import_jsonl(
    store: &mut Store,
    mut input: impl BufRead,
    opts: &ImportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<ImportReport, ExchangeError> {
    let mut report = ImportReport::default();
    let mut bytes = 0u64;
    let mut lineno = 0usize;
    let mut batch: Vec<(usize, String)> = Vec::with_capacity(BATCH);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = input
            .read_until(b'\n', &mut buf)
            .map_err(|e| ExchangeError::Read(e.to_string()))?;
        let eof = n == 0;
        if !eof {
            bytes += n as u64;
            lineno += 1;
            match String::from_utf8(std::mem::take(&mut buf)) {
                Ok(text) if text.trim().is_empty() => {}
                Ok(text) => batch.push((lineno, text)),
                Err(_) => {
                    report.lines += 1;
                    report.errors.push(line_error(
                        lineno,
                        "import.not_utf8",
                        opts.lang,
                        Value::Null,
                    ));
                }
            }
        }
        if batch.len() >= BATCH || (eof && !batch.is_empty()) {
            apply_batch(store, &batch, opts, &mut report)?;
            batch.clear();
            progress(Progress {
                done: lineno,
                bytes,
            });
        }
        if eof {
            break;
        }
    }
    Ok(report)
}

fn apply_batch(
    store: &mut Store,
    batch: &[(usize, String)],
    opts: &ImportOptions,
    report: &mut ImportReport,
) -> Result<(), ExchangeError> {
    let mut outcomes: Vec<Result<Upsert, LineError>> = Vec::with_capacity(batch.len());
    store.write(|w| {
        outcomes.clear();
        for (line, text) in batch {
            let r = w.attempt(|w| import_line(w, text));
            outcomes.push(match r {
                Ok(u) => Ok(u),
                Err(LineFailure::Store(StoreError::Sqlite(e))) => {
                    // The database itself failed: abort the whole import.
                    return Err(StoreError::Sqlite(e));
                }
                Err(f) => Err(f.into_line_error(*line, opts.lang)),
            });
        }
        Ok(())
    })?;
    for o in outcomes {
        report.lines += 1;
        match o {
            Ok(Upsert::Created) => report.created += 1,
            Ok(Upsert::Updated) => report.updated += 1,
            Ok(Upsert::Unchanged) => report.unchanged += 1,
            Err(e) => report.errors.push(e),
        }
    }
    Ok(())
}

/// Why one line failed.
enum LineFailure {
    Json(String),
    UnknownType(String),
    BadId(String),
    Malformed(String),
    Store(StoreError),
}

impl From<StoreError> for LineFailure {
    fn from(e: StoreError) -> Self {
        LineFailure::Store(e)
    }
}

impl LineFailure {
    fn into_line_error(self, line: usize, lang: Lang) -> LineError {
        match self {
            LineFailure::Json(e) => {
                line_error(line, "import.malformed_json", lang, json!({ "error": e }))
            }
            LineFailure::UnknownType(t) => {
                line_error(line, "import.unknown_type", lang, json!({ "type": t }))
            }
            LineFailure::BadId(id) => line_error(line, "import.bad_id", lang, json!({ "id": id })),
            LineFailure::Malformed(e) => {
                line_error(line, "record.malformed", lang, json!({ "error": e }))
            }
            LineFailure::Store(e) => LineError {
                line,
                code: e.code().to_string(),
                message: e.message(lang),
                details: e.details(lang),
            },
        }
    }
}

fn line_error(line: usize, code: &str, lang: Lang, details: Value) -> LineError {
    let zh = lang == Lang::ZhCn;
    let detail = |k: &str| {
        details
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let message = match code {
        "import.not_utf8" if zh => "这一行不是UTF-8编码的文字".to_string(),
        "import.not_utf8" => "the line is not UTF-8 text".to_string(),
        "import.malformed_json" if zh => format!("这一行不是有效的JSON：{}", detail("error")),
        "import.malformed_json" => format!("the line is not valid JSON: {}", detail("error")),
        "import.unknown_type" if zh => format!("未知的记录类型“{}”", detail("type")),
        "import.unknown_type" => format!("unknown record type “{}”", detail("type")),
        "import.bad_id" if zh => format!("记录编号“{}”不是有效的UUID", detail("id")),
        "import.bad_id" => format!("record id “{}” is not a valid UUID", detail("id")),
        "record.malformed" if zh => format!("记录内容格式不正确：{}", detail("error")),
        _ => format!("the record's fields are malformed: {}", detail("error")),
    };
    LineError {
        line,
        code: code.to_string(),
        message,
        details,
    }
}

fn import_line(w: &mut Writer<'_>, text: &str) -> Result<Upsert, LineFailure> {
    let env: Envelope = serde_json::from_str(text).map_err(|e| LineFailure::Json(e.to_string()))?;
    let kind = EntityKind::parse(&env.kind).ok_or(LineFailure::UnknownType(env.kind))?;
    let id = match env.id {
        None => new_id(),
        Some(s) => Uuid::parse_str(&s).map_err(|_| LineFailure::BadId(s))?,
    };
    shouhu_core::with_entity_type!(kind, T => {
        let body: T = serde_json::from_value(env.record)
            .map_err(|e| LineFailure::Malformed(e.to_string()))?;
        Ok(w.upsert_with_id(id, body)?)
    })
}

#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Only these kinds (all when empty).
    pub kinds: Vec<EntityKind>,
    /// Leave psychological notes out (the default for anyone but counselors).
    pub without_notes: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExportReport {
    pub records: usize,
    pub bytes: u64,
}

/// Write live records as JSON Lines, streaming (constant memory).
pub fn export_jsonl(
    store: &Store,
    mut out: impl Write,
    opts: &ExportOptions,
    progress: &mut dyn FnMut(Progress),
) -> Result<ExportReport, ExchangeError> {
    let mut report = ExportReport::default();
    for kind in EXPORT_ORDER {
        if !opts.kinds.is_empty() && !opts.kinds.contains(&kind) {
            continue;
        }
        if opts.without_notes && kind.is_confidential() {
            continue;
        }
        let mut io_err = None;
        store
            .for_each_raw(kind, false, |raw| {
                let meta = raw.meta()?;
                let line = json!({
                    "type": kind.name(),
                    "id": raw.id,
                    "record": raw.body_value()?,
                    "meta": {
                        "created_at": meta.created_at,
                        "updated_at": meta.updated_at,
                        "created_by": meta.created_by,
                        "updated_by": meta.updated_by,
                        "device_id": meta.device_id,
                        "version": meta.version,
                    },
                });
                let mut text = serde_json::to_string(&line)?;
                text.push('\n');
                if let Err(e) = out.write_all(text.as_bytes()) {
                    io_err = Some(e.to_string());
                    return Err(StoreError::Open("write failed".into()));
                }
                report.records += 1;
                report.bytes += text.len() as u64;
                if report.records % 1000 == 0 {
                    progress(Progress {
                        done: report.records,
                        bytes: report.bytes,
                    });
                }
                Ok(())
            })
            .map_err(|e| match io_err.take() {
                Some(msg) => ExchangeError::Write(msg),
                None => ExchangeError::Store(e),
            })?;
    }
    out.flush()
        .map_err(|e| ExchangeError::Write(e.to_string()))?;
    progress(Progress {
        done: report.records,
        bytes: report.bytes,
    });
    Ok(report)
}
