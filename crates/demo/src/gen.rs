//! The generator: a county's records, one household at a time, in an order
//! where every reference points at a record already emitted.
//!
//! Four independent random streams (ChaCha8, one seed, four stream numbers)
//! keep parts of the county stable when other parts are switched off: the
//! schools and children of a seed are the same with or without visits and
//! with or without the other records.

use std::collections::{HashSet, VecDeque};

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc, Weekday};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use shouhu_core::validate::id_check_char;
use shouhu_core::*;
use uuid::{Builder, Uuid};

use crate::names;
use crate::pick::{
    date_between, days_after, days_before, mobile, pick, pick_weighted, sample_indices,
};
use crate::places::*;
use crate::texts::*;
use crate::{DemoSpec, Record};

mod extras;

const STREAM_SCHOOLS: u64 = 1;
const STREAM_CHILDREN: u64 = 2;
const STREAM_VISITS: u64 = 3;
const STREAM_EXTRAS: u64 = 4;

fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// Deterministic UUIDv7s: a timestamp counting up from a base, random bits
/// from the stream's generator.
struct Ids {
    base_ms: u64,
    n: u64,
}

impl Ids {
    fn new(today: NaiveDate, stream: u64) -> Ids {
        let base = Utc
            .from_utc_datetime(&today.and_time(chrono::NaiveTime::MIN))
            .timestamp_millis()
            .max(0) as u64;
        Ids {
            // Streams start an hour apart so their ids never share a millisecond.
            base_ms: base.saturating_sub(8 * 3_600_000) + stream * 3_600_000,
            n: 0,
        }
    }

    fn next(&mut self, rng: &mut impl Rng) -> Uuid {
        self.n += 1;
        let mut bytes = [0u8; 10];
        rng.fill(&mut bytes);
        Builder::from_unix_timestamp_millis(self.base_ms + self.n, &bytes).into_uuid()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Primary,
    Junior,
    Both,
}

impl Stage {
    fn admits(self, grade: u8) -> bool {
        match self {
            Stage::Primary => grade <= 6,
            Stage::Junior => grade >= 7,
            Stage::Both => true,
        }
    }
}

struct SchoolInfo {
    id: Uuid,
    stage: Stage,
    teachers: Vec<(String, String)>,
    principal: String,
    classes: u8,
    round: Option<(Uuid, NaiveDate)>,
    /// Active children (only kept when the safety sessions need them).
    active: Vec<Uuid>,
}

struct TownshipInfo {
    name: &'static str,
    villages: Vec<&'static str>,
    schools: Vec<usize>,
}

/// What the visit and extras streams need to know about a child.
struct ChildFacts {
    id: Uuid,
    school: usize,
    household: Uuid,
    name: String,
    grade: u8,
    boarding: bool,
    needy: bool,
    guardian: String,
    father: String,
    teacher: (String, String),
    lbt: LeftBehindType,
    status: ChildStatus,
    status_date: Option<NaiveDate>,
    status_reason: Option<String>,
    dropout: Option<Dropout>,
}

struct Dropout {
    date: NaiveDate,
    reason: DropoutReason,
    note: &'static str,
    returned: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    Households,
    Safety,
    Done,
}

/// An iterator over a county's records; see [`crate::records`].
pub struct Records {
    spec: DemoSpec,
    today: NaiveDate,
    school_year: i32,
    rs: ChaCha8Rng,
    rc: ChaCha8Rng,
    rv: ChaCha8Rng,
    re: ChaCha8Rng,
    ids_s: Ids,
    ids_c: Ids,
    ids_v: Ids,
    ids_e: Ids,
    townships: Vec<TownshipInfo>,
    schools: Vec<SchoolInfo>,
    visit_counts: Vec<u16>,
    next_child: usize,
    used_ids: HashSet<String>,
    phase: Phase,
    queue: VecDeque<Record>,
}

impl Records {
    pub(crate) fn new(spec: &DemoSpec, today: NaiveDate) -> Records {
        let seed = spec.seed;
        let school_year = if today.month() >= 9 {
            today.year()
        } else {
            today.year() - 1
        };
        let mut g = Records {
            spec: spec.clone(),
            today,
            school_year,
            rs: rng_for(seed, STREAM_SCHOOLS),
            rc: rng_for(seed, STREAM_CHILDREN),
            rv: rng_for(seed, STREAM_VISITS),
            re: rng_for(seed, STREAM_EXTRAS),
            ids_s: Ids::new(today, STREAM_SCHOOLS),
            ids_c: Ids::new(today, STREAM_CHILDREN),
            ids_v: Ids::new(today, STREAM_VISITS),
            ids_e: Ids::new(today, STREAM_EXTRAS),
            townships: Vec::new(),
            schools: Vec::new(),
            visit_counts: Vec::new(),
            next_child: 0,
            used_ids: HashSet::new(),
            phase: Phase::Start,
            queue: VecDeque::new(),
        };
        let n = spec.children;
        let total = spec.total_visits();
        if n > 0 && total > 0 {
            g.visit_counts = vec![0u16; n];
            for _ in 0..total {
                let i = g.rv.gen_range(0..n);
                g.visit_counts[i] = g.visit_counts[i].saturating_add(1);
            }
        }
        g
    }

    fn step(&mut self) -> bool {
        match self.phase {
            Phase::Start => {
                self.build_county();
                self.phase = Phase::Households;
            }
            Phase::Households => {
                if self.next_child >= self.spec.children {
                    self.phase = Phase::Safety;
                } else {
                    self.household();
                }
            }
            Phase::Safety => {
                if self.spec.extras {
                    self.safety_sessions();
                }
                self.phase = Phase::Done;
            }
            Phase::Done => return false,
        }
        true
    }

    // ------------------------------------------------------------ county

    fn build_county(&mut self) {
        let n_schools = self.spec.schools.max(1);
        let n_town = self.spec.townships.clamp(1, TOWNSHIPS.len()).min(n_schools);
        let rng = &mut self.rs;
        let mut vstart = 0;
        for &name in TOWNSHIPS.iter().take(n_town) {
            let k = rng.gen_range(6..=9);
            let villages = (0..k)
                .map(|j| VILLAGES[(vstart + j) % VILLAGES.len()])
                .collect();
            vstart += k;
            self.townships.push(TownshipInfo {
                name,
                villages,
                schools: Vec::new(),
            });
        }
        for i in 0..n_schools {
            self.townships[i % n_town].schools.push(i);
        }
        let per_school = self.spec.children / n_schools + 1;
        let mut schools: Vec<(usize, SchoolInfo, School)> = Vec::new();
        for t in 0..n_town {
            let town = &self.townships[t];
            let count = town.schools.len();
            for (k, &i) in town.schools.iter().enumerate() {
                let (stage, name, village) = if count == 1 {
                    (
                        Stage::Both,
                        format!("{COUNTY}{}九年一贯制学校", town.name),
                        town.villages[0],
                    )
                } else if k == 0 {
                    (
                        Stage::Junior,
                        format!("{COUNTY}{}中学", town.name),
                        town.villages[0],
                    )
                } else if k == 1 {
                    (
                        Stage::Primary,
                        format!("{COUNTY}{}中心小学", town.name),
                        town.villages[0],
                    )
                } else {
                    let v = town.villages[(k - 1) % town.villages.len()];
                    let short = v.trim_end_matches('村');
                    // Two schools of a township in one village get a number.
                    let lap = (k - 1) / town.villages.len();
                    let name = if lap == 0 {
                        format!("{COUNTY}{}{short}小学", town.name)
                    } else {
                        format!("{COUNTY}{}{short}第{}小学", town.name, lap + 1)
                    };
                    (Stage::Primary, name, v)
                };
                // Classes per grade hold every pupil, not only the
                // left-behind ones: a village school has one or two.
                let classes = match (stage, k) {
                    (Stage::Junior, _) => rng.gen_range(4..=10),
                    (Stage::Primary, 1) => rng.gen_range(3..=6),
                    (Stage::Primary, _) => rng.gen_range(1..=2),
                    (Stage::Both, _) => rng.gen_range(1..=3),
                };
                let n_teachers = (4 + per_school / 25).min(60);
                let teachers: Vec<(String, String)> = (0..n_teachers)
                    .map(|_| (names::teacher(rng), mobile(rng)))
                    .collect();
                let id = self.ids_s.next(rng);
                let body = School {
                    name,
                    code: format!("21{}{:04}", &COUNTY_CODE[..4], 2400 + i),
                    county: COUNTY.to_string(),
                    township: town.name.to_string(),
                    village: village.to_string(),
                    phone: Some(format!(
                        "{AREA_CODE}-7{:06}",
                        rng.gen_range(100_000..1_000_000)
                    )),
                };
                let principal = teachers[0].0.clone();
                schools.push((
                    i,
                    SchoolInfo {
                        id,
                        stage,
                        teachers,
                        principal,
                        classes,
                        round: None,
                        active: Vec::new(),
                    },
                    body,
                ));
            }
        }
        schools.sort_by_key(|(i, _, _)| *i);
        for (_, info, body) in schools {
            self.queue
                .push_back(Record::School(info.id, Box::new(body)));
            self.schools.push(info);
        }
        if self.spec.extras {
            self.screening_rounds();
        }
    }

    fn screening_rounds(&mut self) {
        let today = self.today;
        let (year, start, season) = if today.month() >= 9 {
            (today.year(), ymd(today.year(), 9, 1), "秋季")
        } else if today.month() >= 3 {
            (today.year(), ymd(today.year(), 3, 1), "春季")
        } else {
            (today.year() - 1, ymd(today.year() - 1, 9, 1), "秋季")
        };
        let rng = &mut self.re;
        for s in &mut self.schools {
            let started = days_after(start, rng.gen_range(0..10)).min(today);
            let id = self.ids_e.next(rng);
            s.round = Some((id, started));
            self.queue.push_back(Record::ScreeningRound(
                id,
                Box::new(ScreeningRound {
                    school_id: s.id,
                    name: format!("{year}年{season}留守儿童排查"),
                    year,
                    started_on: Some(started),
                    closed: (today - started).num_days() > 45,
                }),
            ));
        }
    }

    // ------------------------------------------------------------ households

    fn household(&mut self) {
        let remaining = self.spec.children - self.next_child;
        let size = pick_weighted(&mut self.rc, &[(1usize, 45), (2, 40), (3, 15)]).min(remaining);
        let (household_id, household, facts, cards) = self.household_cards(size);
        self.queue
            .push_back(Record::Household(household_id, Box::new(household)));
        for (id, card) in cards {
            self.queue.push_back(Record::Child(id, Box::new(card)));
        }
        for f in &facts {
            self.visits(f);
            if self.spec.extras {
                self.child_extras(f);
            }
            if self.spec.extras && f.status == ChildStatus::Active {
                self.schools[f.school].active.push(f.id);
            }
        }
        if self.spec.extras {
            self.help_plan(household_id, &facts);
        }
    }

    #[allow(clippy::type_complexity)]
    fn household_cards(
        &mut self,
        size: usize,
    ) -> (Uuid, Household, Vec<ChildFacts>, Vec<(Uuid, ChildCard)>) {
        let today = self.today;
        let rng = &mut self.rc;
        // Where: a township (by its number of schools), a village, a group.
        let weights: Vec<(usize, u32)> = self
            .townships
            .iter()
            .enumerate()
            .map(|(i, t)| (i, t.schools.len() as u32))
            .collect();
        let t = pick_weighted(rng, &weights);
        let town = &self.townships[t];
        let vi = rng.gen_range(0..town.villages.len());
        let village = town.villages[vi];
        let address = Address {
            county: COUNTY.to_string(),
            township: town.name.to_string(),
            village: village.to_string(),
            group: pick(rng, GROUPS).to_string(),
            detail: format!("{}号", rng.gen_range(1..90)),
        };
        let ethnicity = pick_weighted(rng, ETHNIC_WEIGHTS);
        let lbt = pick_weighted(
            rng,
            &[
                (LeftBehindType::BothAway, 55),
                (LeftBehindType::FatherAway, 20),
                (LeftBehindType::MotherAway, 10),
                (LeftBehindType::FatherAwayMotherUnable, 8),
                (LeftBehindType::MotherAwayFatherUnable, 7),
            ],
        );
        let parent_unable = matches!(
            lbt,
            LeftBehindType::FatherAwayMotherUnable | LeftBehindType::MotherAwayFatherUnable
        );
        let gtype = if rng.gen_bool(0.015) {
            GuardianshipType::Unattended
        } else if parent_unable && rng.gen_bool(0.6) {
            GuardianshipType::ParentIncapable
        } else {
            pick_weighted(
                rng,
                &[
                    (GuardianshipType::GuardianInsufficient, 15),
                    (GuardianshipType::Fair, 50),
                    (GuardianshipType::Good, 35),
                ],
            )
        };
        let poverty = rng.gen_bool(0.2);
        let dibao = rng.gen_bool(if poverty { 0.5 } else { 0.05 });
        // The household's status: most still left behind; some parents came
        // home, some took the children with them.
        let hh_status = pick_weighted(
            rng,
            &[
                (ChildStatus::Active, 930),
                (ChildStatus::ParentsReturned, 45),
                (ChildStatus::Transferred, 25),
            ],
        );
        let hh_status_date = date_between(rng, days_before(today, 330), days_before(today, 3));

        // Children's grades, eldest first, and birth dates from the cohort.
        let mut grades: Vec<u8> = sample_indices(rng, 9, size)
            .into_iter()
            .map(|g| g as u8 + 1)
            .collect();
        grades.reverse();
        let births: Vec<NaiveDate> = grades
            .iter()
            .map(|&g| {
                let repeat = i32::from(g < 9 && rng.gen_bool(0.05));
                let y = self.school_year - i32::from(g) - 6 - repeat;
                date_between(rng, ymd(y, 9, 1), ymd(y + 1, 8, 31))
            })
            .collect();
        let eldest = births.first().copied().unwrap_or(today);

        // Parents.
        let surname = names::surname(rng);
        let father_birth = days_before(eldest, rng.gen_range(21 * 365..37 * 365));
        let mother_birth = date_between(
            rng,
            days_before(father_birth, 2 * 365),
            days_after(father_birth, 5 * 365),
        )
        .min(days_before(eldest, 19 * 365));
        let father_name = format!("{surname}{}", names::adult_given(rng, Gender::Male));
        let mother_name = names::adult(rng, Gender::Female);
        let (father_away, mother_away) = match lbt {
            LeftBehindType::BothAway => (true, true),
            LeftBehindType::FatherAway | LeftBehindType::FatherAwayMotherUnable => (true, false),
            LeftBehindType::MotherAway | LeftBehindType::MotherAwayFatherUnable => (false, true),
        };
        let father_place = pick_weighted(rng, WORK_PLACES);
        let mother_place = if father_away && mother_away && rng.gen_bool(0.65) {
            father_place
        } else {
            pick_weighted(rng, WORK_PLACES)
        };
        let father = self.parent(
            father_name.clone(),
            father_birth,
            father_away.then_some(father_place),
        );
        let mother = self.parent(
            mother_name.clone(),
            mother_birth,
            mother_away.then_some(mother_place),
        );
        let rng = &mut self.rc;

        // Grandparents and the guardian.
        let gf_birth = days_before(father_birth, rng.gen_range(21 * 365..33 * 365));
        let gm_birth = date_between(
            rng,
            days_before(gf_birth, 3 * 365),
            days_after(gf_birth, 4 * 365),
        );
        let mut grandparents = vec![
            Grandparent {
                relation: GrandparentRelation::PaternalGrandfather,
                name: format!("{surname}{}", names::adult_given(rng, Gender::Male)),
                birth_date: Some(gf_birth),
            },
            Grandparent {
                relation: GrandparentRelation::PaternalGrandmother,
                name: names::adult(rng, Gender::Female),
                birth_date: Some(gm_birth),
            },
        ];
        if rng.gen_bool(0.3) {
            grandparents.push(Grandparent {
                relation: GrandparentRelation::MaternalGrandmother,
                name: names::adult(rng, Gender::Female),
                birth_date: Some(days_before(mother_birth, rng.gen_range(21 * 365..32 * 365))),
            });
        }
        let guardian = if gtype == GuardianshipType::Unattended {
            Guardian {
                relation: GuardianRelation::None,
                ..Default::default()
            }
        } else {
            let relation = pick_weighted(
                rng,
                &[
                    (GuardianRelation::Grandparent, 82),
                    (GuardianRelation::OtherRelative, 12),
                    (GuardianRelation::Entrusted, 6),
                ],
            );
            let (name, birth, gender) = match relation {
                GuardianRelation::Grandparent => {
                    let g = if rng.gen_bool(0.6) {
                        &grandparents[1]
                    } else {
                        &grandparents[0]
                    };
                    let gender = match g.relation {
                        GrandparentRelation::PaternalGrandfather
                        | GrandparentRelation::MaternalGrandfather => Gender::Male,
                        _ => Gender::Female,
                    };
                    (g.name.clone(), g.birth_date.unwrap_or(gf_birth), gender)
                }
                GuardianRelation::OtherRelative => {
                    let gender = if rng.gen_bool(0.5) {
                        Gender::Male
                    } else {
                        Gender::Female
                    };
                    let name = if gender == Gender::Male {
                        format!("{surname}{}", names::adult_given(rng, gender))
                    } else {
                        names::adult(rng, gender)
                    };
                    let birth = days_before(today, rng.gen_range(30 * 365..56 * 365));
                    (name, birth, gender)
                }
                _ => {
                    let gender = if rng.gen_bool(0.5) {
                        Gender::Male
                    } else {
                        Gender::Female
                    };
                    let birth = days_before(today, rng.gen_range(35 * 365..62 * 365));
                    (names::adult(rng, gender), birth, gender)
                }
            };
            let age = today.years_since(birth).map(|a| a.min(120) as u8);
            let id_number = rng
                .gen_bool(0.3)
                .then(|| adult_id(rng, COUNTY_CODE, birth, gender));
            Guardian {
                name,
                relation,
                phone: rng.gen_bool(0.6).then(|| mobile(rng)),
                id_number,
                address: format!("{}{}{}", address.township, address.village, address.group),
                age,
                health: Some(pick_weighted(rng, GUARDIAN_HEALTH).to_string()),
            }
        };
        let household_id = self.ids_c.next(rng);
        let head = if rng.gen_bool(0.75) {
            father_name.clone()
        } else {
            grandparents[0].name.clone()
        };
        let unable_note = match lbt {
            LeftBehindType::FatherAwayMotherUnable => {
                Some(pick(rng, &["母亲患病，无监护能力", "母亲残疾，无监护能力"]))
            }
            LeftBehindType::MotherAwayFatherUnable => {
                Some(pick(rng, &["父亲患病，无监护能力", "父亲残疾，无监护能力"]))
            }
            _ => None,
        };
        let mut income = vec![IncomeSource::MigrantWork];
        if rng.gen_bool(0.6) {
            income.push(IncomeSource::Farming);
        }
        if rng.gen_bool(0.2) {
            income.push(IncomeSource::Livestock);
        }
        if dibao {
            income.push(IncomeSource::Subsidy);
        }

        // The children.
        let mut facts = Vec::with_capacity(size);
        let mut cards = Vec::with_capacity(size);
        let mut first_school = None;
        let town = &self.townships[t];
        for (&grade, &birth) in grades.iter().zip(&births) {
            let rng = &mut self.rc;
            let eligible: Vec<usize> = town
                .schools
                .iter()
                .copied()
                .filter(|&s| self.schools[s].stage.admits(grade))
                .collect();
            let school = if eligible.is_empty() {
                town.schools[0]
            } else {
                eligible[vi % eligible.len()]
            };
            first_school.get_or_insert(school);
            let sinfo = &self.schools[school];
            let gender = if rng.gen_bool(0.52) {
                Gender::Male
            } else {
                Gender::Female
            };
            let child_surname = if rng.gen_bool(0.95) {
                surname.to_string()
            } else {
                names::surname(rng).to_string()
            };
            let name = format!("{child_surname}{}", names::child_given(rng, gender));
            let id_number = if rng.gen_bool(0.92) {
                let region = pick_weighted(rng, ID_REGIONS);
                Some(child_id(rng, region, birth, gender, &mut self.used_ids))
            } else {
                None
            };
            let student_number = match &id_number {
                Some(id) => format!("G{id}"),
                None => format!(
                    "L{}{:06}",
                    birth.format("%Y%m%d"),
                    rng.gen_range(0..1_000_000)
                ),
            };
            let junior = grade >= 7;
            let boarding = rng.gen_bool(if junior {
                0.7
            } else if grade >= 4 {
                0.15
            } else {
                0.02
            });
            let health = match pick_weighted(rng, &[(0u8, 93), (1, 4), (2, 3)]) {
                1 => Health {
                    status: HealthStatus::Ill,
                    illness: Some(pick(rng, ILLNESS).to_string()),
                    ..Default::default()
                },
                2 => Health {
                    status: HealthStatus::Disabled,
                    disability_category: Some(pick(
                        rng,
                        &[
                            DisabilityCategory::Visual,
                            DisabilityCategory::Hearing,
                            DisabilityCategory::Speech,
                            DisabilityCategory::Physical,
                            DisabilityCategory::Intellectual,
                        ],
                    )),
                    disability_grade: Some(rng.gen_range(1..=4)),
                    illness: None,
                },
                _ => Health::default(),
            };
            let mut risks = Vec::new();
            if rng.gen_bool(0.06) {
                risks.push(pick(
                    rng,
                    &[
                        DropoutRisk::LearningDifficulty,
                        DropoutRisk::SchoolWeary,
                        DropoutRisk::FamilyHardship,
                    ],
                ));
            }
            // Status: the household's, or a junior-middle dropout.
            let mut status = hh_status;
            let mut status_date = (status != ChildStatus::Active).then_some(hh_status_date);
            let mut status_reason = match status {
                ChildStatus::ParentsReturned => Some(
                    pick(
                        rng,
                        &[
                            "父母返乡就业",
                            "父亲返乡务工，母亲在家照顾孩子",
                            "父母回乡创业",
                        ],
                    )
                    .to_string(),
                ),
                ChildStatus::Transferred => {
                    let (p, c) = if father_away {
                        father_place
                    } else {
                        mother_place
                    };
                    Some(format!("随父母转学至{p}{c}"))
                }
                _ => None,
            };
            let mut stage = if junior {
                SchoolingStage::Junior
            } else {
                SchoolingStage::Primary
            };
            let mut dropout = None;
            if status == ChildStatus::Active && junior && rng.gen_bool(0.03) {
                let reason = pick_weighted(
                    rng,
                    &[
                        (DropoutReason::SchoolWeary, 35),
                        (DropoutReason::LearningDifficulty, 20),
                        (DropoutReason::FamilyHardship, 15),
                        (DropoutReason::WentToWork, 25),
                        (DropoutReason::Illness, 5),
                    ],
                );
                let note = match reason {
                    DropoutReason::WentToWork => DROPOUT_NOTES[0],
                    DropoutReason::SchoolWeary => DROPOUT_NOTES[1],
                    DropoutReason::FamilyHardship => DROPOUT_NOTES[2],
                    _ => DROPOUT_NOTES[3],
                };
                let returned = rng.gen_bool(0.6);
                let date = date_between(rng, days_before(today, 400), days_before(today, 20));
                if !returned {
                    status = ChildStatus::DroppedOut;
                    status_date = Some(date);
                    status_reason = Some(note.to_string());
                    stage = SchoolingStage::DroppedOut;
                }
                dropout = Some(Dropout {
                    date,
                    reason,
                    note,
                    returned,
                });
            }
            let mut assistance = Vec::new();
            if dibao {
                assistance.push(Assistance::Dibao);
            }
            if health.status == HealthStatus::Ill && rng.gen_bool(0.5) {
                assistance.push(Assistance::Medical);
            }
            if rng.gen_bool(0.03) {
                assistance.push(Assistance::Temporary);
            }
            let teacher = sinfo.teachers[rng.gen_range(0..sinfo.teachers.len())].clone();
            let mut notes = String::new();
            if let Some(n) = unable_note {
                notes.push_str(n);
            } else if rng.gen_bool(0.08) {
                notes.push_str(pick(rng, CHILD_NOTES));
            }
            let id = self.ids_c.next(rng);
            let card = ChildCard {
                name: name.clone(),
                gender: Some(gender),
                ethnicity: ethnicity.to_string(),
                birth_date: Some(birth),
                id_number,
                hukou_registered: rng.gen_bool(0.97),
                registered_address: format!(
                    "{PROVINCE}{COUNTY}{}{}",
                    address.township, address.village
                ),
                current_address: address.clone(),
                health,
                boarding,
                schooling_stage: stage,
                school_id: Some(sinfo.id),
                grade: GRADES[usize::from(grade - 1)].to_string(),
                class_name: format!("{}班", rng.gen_range(1..=sinfo.classes)),
                student_number,
                dropout_risks: risks,
                household_id: Some(household_id),
                father: father.clone(),
                mother: mother.clone(),
                grandparents: grandparents.clone(),
                left_behind_type: lbt,
                family_income_sources: income.clone(),
                guardian: guardian.clone(),
                guardianship_type: gtype,
                assistance,
                poverty_registered: poverty,
                pairing_teacher: teacher.0.clone(),
                pairing_teacher_phone: Some(teacher.1.clone()),
                status,
                status_date,
                status_reason: status_reason.clone(),
                notes,
                counseling: Default::default(),
            };
            facts.push(ChildFacts {
                id,
                school,
                household: household_id,
                name,
                grade,
                boarding,
                needy: poverty || dibao,
                guardian: guardian.name.clone(),
                father: father_name.clone(),
                teacher,
                lbt,
                status,
                status_date,
                status_reason,
                dropout,
            });
            cards.push((id, card));
        }
        let household = Household {
            label: format!("{head}户"),
            school_id: first_school.map(|s| self.schools[s].id),
            address,
            head_name: head,
            phone: guardian.phone.clone().or_else(|| father.phone.clone()),
            notes: if poverty {
                "建档立卡脱贫户".to_string()
            } else {
                String::new()
            },
        };
        (household_id, household, facts, cards)
    }

    fn parent(
        &mut self,
        name: String,
        birth: NaiveDate,
        work: Option<(&'static str, &'static str)>,
    ) -> Parent {
        let rng = &mut self.rc;
        let id_number = rng
            .gen_bool(0.4)
            .then(|| adult_id(rng, COUNTY_CODE, birth, Gender::Male));
        // A parent's ID is checked against the birth date only, so the sex
        // digit may be either; adult_id picks an odd one.
        let (work_province, work_city) = work.unwrap_or(("", ""));
        Parent {
            name,
            birth_date: Some(birth),
            id_number,
            work_province: work_province.to_string(),
            work_city: work_city.to_string(),
            phone: rng.gen_bool(0.95).then(|| mobile(rng)),
            deceased: false,
            contact_frequency: work.map(|_| pick_weighted(rng, CONTACT_FREQUENCY).to_string()),
        }
    }

    // ------------------------------------------------------------ visits

    /// The last day anything can have happened with the child at its school.
    fn last_day(&self, f: &ChildFacts) -> NaiveDate {
        match f.status {
            ChildStatus::Active => self.today,
            _ => f.status_date.unwrap_or(self.today),
        }
    }

    fn visits(&mut self, f: &ChildFacts) {
        let count = self.visit_counts.get(self.next_child).copied().unwrap_or(0);
        self.next_child += 1;
        let today = self.today;
        let last = self.last_day(f);
        let earliest = days_before(today, 730);
        for _ in 0..count {
            let rng = &mut self.rv;
            let id = self.ids_v.next(rng);
            // About a third of visits are the summer campaign (暑期家访).
            let mut campaign = None;
            let mut date = None;
            if rng.gen_bool(0.35) {
                let y = today.year() - rng.gen_range(0..=2);
                let from = ymd(y, 7, 5).max(earliest);
                let to = ymd(y, 8, 25).min(last);
                if from <= to {
                    date = Some(date_between(rng, from, to));
                    if rng.gen_bool(0.9) {
                        campaign = Some(format!("{y}年暑期家访"));
                    }
                }
            }
            let date = date.unwrap_or_else(|| date_between(rng, earliest.min(last), last));
            let mode = if campaign.is_some() {
                VisitMode::Home
            } else {
                pick_weighted(
                    rng,
                    &[
                        (VisitMode::Home, 60),
                        (VisitMode::Phone, 20),
                        (VisitMode::Video, 10),
                        (VisitMode::AtSchool, 10),
                    ],
                )
            };
            let teachers = &self.schools[f.school].teachers;
            let mut visitors = vec![f.teacher.0.clone()];
            if mode == VisitMode::Home && rng.gen_bool(0.4) {
                let other = &teachers[rng.gen_range(0..teachers.len())].0;
                if *other != f.teacher.0 {
                    visitors.push(other.clone());
                }
            }
            let mut present = Vec::new();
            match mode {
                VisitMode::Home => {
                    if !f.guardian.is_empty() {
                        present.push(f.guardian.clone());
                    }
                    present.push(f.name.clone());
                }
                VisitMode::Phone => {
                    if !f.guardian.is_empty() {
                        present.push(f.guardian.clone());
                    } else {
                        present.push(f.father.clone());
                    }
                }
                VisitMode::Video => {
                    present.push(f.name.clone());
                    present.push(f.father.clone());
                }
                VisitMode::AtSchool => present.push(f.name.clone()),
            }
            let mut hazards = Vec::new();
            let mut hazard_notes = Vec::new();
            if mode == VisitMode::Home && rng.gen_bool(0.25) {
                const ALL: [Hazard; 6] = [
                    Hazard::ElectricWiring,
                    Hazard::WaterNearby,
                    Hazard::Fire,
                    Hazard::Traffic,
                    Hazard::Building,
                    Hazard::Other,
                ];
                let k = rng.gen_range(1..=2);
                for i in sample_indices(rng, ALL.len(), k) {
                    hazards.push(ALL[i]);
                    hazard_notes.push(HAZARD_NOTES[i]);
                }
            }
            let problems = if rng.gen_bool(0.6) {
                pick(rng, PROBLEMS)
            } else {
                ""
            };
            let help = match mode {
                VisitMode::Phone | VisitMode::Video => "与父母电话沟通孩子近况",
                _ => pick(rng, HELP),
            };
            let finalised = date <= days_before(today, 7) && rng.gen_bool(0.95);
            let finalised_at = finalised.then(|| {
                let d = days_after(date, rng.gen_range(0..3)).min(today);
                Utc.from_utc_datetime(&d.and_time(chrono::NaiveTime::MIN))
                    + chrono::Duration::hours(rng.gen_range(1..12))
            });
            let visit = HomeVisit {
                child_id: Some(f.id),
                household_id: Some(f.household),
                school_id: Some(self.schools[f.school].id),
                visit_date: Some(date),
                mode,
                visitors,
                present,
                living_conditions: if mode == VisitMode::Home {
                    pick(rng, LIVING).to_string()
                } else {
                    String::new()
                },
                hazards,
                hazard_notes: hazard_notes.join("；"),
                study: pick(rng, STUDY).to_string(),
                mood: pick(rng, MOOD).to_string(),
                problems_found: problems.to_string(),
                help_given: help.to_string(),
                campaign,
                status: if finalised {
                    VisitStatus::Finalised
                } else {
                    VisitStatus::Draft
                },
                finalised_at: finalised_at.map(trunc_ms),
            };
            self.queue.push_back(Record::HomeVisit(id, Box::new(visit)));
            if self.spec.extras {
                // Follow-ups and amendments hang off the visit: after it.
                self.visit_extras(f, id, date, finalised, problems);
            }
        }
    }
}

fn trunc_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(3)
}

pub(crate) fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

/// A child's ID: the sequence code's last digit odd for boys, even for
/// girls; unique within the county being generated.
fn child_id(
    rng: &mut impl Rng,
    region: &str,
    birth: NaiveDate,
    gender: Gender,
    used: &mut HashSet<String>,
) -> String {
    for _ in 0..32 {
        let id = id_number(rng, region, birth, gender);
        if used.insert(id.clone()) {
            return id;
        }
    }
    id_number(rng, region, birth, gender)
}

fn adult_id(rng: &mut impl Rng, region: &str, birth: NaiveDate, gender: Gender) -> String {
    id_number(rng, region, birth, gender)
}

fn id_number(rng: &mut impl Rng, region: &str, birth: NaiveDate, gender: Gender) -> String {
    let parity = match gender {
        Gender::Male => pick(rng, &[1u32, 3, 5, 7, 9]),
        Gender::Female => pick(rng, &[0u32, 2, 4, 6, 8]),
    };
    let seq = rng.gen_range(0..100u32) * 10 + parity;
    let first17 = format!("{region}{}{seq:03}", birth.format("%Y%m%d"));
    let check = id_check_char(first17.as_bytes()).unwrap_or('0');
    format!("{first17}{check}")
}

impl Iterator for Records {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            if let Some(r) = self.queue.pop_front() {
                return Some(r);
            }
            if !self.step() {
                return None;
            }
        }
    }
}

/// Weekend dates move back to the Friday (absences happen on school days).
pub(crate) fn school_day(d: NaiveDate) -> NaiveDate {
    match d.weekday() {
        Weekday::Sat => days_before(d, 1),
        Weekday::Sun => days_before(d, 2),
        _ => d,
    }
}
