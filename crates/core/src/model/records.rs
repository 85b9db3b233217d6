//! Every record other than the child card.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::*;
use crate::error::{Checker, FieldErrorKind, ValidationErrors};
use crate::validate;

// ---------------------------------------------------------------- school

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct School {
    pub name: String,
    /// 学校标识码 (10 digits) where known.
    pub code: String,
    pub county: String,
    pub township: String,
    pub village: String,
    pub phone: Option<String>,
}

impl Entity for School {
    const KIND: EntityKind = EntityKind::School;
    fn normalize(&mut self) {
        for s in [
            &mut self.name,
            &mut self.county,
            &mut self.township,
            &mut self.village,
        ] {
            trim(s);
        }
        self.code = validate::normalize_text(&self.code);
        norm_phone(&mut self.phone);
    }
    fn validate(&self, _today: NaiveDate) -> Result<(), ValidationErrors> {
        let mut c = Checker::new();
        req(&mut c, "name", &self.name, 60);
        req(&mut c, "township", &self.township, 40);
        opt_phone(&mut c, "phone", &self.phone);
        c.finish()
    }
    fn index(&self) -> IndexCols {
        IndexCols::default()
    }
}

// ---------------------------------------------------------------- household and plan

/// 家庭: siblings share one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Household {
    /// How staff call it, e.g. 张家 (组长张建国户).
    pub label: String,
    pub school_id: Option<Uuid>,
    pub address: Address,
    pub head_name: String,
    pub phone: Option<String>,
    pub notes: String,
}

impl Entity for Household {
    const KIND: EntityKind = EntityKind::Household;
    fn normalize(&mut self) {
        trim(&mut self.label);
        trim(&mut self.head_name);
        trim(&mut self.notes);
        self.address.normalize();
        norm_phone(&mut self.phone);
    }
    fn validate(&self, _today: NaiveDate) -> Result<(), ValidationErrors> {
        let mut c = Checker::new();
        req(&mut c, "label", &self.label, 60);
        opt_phone(&mut c, "phone", &self.phone);
        c.finish()
    }
    fn index(&self) -> IndexCols {
        IndexCols {
            school_id: self.school_id,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeasureKind {
    /// 学业辅导
    Tutoring,
    /// 心理疏导
    Counseling,
    /// 救助资助
    Aid,
    /// 监护人培训
    GuardianTraining,
    /// 亲情联系安排
    FamilyContact,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measure {
    pub kind: MeasureKind,
    pub description: String,
    pub responsible: String,
    #[serde(default)]
    pub due_date: Option<NaiveDate>,
}

/// 帮扶计划 (一户一策). A revision through the store archives the previous
/// content as a [`PlanVersion`] and bumps `revision`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HelpPlan {
    pub household_id: Uuid,
    pub school_id: Option<Uuid>,
    pub needs: Vec<String>,
    pub measures: Vec<Measure>,
    pub responsible_people: Vec<String>,
    pub review_date: Option<NaiveDate>,
    pub approved_by: Option<String>,
    pub revision: u32,
    /// Why this revision was made.
    pub revision_note: String,
}

impl Entity for HelpPlan {
    const KIND: EntityKind = EntityKind::HelpPlan;
    fn normalize(&mut self) {
        trim_vec(&mut self.needs);
        trim_vec(&mut self.responsible_people);
        for m in &mut self.measures {
            trim(&mut m.description);
            trim(&mut m.responsible);
        }
        trim_opt(&mut self.approved_by);
        trim(&mut self.revision_note);
    }
    fn validate(&self, _today: NaiveDate) -> Result<(), ValidationErrors> {
        let mut c = Checker::new();
        nil_is_required(&mut c, "household_id", self.household_id);
        if self.needs.is_empty() {
            c.push("needs", FieldErrorKind::Required);
        }
        if self.measures.is_empty() {
            c.push("measures", FieldErrorKind::Required);
        }
        for (i, m) in self.measures.iter().enumerate() {
            req(
                &mut c,
                &format!("measures.{i}.description"),
                &m.description,
                500,
            );
            req(
                &mut c,
                &format!("measures.{i}.responsible"),
                &m.responsible,
                40,
            );
        }
        if self.review_date.is_none() {
            c.push("review_date", FieldErrorKind::Required);
        }
        c.finish()
    }
    fn index(&self) -> IndexCols {
        IndexCols {
            school_id: self.school_id,
            parent_id: Some(self.household_id),
            date: self.review_date,
            ..Default::default()
        }
    }
}

/// An earlier content of a help plan, kept when the plan is revised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanVersion {
    pub plan_id: Uuid,
    pub school_id: Option<Uuid>,
    pub revision: u32,
    pub content: HelpPlan,
    /// When that content was replaced.
    pub superseded_at: DateTime<Utc>,
}

impl Entity for PlanVersion {
    const KIND: EntityKind = EntityKind::PlanVersion;
    fn validate(&self, _today: NaiveDate) -> Result<(), ValidationErrors> {
        let mut c = Checker::new();
        nil_is_required(&mut c, "plan_id", self.plan_id);
        c.finish()
    }
    fn index(&self) -> IndexCols {
        IndexCols {
            school_id: self.school_id,
            parent_id: Some(self.plan_id),
            ..Default::default()
        }
    }
}

// ---------------------------------------------------------------- home visits

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitMode {
    #[default]
    Home,
    Phone,
    Video,
    AtSchool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hazard {
    ElectricWiring,
    WaterNearby,
    Fire,
    Traffic,
    Building,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitStatus {
    #[default]
    Draft,
    Finalised,
}

/// 家访记录. Drafts are edited freely; a finalised visit is evidence and is only
/// ever amended through [`VisitAmendment`] records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HomeVisit {
    pub child_id: Option<Uuid>,
    pub household_id: Option<Uuid>,
    pub school_id: Option<Uuid>,
    pub visit_date: Option<NaiveDate>,
    pub mode: VisitMode,
    pub visitors: Vec<String>,
    pub present: Vec<String>,
    pub living_conditions: String,
    pub hazards: Vec<Hazard>,
    pub hazard_notes: String,
    pub study: String,
    pub mood: String,
    pub problems_found: String,
    pub help_given: String,
    /// e.g. 2026年暑期家访
    pub campaign: Option<String>,
    pub status: VisitStatus,
    pub finalised_at: Option<DateTime<Utc>>,
}

impl Entity for HomeVisit {
    const KIND: EntityKind = EntityKind::HomeVisit;
    fn normalize(&mut self) {
        trim_vec(&mut self.visitors);
        trim_vec(&mut self.present);
        for s in [
            &mut self.living_conditions,
            &mut self.hazard_notes,
            &mut self.study,
            &mut self.mood,
            &mut self.problems_found,
            &mut self.help_given,
        ] {
            trim(s);
        }
        trim_opt(&mut self.campaign);
    }
    fn validate(&self, today: NaiveDate) -> Result<(), ValidationErrors> {
        let mut c = Checker::new();
        if self.child_id.is_none() && self.household_id.is_none() {
            c.push("child_id", FieldErrorKind::ChildOrHousehold);
        }
        match self.visit_date {
            Some(d) => past(&mut c, "visit_date", d, today),
            None => c.push("visit_date", FieldErrorKind::Required),
        }
        if self.status == VisitStatus::Finalised && self.visitors.is_empty() {
            c.push("visitors", FieldErrorKind::Required);
        }
        for (f, s) in [
            ("living_conditions", &self.living_conditions),
            ("problems_found", &self.problems_found),
            ("help_given", &self.help_given),
        ] {
            c.check(validate::check_len(f, s, 4000));
        }
        c.finish()
    }
    fn index(&self) -> IndexCols {
        IndexCols {
            school_id: self.school_id,
            child_id: self.child_id,
            parent_id: self.household_id,
            date: self.visit_date,
        }
    }
}

/// A correction of one field of a finalised visit, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitAmendment {
    pub visit_id: Uuid,
    pub child_id: Option<Uuid>,
    pub school_id: Option<Uuid>,
    /// The field of the visit body (`problems_found`).
    pub field: String,
    pub old_value: Value,
    pub new_value: Value,
    pub reason: String,
}

impl Entity for VisitAmendment {
    const KIND: EntityKind = EntityKind::VisitAmendment;
    fn normalize(&mut self) {
        trim(&mut self.reason);
    }
    fn validate(&self, _today: NaiveDate) -> Result<(), ValidationErrors> {
        let mut c = Checker::new();
        nil_is_required(&mut c, "visit_id", self.visit_id);
        req(&mut c, "field", &self.field, 60);
        req(&mut c, "reason", &self.reason, 500);
        c.finish()
    }
    fn index(&self) -> IndexCols {
        IndexCols {
            school_id: self.school_id,
            child_id: self.child_id,
            parent_id: Some(self.visit_id),
            date: None,
        }
    }
}

/// 跟进事项 found on a visit, with a due date.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FollowUp {
    pub visit_id: Option<Uuid>,
    pub child_id: Option<Uuid>,
    pub school_id: Option<Uuid>,
    pub action: String,
    pub assignee: String,
    pub due_date: Option<NaiveDate>,
    pub done: bool,
    pub done_date: Option<NaiveDate>,
    pub outcome: String,
}

impl Entity for FollowUp {
    const KIND: EntityKind = EntityKind::FollowUp;
    fn normalize(&mut self) {
        trim(&mut self.action);
        trim(&mut self.assignee);
        trim(&mut self.outcome);
    }
    fn validate(&self, today: NaiveDate) -> Result<(), ValidationErrors> {
        let mut c = Checker::new();
        req(&mut c, "action", &self.action, 500);
        if self.due_date.is_none() {
            c.push("due_date", FieldErrorKind::Required);
        }
        if self.done && self.done_date.is_none() {
            c.push("done_date", FieldErrorKind::Required);
        }
        opt_past(&mut c, "done_date", self.done_date, today);
        c.finish()
    }
    fn index(&self) -> IndexCols {
        IndexCols {
            school_id: self.school_id,
            child_id: self.child_id,
            parent_id: self.visit_id,
            date: self.due_date,
        }
    }
}

// ---------------------------------------------------------------- psychological notes

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    #[default]
    Individual,
    Group,
    Crisis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    #[default]
    Low,
    Medium,
    High,
    Crisis,
}

/// 心理辅导记录: confidential to counselors.
///
/// A note is written **sealed**: its confidential part ([`PsychNoteContent`])
/// is encrypted on the counselor's device for each allowed reader
/// (`shouhu_auth::note::EncryptedNote`, as JSON in [`PsychNote::sealed`]),
/// and the plain fields of that part stay empty. Only the child, the school
/// and the session date travel in plain (a teacher already sees that a child
/// is under counseling through [`crate::CounselingFlag`] on the card). A note
/// without `sealed` is a legacy plain note (written before notes were sealed,
/// or imported): it stays readable, and a counselor seals it by saving it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PsychNote {
    pub child_id: Uuid,
    pub school_id: Option<Uuid>,
    pub session_date: Option<NaiveDate>,
    pub kind: SessionKind,
    pub presenting_issue: String,
    pub scale: Option<String>,
    pub score: Option<f64>,
    pub risk_level: RiskLevel,
    pub intervention: String,
    pub referral: Option<String>,
    pub next_session: Option<NaiveDate>,
    /// The sealed [`PsychNoteContent`]: an `EncryptedNote` as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed: Option<serde_json::Value>,
}

/// The confidential part of a [`PsychNote`]: what is sealed for its readers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PsychNoteContent {
    pub kind: SessionKind,
    pub presenting_issue: String,
    pub scale: Option<String>,
    pub score: Option<f64>,
    pub risk_level: RiskLevel,
    pub intervention: String,
    pub referral: Option<String>,
    pub next_session: Option<NaiveDate>,
}

impl PsychNote {
    /// The confidential part as it stands in the plain fields (a legacy note,
    /// or a note being written before it is sealed).
    pub fn content(&self) -> PsychNoteContent {
        PsychNoteContent {
            kind: self.kind,
            presenting_issue: self.presenting_issue.clone(),
            scale: self.scale.clone(),
            score: self.score,
            risk_level: self.risk_level,
            intervention: self.intervention.clone(),
            referral: self.referral.clone(),
            next_session: self.next_session,
        }
    }

    /// Put `content` into the plain fields (to validate it, or to show a
    /// note opened by its reader).
    pub fn set_content(&mut self, content: PsychNoteContent) {
        self.kind = content.kind;
        self.presenting_issue = content.presenting_issue;
        self.scale = content.scale;
        self.score = content.score;
        self.risk_level = content.risk_level;
        self.intervention = content.intervention;
        self.referral = content.referral;
        self.next_session = content.next_session;
    }

    /// This note as stored and synced: `sealed` set, the plain fields of
    /// the confidential part emptied.
    pub fn into_sealed(mut self, sealed: serde_json::Value) -> PsychNote {
        self.set_content(PsychNoteContent::default());
        self.sealed = Some(sealed);
        self
    }

    pub fn is_sealed(&self) -> bool {
        self.sealed.is_some()
    }

    /// What a change to a note would put in plain that belongs sealed: the
    /// confidential fields it carries with a value other than the empty one,
    /// and `sealed` itself when a create lacks it or an update clears it.
    /// `fields` is a change's (a create's whole body, an update's dotted
    /// paths). Empty: the change keeps the note sealed. The server refuses
    /// notes that are not, so no note text ever reaches it in plain.
    pub fn plaintext_in_change(op: crate::Op, fields: &Value) -> Vec<String> {
        let empty = serde_json::to_value(PsychNoteContent::default()).unwrap_or(Value::Null);
        let mut found = Vec::new();
        match op {
            crate::Op::Create => {
                for (k, v) in fields.as_object().into_iter().flatten() {
                    if empty.get(k).is_some_and(|e| e != v) {
                        found.push(k.clone());
                    }
                }
                if !fields.get("sealed").is_some_and(Value::is_object) {
                    found.push("sealed".to_string());
                }
            }
            crate::Op::Update => {
                for (k, v) in fields.as_object().into_iter().flatten() {
                    let top = k.split('.').next().unwrap_or(k);
                    if top == "sealed" {
                        if k == "sealed" && !v.is_object() {
                            found.push(k.clone());
                        }
                    } else if empty.get(top).is_some_and(|e| e != v) {
                        found.push(k.clone());
                    }
                }
            }
            _ => {}
        }
        found.sort();
        found
    }
}

impl Entity for PsychNote {
    const KIND: EntityKind = EntityKind::PsychNote;
    fn normalize(&mut self) {
        trim(&mut self.presenting_issue);
        trim(&mut self.intervention);
        trim_opt(&mut self.scale);
        trim_opt(&mut self.referral);
    }
    fn validate(&self, today: NaiveDate) -> Result<(), ValidationErrors> {
        let mut c = Checker::new();
        nil_is_required(&mut c, "child_id", self.child_id);
        if let Some(d) = self.session_date {
            past(&mut c, "session_date", d, today);
        } else {
            c.push("session_date", FieldErrorKind::Required);
        }
        match &self.sealed {
            // The content was checked before it was sealed (its writer ran
            // `validate` on the plain note); here only that nothing leaks.
            Some(sealed) => {
                if self.content() != PsychNoteContent::default() {
                    c.push("sealed", FieldErrorKind::PlaintextBesideSealed);
                }
                let looks_sealed = sealed.get("ciphertext").is_some_and(|v| v.is_string())
                    && sealed.get("readers").is_some_and(|v| v.is_array());
                if !looks_sealed {
                    c.push("sealed", FieldErrorKind::SealedMalformed);
                }
            }
            None => {
                if let (Some(d), Some(n)) = (self.session_date, self.next_session) {
                    not_before(&mut c, "next_session", n, d);
                }
                req(&mut c, "presenting_issue", &self.presenting_issue, 4000);
                if self.score.is_some_and(|s| !s.is_finite()) {
                    c.push("score", FieldErrorKind::OutOfRange { min: 0, max: 1000 });
                }
            }
        }
        c.finish()
    }
    fn index(&self) -> IndexCols {
        IndexCols {
            school_id: self.school_id,
            child_id: Some(self.child_id),
            parent_id: None,
            date: self.session_date,
        }
    }
}

// ---------------------------------------------------------------- aid

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AidKind {
    #[default]
    Cash,
    Goods,
    BoardingSubsidy,
    Other,
}

/// 救助与资助. `amount_fen` is exact money in fen (分).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Aid {
    pub child_id: Uuid,
    pub school_id: Option<Uuid>,
    pub date: Option<NaiveDate>,
    pub kind: AidKind,
    pub items: String,
    pub amount_fen: i64,
    pub fund_source: String,
    pub fund_year: i32,
    pub handed_over_by: String,
}

impl Entity for Aid {
    const KIND: EntityKind = EntityKind::Aid;
    fn normalize(&mut self) {
        trim(&mut self.items);
        trim(&mut self.fund_source);
        trim(&mut self.handed_over_by);
    }
    fn validate(&self, today: NaiveDate) -> Result<(), ValidationErrors> {
        let mut c = Checker::new();
        nil_is_required(&mut c, "child_id", self.child_id);
        match self.date {
            Some(d) => past(&mut c, "date", d, today),
            None => c.push("date", FieldErrorKind::Required),
        }
        c.check(validate::check_amount("amount_fen", self.amount_fen));
        if self.kind == AidKind::Goods && self.items.is_empty() {
            c.push("items", FieldErrorKind::Required);
        }
        req(&mut c, "fund_source", &self.fund_source, 100);
        if !(2000..=2100).contains(&self.fund_year) {
            c.push(
                "fund_year",
                FieldErrorKind::OutOfRange {
                    min: 2000,
                    max: 2100,
                },
            );
        }
        req(&mut c, "handed_over_by", &self.handed_over_by, 40);
        c.finish()
    }
    fn index(&self) -> IndexCols {
        IndexCols {
            school_id: self.school_id,
            child_id: Some(self.child_id),
            parent_id: None,
            date: self.date,
        }
    }
}

// ---------------------------------------------------------------- attendance and dropout

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbsenceReason {
    Sick,
    Personal,
    #[default]
    Unexcused,
    Other,
}

/// 缺勤.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Absence {
    pub child_id: Uuid,
    pub school_id: Option<Uuid>,
    pub date: Option<NaiveDate>,
    /// Half-days missed.
    pub half_days: u16,
    pub reason: AbsenceReason,
    pub note: String,
}

impl Entity for Absence {
    const KIND: EntityKind = EntityKind::Absence;
    fn normalize(&mut self) {
        trim(&mut self.note);
    }
    fn validate(&self, today: NaiveDate) -> Result<(), ValidationErrors> {
        let mut c = Checker::new();
        nil_is_required(&mut c, "child_id", self.child_id);
        match self.date {
            Some(d) => past(&mut c, "date", d, today),
            None => c.push("date", FieldErrorKind::Required),
        }
        if !(1..=60).contains(&self.half_days) {
            c.push("half_days", FieldErrorKind::OutOfRange { min: 1, max: 60 });
        }
        c.finish()
    }
    fn index(&self) -> IndexCols {
        IndexCols {
            school_id: self.school_id,
            child_id: Some(self.child_id),
            parent_id: None,
            date: self.date,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropoutReason {
    SchoolWeary,
    LearningDifficulty,
    FamilyHardship,
    WentToWork,
    Illness,
    Marriage,
    #[default]
    Other,
}

/// 辍学事件.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DropoutEvent {
    pub child_id: Uuid,
    pub school_id: Option<Uuid>,
    pub date: Option<NaiveDate>,
    pub reason: DropoutReason,
    pub note: String,
}

impl Entity for DropoutEvent {
    const KIND: EntityKind = EntityKind::DropoutEvent;
    fn normalize(&mut self) {
        trim(&mut self.note);
    }
    fn validate(&self, today: NaiveDate) -> Result<(), ValidationErrors> {
        let mut c = Checker::new();
        nil_is_required(&mut c, "child_id", self.child_id);
        match self.date {
            Some(d) => past(&mut c, "date", d, today),
            None => c.push("date", FieldErrorKind::Required),
        }
        c.finish()
    }
    fn index(&self) -> IndexCols {
        IndexCols {
            school_id: self.school_id,
            child_id: Some(self.child_id),
            parent_id: None,
            date: self.date,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersuasionOutcome {
    Returned,
    Promised,
    #[default]
    Refused,
    Other,
}

/// 劝返: a visit to persuade a dropped-out child to return.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PersuasionVisit {
    pub child_id: Uuid,
    pub dropout_event_id: Option<Uuid>,
    pub school_id: Option<Uuid>,
    pub date: Option<NaiveDate>,
    pub visitors: Vec<String>,
    pub outcome: PersuasionOutcome,
    pub return_date: Option<NaiveDate>,
    pub note: String,
}

impl Entity for PersuasionVisit {
    const KIND: EntityKind = EntityKind::PersuasionVisit;
    fn normalize(&mut self) {
        trim_vec(&mut self.visitors);
        trim(&mut self.note);
    }
    fn validate(&self, today: NaiveDate) -> Result<(), ValidationErrors> {
        let mut c = Checker::new();
        nil_is_required(&mut c, "child_id", self.child_id);
        match self.date {
            Some(d) => {
                past(&mut c, "date", d, today);
                if let Some(r) = self.return_date {
                    not_before(&mut c, "return_date", r, d);
                }
            }
            None => c.push("date", FieldErrorKind::Required),
        }
        if self.visitors.is_empty() {
            c.push("visitors", FieldErrorKind::Required);
        }
        if self.outcome == PersuasionOutcome::Returned && self.return_date.is_none() {
            c.push("return_date", FieldErrorKind::Required);
        }
        c.finish()
    }
    fn index(&self) -> IndexCols {
        IndexCols {
            school_id: self.school_id,
            child_id: Some(self.child_id),
            parent_id: self.dropout_event_id,
            date: self.date,
        }
    }
}

// ---------------------------------------------------------------- family contact

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactMode {
    #[default]
    Phone,
    Video,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactWith {
    Father,
    Mother,
    #[default]
    Both,
    Other,
}

/// 亲情联系: a call or video chat with parents arranged by the school.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FamilyContact {
    pub child_id: Uuid,
    pub school_id: Option<Uuid>,
    pub date: Option<NaiveDate>,
    pub mode: ContactMode,
    pub with_whom: ContactWith,
    pub minutes: Option<u16>,
    pub arranged_by: String,
    pub note: String,
}

impl Entity for FamilyContact {
    const KIND: EntityKind = EntityKind::FamilyContact;
    fn normalize(&mut self) {
        trim(&mut self.arranged_by);
        trim(&mut self.note);
    }
    fn validate(&self, today: NaiveDate) -> Result<(), ValidationErrors> {
        let mut c = Checker::new();
        nil_is_required(&mut c, "child_id", self.child_id);
        match self.date {
            Some(d) => past(&mut c, "date", d, today),
            None => c.push("date", FieldErrorKind::Required),
        }
        if let Some(m) = self.minutes {
            if !(1..=600).contains(&m) {
                c.push("minutes", FieldErrorKind::OutOfRange { min: 1, max: 600 });
            }
        }
        c.finish()
    }
    fn index(&self) -> IndexCols {
        IndexCols {
            school_id: self.school_id,
            child_id: Some(self.child_id),
            parent_id: None,
            date: self.date,
        }
    }
}

// ---------------------------------------------------------------- safety education

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SafetyTopic {
    #[default]
    Drowning,
    FireElectricity,
    Traffic,
    Food,
    Disease,
    Strangers,
    Other,
}

/// 安全教育 session with its attendees (child ids).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SafetySession {
    pub school_id: Uuid,
    pub date: Option<NaiveDate>,
    pub topic: SafetyTopic,
    pub title: String,
    pub presenter: String,
    pub attendees: Vec<Uuid>,
}

impl Entity for SafetySession {
    const KIND: EntityKind = EntityKind::SafetySession;
    fn normalize(&mut self) {
        trim(&mut self.title);
        trim(&mut self.presenter);
        self.attendees.sort();
        self.attendees.dedup();
    }
    fn validate(&self, today: NaiveDate) -> Result<(), ValidationErrors> {
        let mut c = Checker::new();
        nil_is_required(&mut c, "school_id", self.school_id);
        match self.date {
            Some(d) => past(&mut c, "date", d, today),
            None => c.push("date", FieldErrorKind::Required),
        }
        req(&mut c, "title", &self.title, 100);
        c.finish()
    }
    fn index(&self) -> IndexCols {
        IndexCols {
            school_id: Some(self.school_id),
            child_id: None,
            parent_id: None,
            date: self.date,
        }
    }
}

// ---------------------------------------------------------------- screening rounds

/// 排查: a school's yearly (or post-emergency) re-confirmation of its list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScreeningRound {
    pub school_id: Uuid,
    pub name: String,
    pub year: i32,
    pub started_on: Option<NaiveDate>,
    pub closed: bool,
}

impl Entity for ScreeningRound {
    const KIND: EntityKind = EntityKind::ScreeningRound;
    fn normalize(&mut self) {
        trim(&mut self.name);
    }
    fn validate(&self, today: NaiveDate) -> Result<(), ValidationErrors> {
        let mut c = Checker::new();
        nil_is_required(&mut c, "school_id", self.school_id);
        req(&mut c, "name", &self.name, 60);
        if !(2000..=2100).contains(&self.year) {
            c.push(
                "year",
                FieldErrorKind::OutOfRange {
                    min: 2000,
                    max: 2100,
                },
            );
        }
        opt_past(&mut c, "started_on", self.started_on, today);
        c.finish()
    }
    fn index(&self) -> IndexCols {
        IndexCols {
            school_id: Some(self.school_id),
            child_id: None,
            parent_id: None,
            date: self.started_on,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScreeningOutcome {
    Added,
    #[default]
    Confirmed,
    Removed,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScreeningEntry {
    pub round_id: Uuid,
    pub child_id: Uuid,
    pub school_id: Option<Uuid>,
    pub outcome: ScreeningOutcome,
    /// Required when removed (父母返乡, 转学...).
    pub reason: Option<String>,
    pub date: Option<NaiveDate>,
}

impl Entity for ScreeningEntry {
    const KIND: EntityKind = EntityKind::ScreeningEntry;
    fn normalize(&mut self) {
        trim_opt(&mut self.reason);
    }
    fn validate(&self, today: NaiveDate) -> Result<(), ValidationErrors> {
        let mut c = Checker::new();
        nil_is_required(&mut c, "round_id", self.round_id);
        nil_is_required(&mut c, "child_id", self.child_id);
        if self.outcome == ScreeningOutcome::Removed && self.reason.is_none() {
            c.push("reason", FieldErrorKind::Required);
        }
        opt_past(&mut c, "date", self.date, today);
        c.finish()
    }
    fn index(&self) -> IndexCols {
        IndexCols {
            school_id: self.school_id,
            child_id: Some(self.child_id),
            parent_id: Some(self.round_id),
            date: self.date,
        }
    }
}
