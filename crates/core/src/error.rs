//! Validation errors: one stable machine `code` per kind of mistake, a field path,
//! and messages in zh-CN and en. The UI translates by `code`; the messages here
//! serve the CLI, logs and any client that has no catalog of its own.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::labels::field_label;

/// The error shape every layer serialises: `{code, message, details}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    pub details: Value,
}

/// Message language for [`FieldError::message`] and friends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    ZhCn,
    En,
}

/// What is wrong with one field. Variants carry what the message needs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FieldErrorKind {
    #[error("required")]
    Required,
    #[error("too long (max {max} characters)")]
    TooLong { max: usize },
    #[error("ID number is a 15-digit legacy number")]
    IdNumberLegacy15,
    #[error("ID number must have 18 characters, found {len}")]
    IdNumberLength { len: usize },
    #[error("ID number may only contain digits and a final X")]
    IdNumberCharacters,
    #[error("ID number region code {region} is not a valid province")]
    IdNumberRegion { region: String },
    #[error("ID number check digit should be {expected}, found {found}")]
    IdNumberChecksum { expected: char, found: char },
    #[error("ID number contains an impossible birth date {raw}")]
    IdNumberBirthDateInvalid { raw: String },
    #[error("ID number birth date {id_birth} differs from birth date {card_birth}")]
    IdNumberBirthDateMismatch {
        id_birth: NaiveDate,
        card_birth: NaiveDate,
    },
    #[error("ID number gender digit does not match the gender")]
    IdNumberGenderMismatch,
    #[error("not a valid mobile or landline number")]
    PhoneInvalid,
    #[error("date {date} is in the future")]
    DateInFuture { date: NaiveDate },
    #[error("date {date} is too early")]
    DateTooEarly { date: NaiveDate },
    #[error("date {date} is before {other}")]
    DateBefore { date: NaiveDate, other: NaiveDate },
    #[error("amount must not be negative")]
    AmountNegative,
    #[error("value out of range {min}..={max}")]
    OutOfRange { min: i64, max: i64 },
    #[error("unknown value {value}")]
    UnknownValue { value: String },
    #[error("at least one of child or household is required")]
    ChildOrHousehold,
    #[error("a sealed note must not carry its text in plain")]
    PlaintextBesideSealed,
    #[error("the sealed note is not an encrypted note")]
    SealedMalformed,
}

/// One field's error: `field` is the dotted path in the record (`father.phone`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {kind}")]
pub struct FieldError {
    pub field: String,
    pub kind: FieldErrorKind,
}

impl FieldError {
    pub fn new(field: impl Into<String>, kind: FieldErrorKind) -> Self {
        Self {
            field: field.into(),
            kind,
        }
    }

    /// Stable machine code, e.g. `id_number.checksum`.
    pub fn code(&self) -> &'static str {
        use FieldErrorKind::*;
        match self.kind {
            Required => "field.required",
            TooLong { .. } => "field.too_long",
            IdNumberLegacy15 => "id_number.legacy_15",
            IdNumberLength { .. } => "id_number.length",
            IdNumberCharacters => "id_number.characters",
            IdNumberRegion { .. } => "id_number.region",
            IdNumberChecksum { .. } => "id_number.checksum",
            IdNumberBirthDateInvalid { .. } => "id_number.birth_date_invalid",
            IdNumberBirthDateMismatch { .. } => "id_number.birth_date_mismatch",
            IdNumberGenderMismatch => "id_number.gender_mismatch",
            PhoneInvalid => "phone.invalid",
            DateInFuture { .. } => "date.in_future",
            DateTooEarly { .. } => "date.too_early",
            DateBefore { .. } => "date.before",
            AmountNegative => "amount.negative",
            OutOfRange { .. } => "field.out_of_range",
            UnknownValue { .. } => "field.unknown_value",
            ChildOrHousehold => "visit.child_or_household",
            PlaintextBesideSealed => "psych_note.plaintext_beside_sealed",
            SealedMalformed => "psych_note.sealed_malformed",
        }
    }

    /// Human message naming the field, in the given language.
    pub fn message(&self, lang: Lang) -> String {
        use FieldErrorKind::*;
        let f = field_label(&self.field, lang);
        match (lang, &self.kind) {
            (Lang::ZhCn, Required) => format!("{f}不能为空，请填写"),
            (Lang::En, Required) => format!("{f} is required"),
            (Lang::ZhCn, TooLong { max }) => format!("{f}太长，最多{max}个字"),
            (Lang::En, TooLong { max }) => format!("{f} is too long (at most {max} characters)"),
            (Lang::ZhCn, IdNumberLegacy15) => {
                format!("{f}是15位旧号码，请填写18位居民身份证号")
            }
            (Lang::En, IdNumberLegacy15) => {
                format!("{f} is an old 15-digit number; enter the 18-character resident ID")
            }
            (Lang::ZhCn, IdNumberLength { len }) => {
                format!("{f}应为18位，现在是{len}位，请核对")
            }
            (Lang::En, IdNumberLength { len }) => {
                format!("{f} must have 18 characters, it has {len}")
            }
            (Lang::ZhCn, IdNumberCharacters) => {
                format!("{f}只能由数字组成，最后一位可以是X")
            }
            (Lang::En, IdNumberCharacters) => {
                format!("{f} may only contain digits, with an X as the last character")
            }
            (Lang::ZhCn, IdNumberRegion { region }) => {
                format!("{f}前6位地区码{region}不正确，请核对")
            }
            (Lang::En, IdNumberRegion { region }) => {
                format!("{f} starts with an unknown region code {region}")
            }
            (Lang::ZhCn, IdNumberChecksum { expected, found }) => format!(
                "{f}第18位校验码不正确（应为{expected}，填写的是{found}），请核对"
            ),
            (Lang::En, IdNumberChecksum { expected, found }) => format!(
                "{f}: the check digit (18th character) should be {expected}, not {found}"
            ),
            (Lang::ZhCn, IdNumberBirthDateInvalid { raw }) => {
                format!("{f}中的出生日期{raw}不存在，请核对第7至14位")
            }
            (Lang::En, IdNumberBirthDateInvalid { raw }) => {
                format!("{f} contains an impossible birth date {raw} (characters 7–14)")
            }
            (Lang::ZhCn, IdNumberBirthDateMismatch { id_birth, card_birth }) => format!(
                "{f}中的出生日期（{}）与填写的出生日期（{}）不一致",
                zh_date(*id_birth),
                zh_date(*card_birth)
            ),
            (Lang::En, IdNumberBirthDateMismatch { id_birth, card_birth }) => format!(
                "{f}: its birth date {id_birth} differs from the birth date entered ({card_birth})"
            ),
            (Lang::ZhCn, IdNumberGenderMismatch) => {
                format!("{f}第17位表示的性别与填写的性别不一致")
            }
            (Lang::En, IdNumberGenderMismatch) => {
                format!("{f}: the 17th digit does not match the gender entered")
            }
            (Lang::ZhCn, PhoneInvalid) => {
                format!("{f}格式不正确：手机号为1开头的11位数字，座机如0851-82345678")
            }
            (Lang::En, PhoneInvalid) => format!(
                "{f} is not a valid number: a mobile has 11 digits starting with 1, a landline looks like 0851-82345678"
            ),
            (Lang::ZhCn, DateInFuture { date }) => {
                format!("{f}（{}）不能晚于今天", zh_date(*date))
            }
            (Lang::En, DateInFuture { date }) => format!("{f} ({date}) cannot be in the future"),
            (Lang::ZhCn, DateTooEarly { date }) => format!("{f}（{}）太早，请核对", zh_date(*date)),
            (Lang::En, DateTooEarly { date }) => format!("{f} ({date}) is implausibly early"),
            (Lang::ZhCn, DateBefore { date, other }) => format!(
                "{f}（{}）不能早于{}",
                zh_date(*date),
                zh_date(*other)
            ),
            (Lang::En, DateBefore { date, other }) => {
                format!("{f} ({date}) cannot be before {other}")
            }
            (Lang::ZhCn, AmountNegative) => format!("{f}不能为负数"),
            (Lang::En, AmountNegative) => format!("{f} cannot be negative"),
            (Lang::ZhCn, OutOfRange { min, max }) => format!("{f}应在{min}到{max}之间"),
            (Lang::En, OutOfRange { min, max }) => format!("{f} must be between {min} and {max}"),
            (Lang::ZhCn, UnknownValue { value }) => format!("{f}的值“{value}”不在可选范围内"),
            (Lang::En, UnknownValue { value }) => format!("{f}: unknown value “{value}”"),
            (Lang::ZhCn, ChildOrHousehold) => "家访记录必须关联儿童或家庭".to_string(),
            (Lang::En, ChildOrHousehold) => "A visit must name a child or a household".to_string(),
            (Lang::ZhCn, PlaintextBesideSealed) => {
                "加密的心理辅导记录不能同时保存明文内容".to_string()
            }
            (Lang::En, PlaintextBesideSealed) => {
                "An encrypted note must not also carry its text in plain".to_string()
            }
            (Lang::ZhCn, SealedMalformed) => "心理辅导记录的密文格式不正确".to_string(),
            (Lang::En, SealedMalformed) => "The encrypted note is malformed".to_string(),
        }
    }

    pub fn details(&self) -> Value {
        use FieldErrorKind::*;
        let mut d = json!({ "field": self.field });
        let extra = match &self.kind {
            TooLong { max } => json!({ "max": max }),
            IdNumberLength { len } => json!({ "length": len }),
            IdNumberRegion { region } => json!({ "region": region }),
            IdNumberChecksum { expected, found } => {
                json!({ "expected": expected.to_string(), "found": found.to_string() })
            }
            IdNumberBirthDateInvalid { raw } => json!({ "raw": raw }),
            IdNumberBirthDateMismatch {
                id_birth,
                card_birth,
            } => json!({ "id_birth": id_birth, "card_birth": card_birth }),
            DateInFuture { date } | DateTooEarly { date } => json!({ "date": date }),
            DateBefore { date, other } => json!({ "date": date, "other": other }),
            OutOfRange { min, max } => json!({ "min": min, "max": max }),
            UnknownValue { value } => json!({ "value": value }),
            _ => Value::Null,
        };
        if let (Some(d), Value::Object(e)) = (d.as_object_mut(), extra) {
            d.extend(e);
        }
        d
    }

    pub fn body(&self, lang: Lang) -> ErrorBody {
        ErrorBody {
            code: self.code().to_string(),
            message: self.message(lang),
            details: self.details(),
        }
    }
}

/// All the field errors of one record. Its code is the first error's code, so a
/// single mistake gets its specific code; `details.errors` lists every one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct ValidationErrors {
    pub errors: Vec<FieldError>,
}

impl ValidationErrors {
    pub fn code(&self) -> &'static str {
        self.errors
            .first()
            .map(FieldError::code)
            .unwrap_or("validation.failed")
    }

    pub fn message(&self, lang: Lang) -> String {
        let sep = match lang {
            Lang::ZhCn => "；",
            Lang::En => "; ",
        };
        self.errors
            .iter()
            .map(|e| e.message(lang))
            .collect::<Vec<_>>()
            .join(sep)
    }

    pub fn details(&self, lang: Lang) -> Value {
        json!({
            "errors": self.errors.iter().map(|e| {
                let b = e.body(lang);
                json!({ "code": b.code, "message": b.message, "details": b.details })
            }).collect::<Vec<_>>()
        })
    }

    pub fn has(&self, code: &str) -> bool {
        self.errors.iter().any(|e| e.code() == code)
    }
}

/// Collects field errors while a record is checked.
#[derive(Debug, Default)]
pub struct Checker {
    errors: Vec<FieldError>,
}

impl Checker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, field: impl Into<String>, kind: FieldErrorKind) {
        self.errors.push(FieldError::new(field, kind));
    }

    pub fn check(&mut self, r: Result<(), FieldError>) {
        if let Err(e) = r {
            self.errors.push(e);
        }
    }

    pub fn finish(self) -> Result<(), ValidationErrors> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors {
                errors: self.errors,
            })
        }
    }
}

/// `2026年11月28日`
pub fn zh_date(d: NaiveDate) -> String {
    d.format("%Y年%-m月%-d日").to_string()
}
