//! The child card (儿童档案卡), with the fields of the MCA registration form
//! 农村留守儿童基本情况登记表, grouped as on the paper form.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::*;
use crate::error::{Checker, FieldErrorKind, ValidationErrors};
use crate::validate;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    #[default]
    Healthy,
    Disabled,
    Ill,
}

/// 残疾类别 (GB/T 26341).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisabilityCategory {
    Visual,
    Hearing,
    Speech,
    Physical,
    Intellectual,
    Mental,
    Multiple,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    pub status: HealthStatus,
    pub disability_category: Option<DisabilityCategory>,
    /// 残疾等级 1 (most severe) to 4.
    pub disability_grade: Option<u8>,
    pub illness: Option<String>,
}

/// 就学阶段.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchoolingStage {
    Kindergarten,
    NotInKindergarten,
    #[default]
    Primary,
    Junior,
    Senior,
    Vocational,
    DroppedOut,
    NotInSchool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Parent {
    pub name: String,
    pub birth_date: Option<NaiveDate>,
    pub id_number: Option<String>,
    /// Where they work, to city level: province and city.
    pub work_province: String,
    pub work_city: String,
    pub phone: Option<String>,
    pub deceased: bool,
    /// How often they call home, as told (e.g. 每周).
    pub contact_frequency: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrandparentRelation {
    PaternalGrandfather,
    PaternalGrandmother,
    MaternalGrandfather,
    MaternalGrandmother,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grandparent {
    pub relation: GrandparentRelation,
    pub name: String,
    pub birth_date: Option<NaiveDate>,
}

/// 留守类型.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftBehindType {
    /// 父母均外出务工
    #[default]
    BothAway,
    /// 父亲外出务工
    FatherAway,
    /// 母亲外出务工
    MotherAway,
    /// 父亲外出，母亲无监护能力
    FatherAwayMotherUnable,
    /// 母亲外出，父亲无监护能力
    MotherAwayFatherUnable,
}

/// 委托监护人与儿童的关系.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardianRelation {
    #[default]
    Grandparent,
    OtherRelative,
    Entrusted,
    None,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Guardian {
    pub name: String,
    pub relation: GuardianRelation,
    pub phone: Option<String>,
    pub id_number: Option<String>,
    pub address: String,
    pub age: Option<u8>,
    pub health: Option<String>,
}

/// 监护类型, from most to least urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardianshipType {
    /// 无人监护
    Unattended,
    /// 父或母无监护能力
    ParentIncapable,
    /// 受委托监护人监护能力不足
    GuardianInsufficient,
    /// 监护情况一般
    #[default]
    Fair,
    /// 监护情况较好
    Good,
}

/// 家庭收入来源.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncomeSource {
    MigrantWork,
    Farming,
    Livestock,
    Business,
    Subsidy,
    Other,
}

/// 享受救助情况.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assistance {
    /// 低保
    Dibao,
    /// 临时救助
    Temporary,
    /// 医疗救助
    Medical,
    /// 住房救助
    Housing,
    Other,
}

/// 辍学风险.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropoutRisk {
    /// 学习困难
    LearningDifficulty,
    /// 厌学
    SchoolWeary,
    /// 家庭困难
    FamilyHardship,
    Other,
}

/// 儿童状态.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildStatus {
    #[default]
    Active,
    ParentsReturned,
    Graduated,
    Transferred,
    DroppedOut,
    AgedOut,
}

/// 安全提醒: how urgently a counselor asks teachers to act.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SafetyAlert {
    #[default]
    None,
    /// 需关注: watch the child, tell the counselor of changes.
    Watch,
    /// 紧急: act today (do not leave the child alone, call the guardian).
    Urgent,
}

/// 心理关注标记: all a teacher sees of a child's counseling. The counselor
/// sets it and writes the alert text for teachers; the notes themselves stay
/// sealed for counselors (see [`crate::PsychNote`]). Only roles that may
/// write the counseling flag change it (checked in the app and on the server).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CounselingFlag {
    /// 心理辅导中
    pub active: bool,
    pub since: Option<NaiveDate>,
    pub alert: SafetyAlert,
    /// What teachers should know or do (written for them, not a note).
    pub alert_text: String,
}

/// 儿童档案卡.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChildCard {
    // 儿童基本情况
    pub name: String,
    pub gender: Option<Gender>,
    pub ethnicity: String,
    pub birth_date: Option<NaiveDate>,
    /// 居民身份证号; some children have none yet.
    pub id_number: Option<String>,
    pub hukou_registered: bool,
    pub registered_address: String,
    pub current_address: Address,
    pub health: Health,
    // 就学情况
    pub boarding: bool,
    pub schooling_stage: SchoolingStage,
    pub school_id: Option<Uuid>,
    pub grade: String,
    pub class_name: String,
    /// 学籍号
    pub student_number: String,
    pub dropout_risks: Vec<DropoutRisk>,
    // 家庭情况
    pub household_id: Option<Uuid>,
    pub father: Parent,
    pub mother: Parent,
    pub grandparents: Vec<Grandparent>,
    pub left_behind_type: LeftBehindType,
    pub family_income_sources: Vec<IncomeSource>,
    // 监护情况
    pub guardian: Guardian,
    pub guardianship_type: GuardianshipType,
    // 帮扶情况
    pub assistance: Vec<Assistance>,
    /// 建档立卡贫困户
    pub poverty_registered: bool,
    pub pairing_teacher: String,
    pub pairing_teacher_phone: Option<String>,
    pub status: ChildStatus,
    pub status_date: Option<NaiveDate>,
    pub status_reason: Option<String>,
    pub notes: String,
    /// 心理关注标记 (counselors write it; everyone of the school reads it).
    pub counseling: CounselingFlag,
}

impl Entity for ChildCard {
    const KIND: EntityKind = EntityKind::Child;

    fn normalize(&mut self) {
        trim(&mut self.name);
        trim(&mut self.counseling.alert_text);
        if let Some(e) = canonical_ethnicity(&self.ethnicity) {
            self.ethnicity = e.to_string();
        } else {
            trim(&mut self.ethnicity);
        }
        norm_id(&mut self.id_number);
        trim(&mut self.registered_address);
        self.current_address.normalize();
        trim_opt(&mut self.health.illness);
        for s in [
            &mut self.grade,
            &mut self.class_name,
            &mut self.student_number,
            &mut self.pairing_teacher,
            &mut self.notes,
        ] {
            trim(s);
        }
        self.student_number = validate::normalize_text(&self.student_number);
        for p in [&mut self.father, &mut self.mother] {
            trim(&mut p.name);
            norm_id(&mut p.id_number);
            norm_phone(&mut p.phone);
            trim(&mut p.work_province);
            trim(&mut p.work_city);
            trim_opt(&mut p.contact_frequency);
        }
        for g in &mut self.grandparents {
            trim(&mut g.name);
        }
        trim(&mut self.guardian.name);
        norm_phone(&mut self.guardian.phone);
        norm_id(&mut self.guardian.id_number);
        trim(&mut self.guardian.address);
        trim_opt(&mut self.guardian.health);
        norm_phone(&mut self.pairing_teacher_phone);
        trim_opt(&mut self.status_reason);
        dedup(&mut self.dropout_risks);
        dedup(&mut self.family_income_sources);
        dedup(&mut self.assistance);
    }

    fn validate(&self, today: NaiveDate) -> Result<(), ValidationErrors> {
        let mut c = Checker::new();
        req(&mut c, "name", &self.name, 40);
        c.check(validate::check_len(
            "counseling.alert_text",
            &self.counseling.alert_text,
            500,
        ));
        if self.counseling.alert != SafetyAlert::None && self.counseling.alert_text.is_empty() {
            c.push("counseling.alert_text", FieldErrorKind::Required);
        }
        if let Some(d) = self.counseling.since {
            past(&mut c, "counseling.since", d, today);
        }
        if self.gender.is_none() {
            c.push("gender", FieldErrorKind::Required);
        }
        match self.birth_date {
            None => c.push("birth_date", FieldErrorKind::Required),
            Some(b) => past(&mut c, "birth_date", b, today),
        }
        if !self.ethnicity.is_empty() && canonical_ethnicity(&self.ethnicity).is_none() {
            c.push(
                "ethnicity",
                FieldErrorKind::UnknownValue {
                    value: self.ethnicity.clone(),
                },
            );
        }
        if let Some(id) = &self.id_number {
            c.check(
                validate::check_id_number_for("id_number", id, self.birth_date, self.gender)
                    .map(|_| ()),
            );
        }
        if let Some(g) = self.health.disability_grade {
            if !(1..=4).contains(&g) {
                c.push(
                    "health.disability_grade",
                    FieldErrorKind::OutOfRange { min: 1, max: 4 },
                );
            }
        }
        for (key, p) in [("father", &self.father), ("mother", &self.mother)] {
            opt_len(&mut c, &format!("{key}.name"), &Some(p.name.clone()), 40);
            if let Some(id) = &p.id_number {
                c.check(
                    validate::check_id_number_for(
                        &format!("{key}.id_number"),
                        id,
                        p.birth_date,
                        None,
                    )
                    .map(|_| ()),
                );
            }
            opt_phone(&mut c, &format!("{key}.phone"), &p.phone);
            opt_past(&mut c, &format!("{key}.birth_date"), p.birth_date, today);
        }
        for (i, g) in self.grandparents.iter().enumerate() {
            opt_past(
                &mut c,
                &format!("grandparents.{i}.birth_date"),
                g.birth_date,
                today,
            );
        }
        opt_phone(&mut c, "guardian.phone", &self.guardian.phone);
        if let Some(id) = &self.guardian.id_number {
            c.check(validate::check_id_number("guardian.id_number", id).map(|_| ()));
        }
        opt_phone(&mut c, "pairing_teacher_phone", &self.pairing_teacher_phone);
        opt_past(&mut c, "status_date", self.status_date, today);
        if self.status != ChildStatus::Active
            && self.status_reason.as_deref().unwrap_or("").is_empty()
        {
            c.push("status_reason", FieldErrorKind::Required);
        }
        c.finish()
    }

    fn index(&self) -> IndexCols {
        IndexCols {
            school_id: self.school_id,
            child_id: None,
            parent_id: self.household_id,
            date: self.birth_date,
        }
    }
}

fn dedup<T: PartialEq + Copy>(v: &mut Vec<T>) {
    let mut out: Vec<T> = Vec::with_capacity(v.len());
    for x in v.iter() {
        if !out.contains(x) {
            out.push(*x);
        }
    }
    *v = out;
}

impl ChildCard {
    /// Age in whole years on `on`.
    pub fn age_on(&self, on: NaiveDate) -> Option<u32> {
        self.birth_date.and_then(|b| on.years_since(b))
    }
}
