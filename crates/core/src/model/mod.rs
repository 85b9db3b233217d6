//! The domain records. Each record type is a plain serde struct (its *body*); the
//! bookkeeping every record carries (id, timestamps, authors, device, version,
//! tombstone) lives in [`Meta`] beside it, so that a field-level diff of two bodies
//! is exactly "what the user changed".

mod child;
mod conflict;
mod records;

pub use child::*;
pub use conflict::*;
pub use records::*;

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Checker, FieldErrorKind, ValidationErrors};
use crate::validate;

/// Every kind of record, with its stable wire/table name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    School,
    Child,
    Household,
    HelpPlan,
    PlanVersion,
    HomeVisit,
    VisitAmendment,
    FollowUp,
    PsychNote,
    Aid,
    Absence,
    DropoutEvent,
    PersuasionVisit,
    FamilyContact,
    SafetySession,
    ScreeningRound,
    ScreeningEntry,
    Conflict,
}

impl EntityKind {
    /// Every kind, in dependency order: a kind comes after the kinds its
    /// records refer to (schools, households, children, then what refers to
    /// them), so an export in this order imports back as it is.
    pub const ALL: [EntityKind; 18] = [
        EntityKind::School,
        EntityKind::Household,
        EntityKind::Child,
        EntityKind::HelpPlan,
        EntityKind::PlanVersion,
        EntityKind::HomeVisit,
        EntityKind::VisitAmendment,
        EntityKind::FollowUp,
        EntityKind::PsychNote,
        EntityKind::Aid,
        EntityKind::Absence,
        EntityKind::DropoutEvent,
        EntityKind::PersuasionVisit,
        EntityKind::FamilyContact,
        EntityKind::SafetySession,
        EntityKind::ScreeningRound,
        EntityKind::ScreeningEntry,
        EntityKind::Conflict,
    ];

    /// The table / wire name (`home_visit`).
    pub fn name(self) -> &'static str {
        match self {
            EntityKind::School => "school",
            EntityKind::Child => "child",
            EntityKind::Household => "household",
            EntityKind::HelpPlan => "help_plan",
            EntityKind::PlanVersion => "plan_version",
            EntityKind::HomeVisit => "home_visit",
            EntityKind::VisitAmendment => "visit_amendment",
            EntityKind::FollowUp => "follow_up",
            EntityKind::PsychNote => "psych_note",
            EntityKind::Aid => "aid",
            EntityKind::Absence => "absence",
            EntityKind::DropoutEvent => "dropout_event",
            EntityKind::PersuasionVisit => "persuasion_visit",
            EntityKind::FamilyContact => "family_contact",
            EntityKind::SafetySession => "safety_session",
            EntityKind::ScreeningRound => "screening_round",
            EntityKind::ScreeningEntry => "screening_entry",
            EntityKind::Conflict => "conflict",
        }
    }

    pub fn parse(s: &str) -> Option<EntityKind> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Log-like records are facts about a moment (a visit, an aid hand-over):
    /// two devices never edit "the same" one by accident, so sync appends them.
    /// Card-like records (child, household, plan...) merge field by field.
    pub fn is_log_like(self) -> bool {
        !matches!(
            self,
            EntityKind::School
                | EntityKind::Child
                | EntityKind::Household
                | EntityKind::HelpPlan
                | EntityKind::FollowUp
                | EntityKind::ScreeningRound
                | EntityKind::Conflict
        )
    }

    /// Psychological notes are confidential to counselors.
    pub fn is_confidential(self) -> bool {
        matches!(self, EntityKind::PsychNote)
    }

    /// Records that are never changed once written (evidence and history).
    pub fn is_immutable(self) -> bool {
        matches!(self, EntityKind::VisitAmendment | EntityKind::PlanVersion)
    }
}

/// The columns a store indexes a record by, besides its body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexCols {
    /// The school the record belongs to (sync scope). For records about a child,
    /// `None` means "the child's school" and the store fills it in.
    pub school_id: Option<Uuid>,
    pub child_id: Option<Uuid>,
    /// The record this one hangs off: a visit for a follow-up, a household for a
    /// plan, a round for a screening entry...
    pub parent_id: Option<Uuid>,
    /// The record's main calendar date (visit date, aid date...).
    pub date: Option<NaiveDate>,
}

/// A record type.
pub trait Entity:
    Serialize + DeserializeOwned + Clone + std::fmt::Debug + PartialEq + 'static
{
    const KIND: EntityKind;

    /// Normalise what people type (spaces, full-width digits, `x` in ID numbers).
    fn normalize(&mut self) {}

    /// Check every field; `today` is the users' calendar date.
    fn validate(&self, today: NaiveDate) -> Result<(), ValidationErrors>;

    fn index(&self) -> IndexCols;
}

/// The bookkeeping a store keeps beside every body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Uuid,
    pub updated_by: Uuid,
    /// The device that last wrote the record.
    pub device_id: Uuid,
    /// The server sequence number of the last synced change applied to this record
    /// (0 = never synced). An edit records it as the version it was based on.
    pub version: i64,
    pub deleted_at: Option<DateTime<Utc>>,
    pub delete_reason: Option<String>,
}

/// A record as stored: its meta and its body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored<T> {
    #[serde(flatten)]
    pub meta: Meta,
    pub body: T,
}

impl<T> Stored<T> {
    pub fn id(&self) -> Uuid {
        self.meta.id
    }
}

/// A new UUIDv7 (time-ordered).
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    Male,
    Female,
}

/// An address from large to small: 县 → 乡镇 → 村 → 组.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Address {
    pub county: String,
    pub township: String,
    pub village: String,
    pub group: String,
    /// House number or anything below the group.
    pub detail: String,
}

impl Address {
    fn normalize(&mut self) {
        for s in [
            &mut self.county,
            &mut self.township,
            &mut self.village,
            &mut self.group,
            &mut self.detail,
        ] {
            trim(s);
        }
    }

    /// `某县某镇某村某组`
    pub fn display(&self) -> String {
        [
            &self.county,
            &self.township,
            &self.village,
            &self.group,
            &self.detail,
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.as_str())
        .collect::<String>()
    }
}

// ---- small helpers shared by the record modules ----

/// [`validate::trim_text`] in place: a field with nothing to trim (nearly
/// all of them) is left as it is, without a new allocation.
pub(crate) fn trim(s: &mut String) {
    let t = s.trim_matches(validate::is_trimmed);
    if t.len() == s.len() {
        return;
    }
    let (start, len) = (t.as_ptr() as usize - s.as_ptr() as usize, t.len());
    s.truncate(start + len);
    s.drain(..start);
}

pub(crate) fn trim_opt(s: &mut Option<String>) {
    if let Some(v) = s {
        trim(v);
        if v.is_empty() {
            *s = None;
        }
    }
}

pub(crate) fn trim_vec(v: &mut Vec<String>) {
    for s in v.iter_mut() {
        trim(s);
    }
    v.retain(|s| !s.is_empty());
}

pub(crate) fn norm_phone(s: &mut Option<String>) {
    trim_opt(s);
    if let Some(p) = s {
        *p = validate::normalize_phone(p);
    }
}

pub(crate) fn norm_id(s: &mut Option<String>) {
    trim_opt(s);
    if let Some(p) = s {
        *p = validate::normalize_id_number(p);
    }
}

pub(crate) fn req(c: &mut Checker, field: &str, s: &str, max: usize) {
    c.check(validate::check_required(field, s));
    c.check(validate::check_len(field, s, max));
}

pub(crate) fn opt_len(c: &mut Checker, field: &str, s: &Option<String>, max: usize) {
    if let Some(s) = s {
        c.check(validate::check_len(field, s, max));
    }
}

pub(crate) fn opt_phone(c: &mut Checker, field: &str, s: &Option<String>) {
    if let Some(p) = s {
        c.check(validate::check_phone(field, p));
    }
}

pub(crate) fn past(c: &mut Checker, field: &str, d: NaiveDate, today: NaiveDate) {
    c.check(validate::check_not_future(field, d, today));
}

pub(crate) fn opt_past(c: &mut Checker, field: &str, d: Option<NaiveDate>, today: NaiveDate) {
    if let Some(d) = d {
        past(c, field, d, today);
    }
}

pub(crate) fn not_before(c: &mut Checker, field: &str, d: NaiveDate, other: NaiveDate) {
    if d < other {
        c.push(field, FieldErrorKind::DateBefore { date: d, other });
    }
}

pub(crate) fn nil_is_required(c: &mut Checker, field: &str, id: Uuid) {
    if id.is_nil() {
        c.push(field, FieldErrorKind::Required);
    }
}

/// The 56 ethnic groups of China (GB/T 3304), as written on forms.
pub const ETHNICITIES: [&str; 56] = [
    "汉族",
    "蒙古族",
    "回族",
    "藏族",
    "维吾尔族",
    "苗族",
    "彝族",
    "壮族",
    "布依族",
    "朝鲜族",
    "满族",
    "侗族",
    "瑶族",
    "白族",
    "土家族",
    "哈尼族",
    "哈萨克族",
    "傣族",
    "黎族",
    "傈僳族",
    "佤族",
    "畲族",
    "高山族",
    "拉祜族",
    "水族",
    "东乡族",
    "纳西族",
    "景颇族",
    "柯尔克孜族",
    "土族",
    "达斡尔族",
    "仫佬族",
    "羌族",
    "布朗族",
    "撒拉族",
    "毛南族",
    "仡佬族",
    "锡伯族",
    "阿昌族",
    "普米族",
    "塔吉克族",
    "怒族",
    "乌孜别克族",
    "俄罗斯族",
    "鄂温克族",
    "德昂族",
    "保安族",
    "裕固族",
    "京族",
    "塔塔尔族",
    "独龙族",
    "鄂伦春族",
    "赫哲族",
    "门巴族",
    "珞巴族",
    "基诺族",
];

/// Accepts `苗族` and `苗` alike; returns the canonical form.
pub fn canonical_ethnicity(s: &str) -> Option<&'static str> {
    let s = s.trim();
    ETHNICITIES
        .iter()
        .copied()
        .find(|e| *e == s || e.strip_suffix('族') == Some(s))
}

/// Run `$body` with `$T` bound to the body type of `$kind`:
/// `with_entity_type!(kind, T => store.get::<T>(id))`.
#[macro_export]
macro_rules! with_entity_type {
    ($kind:expr, $T:ident => $body:expr) => {{
        use $crate::model as m;
        match $kind {
            m::EntityKind::School => {
                type $T = m::School;
                $body
            }
            m::EntityKind::Child => {
                type $T = m::ChildCard;
                $body
            }
            m::EntityKind::Household => {
                type $T = m::Household;
                $body
            }
            m::EntityKind::HelpPlan => {
                type $T = m::HelpPlan;
                $body
            }
            m::EntityKind::PlanVersion => {
                type $T = m::PlanVersion;
                $body
            }
            m::EntityKind::HomeVisit => {
                type $T = m::HomeVisit;
                $body
            }
            m::EntityKind::VisitAmendment => {
                type $T = m::VisitAmendment;
                $body
            }
            m::EntityKind::FollowUp => {
                type $T = m::FollowUp;
                $body
            }
            m::EntityKind::PsychNote => {
                type $T = m::PsychNote;
                $body
            }
            m::EntityKind::Aid => {
                type $T = m::Aid;
                $body
            }
            m::EntityKind::Absence => {
                type $T = m::Absence;
                $body
            }
            m::EntityKind::DropoutEvent => {
                type $T = m::DropoutEvent;
                $body
            }
            m::EntityKind::PersuasionVisit => {
                type $T = m::PersuasionVisit;
                $body
            }
            m::EntityKind::FamilyContact => {
                type $T = m::FamilyContact;
                $body
            }
            m::EntityKind::SafetySession => {
                type $T = m::SafetySession;
                $body
            }
            m::EntityKind::ScreeningRound => {
                type $T = m::ScreeningRound;
                $body
            }
            m::EntityKind::ScreeningEntry => {
                type $T = m::ScreeningEntry;
                $body
            }
            m::EntityKind::Conflict => {
                type $T = m::Conflict;
                $body
            }
        }
    }};
}

#[cfg(test)]
mod trim_tests {
    use super::{trim, trim_opt, validate};

    #[test]
    fn trims_in_place_as_trim_text_does() {
        for raw in [
            "张三",
            "  张三 ",
            "\u{3000}张 三\u{3000}\t",
            "\n",
            "",
            " a",
            "b ",
            "\u{3000}\u{3000}",
        ] {
            let mut s = raw.to_string();
            trim(&mut s);
            assert_eq!(s, validate::trim_text(raw), "{raw:?}");
        }
    }

    #[test]
    fn an_optional_field_of_only_spaces_becomes_none() {
        let mut s = Some("\u{3000} ".to_string());
        trim_opt(&mut s);
        assert_eq!(s, None);
        let mut s = Some(" 李四 ".to_string());
        trim_opt(&mut s);
        assert_eq!(s.as_deref(), Some("李四"));
    }
}
