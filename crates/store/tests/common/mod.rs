//! Fixtures shared by the store's tests.
#![allow(dead_code)]

use chrono::NaiveDate;
use shouhu_core::validate::id_check_char;
use shouhu_core::*;
use shouhu_store::{Store, StoreError};
use uuid::Uuid;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
}

pub fn today() -> NaiveDate {
    d(2026, 11, 28)
}

pub fn store() -> Result<Store, StoreError> {
    let mut s = Store::open_in_memory()?;
    s.set_today(Some(today()));
    Ok(s)
}

/// A valid resident ID for a birth date and gender (region 520502, Guizhou).
pub fn id_for(birth: NaiveDate, gender: Gender, n: u32) -> String {
    let seq = (n % 50) * 2 + if gender == Gender::Male { 1 } else { 0 };
    let first17 = format!("520502{}{:03}", birth.format("%Y%m%d"), seq + 100);
    let c = id_check_char(first17.as_bytes()).unwrap_or('0');
    format!("{first17}{c}")
}

pub fn school(name: &str, township: &str) -> School {
    School {
        name: name.into(),
        code: "2152050201".into(),
        county: "织金县".into(),
        township: township.into(),
        village: "".into(),
        phone: Some("0857-7612345".into()),
    }
}

pub fn child(name: &str, gender: Gender, birth: NaiveDate, school_id: Uuid) -> ChildCard {
    ChildCard {
        name: name.into(),
        gender: Some(gender),
        ethnicity: "苗族".into(),
        birth_date: Some(birth),
        id_number: Some(id_for(birth, gender, 7)),
        hukou_registered: true,
        registered_address: "贵州省织金县八步街道".into(),
        current_address: Address {
            county: "织金县".into(),
            township: "八步街道".into(),
            village: "新寨村".into(),
            group: "第三组".into(),
            detail: "".into(),
        },
        school_id: Some(school_id),
        grade: "四年级".into(),
        class_name: "2班".into(),
        student_number: format!("G{}", id_for(birth, gender, 7)),
        father: Parent {
            name: "张建国".into(),
            work_province: "广东省".into(),
            work_city: "东莞市".into(),
            phone: Some("13812345678".into()),
            ..Default::default()
        },
        mother: Parent {
            name: "李秀英".into(),
            work_province: "浙江省".into(),
            work_city: "宁波市".into(),
            phone: Some("13987654321".into()),
            ..Default::default()
        },
        grandparents: vec![Grandparent {
            relation: GrandparentRelation::PaternalGrandmother,
            name: "王桂兰".into(),
            birth_date: Some(d(1956, 3, 2)),
        }],
        guardian: Guardian {
            name: "王桂兰".into(),
            relation: GuardianRelation::Grandparent,
            phone: Some("15185712345".into()),
            age: Some(70),
            ..Default::default()
        },
        guardianship_type: GuardianshipType::GuardianInsufficient,
        family_income_sources: vec![IncomeSource::MigrantWork, IncomeSource::Farming],
        assistance: vec![Assistance::Dibao],
        poverty_registered: true,
        pairing_teacher: "刘老师".into(),
        ..Default::default()
    }
}

pub fn visit(child_id: Uuid, date: NaiveDate) -> HomeVisit {
    HomeVisit {
        child_id: Some(child_id),
        visit_date: Some(date),
        mode: VisitMode::Home,
        visitors: vec!["刘老师".into()],
        present: vec!["奶奶".into()],
        living_conditions: "住砖房，屋内整洁".into(),
        hazards: vec![Hazard::WaterNearby],
        problems_found: "作业无人辅导".into(),
        help_given: "送去课外读物".into(),
        campaign: Some("2026年暑期家访".into()),
        ..Default::default()
    }
}

/// `n` visits of `child` with long texts in one write: about one WAL page
/// each, to take the WAL past its checkpoint threshold (1,000 pages).
pub fn big_write(s: &mut Store, child_id: Uuid, n: usize) -> Result<(), StoreError> {
    s.write(|w| {
        for i in 0..n {
            let mut v = visit(child_id, d(2026, 7, 1));
            v.problems_found = format!("{i}：{}", "作业无人辅导，".repeat(150));
            w.create(v)?;
        }
        Ok(())
    })
}

/// The length of a file, 0 if it does not exist.
pub fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Waits (at most 30 s) until the database file at `path` is longer than
/// `than` and stopped growing: the WAL's pages were checkpointed into it. Returns whether it
/// happened.
pub fn wait_for_checkpoint(path: &std::path::Path, than: u64) -> bool {
    // The file grows as the checkpoint copies pages into it; it is done when
    // the size has stopped changing (a write that starts while a checkpoint
    // is still copying cannot start the WAL over, and appends to it).
    let mut last = 0;
    let mut still = 0;
    for _ in 0..600 {
        let len = file_len(path);
        if len > than {
            if len == last {
                still += 1;
                if still >= 4 {
                    return true;
                }
            } else {
                still = 0;
            }
        }
        last = len;
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

/// `path` with `suffix` appended (`-wal`, `-shm`).
pub fn side_file(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    p.into()
}
