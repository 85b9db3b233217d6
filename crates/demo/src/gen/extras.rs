//! Everything beyond cards and visits: follow-ups, amendments, aid, absences,
//! dropouts and persuasion visits, family contacts, psychological notes,
//! screening entries, help plans (and revisions), safety sessions. All drawn
//! from the extras stream.

use chrono::{Datelike, NaiveDate};
use rand::Rng;
use serde_json::json;
use shouhu_core::*;
use uuid::Uuid;

use super::{school_day, ChildFacts, Records};
use crate::pick::{date_between, days_after, days_before, pick, pick_weighted, sample_indices};
use crate::texts::*;
use crate::Record;

impl Records {
    pub(super) fn visit_extras(
        &mut self,
        f: &ChildFacts,
        visit_id: Uuid,
        date: NaiveDate,
        finalised: bool,
        problems: &str,
    ) {
        if problems.is_empty() {
            return;
        }
        let today = self.today;
        let rng = &mut self.re;
        if rng.gen_bool(0.35) {
            let due = days_after(date, rng.gen_range(7..=30));
            let done = due < today && rng.gen_bool(0.75);
            let done_date =
                done.then(|| days_before(due, rng.gen_range(0..5)).max(date).min(today));
            let id = self.ids_e.next(rng);
            self.queue.push_back(Record::FollowUp(
                id,
                Box::new(FollowUp {
                    visit_id: Some(visit_id),
                    child_id: Some(f.id),
                    school_id: Some(self.schools[f.school].id),
                    action: pick(rng, FOLLOW_UPS).to_string(),
                    assignee: f.teacher.0.clone(),
                    due_date: Some(due),
                    done,
                    done_date,
                    outcome: if done {
                        pick(rng, FOLLOW_UP_OUTCOMES).to_string()
                    } else {
                        String::new()
                    },
                }),
            ));
        }
        if finalised && rng.gen_bool(0.02) {
            self.queue.push_back(Record::AmendVisit {
                visit_id,
                field: "problems_found".to_string(),
                value: json!(format!("{problems}；另发现孩子视力下降，需配镜")),
                reason: "补充遗漏情况，经与监护人电话核实".to_string(),
            });
        }
    }

    pub(super) fn child_extras(&mut self, f: &ChildFacts) {
        let today = self.today;
        let last = self.last_day(f);
        let school_id = self.schools[f.school].id;
        let rng = &mut self.re;

        // Aid (救助与资助).
        let aid_count = if f.needy {
            if rng.gen_bool(0.6) {
                rng.gen_range(1..=3)
            } else {
                0
            }
        } else if rng.gen_bool(0.12) {
            1
        } else {
            0
        };
        for k in 0..aid_count {
            let boarding_subsidy = f.boarding && f.needy && k == 0;
            let aid = if boarding_subsidy {
                // Paid per term: spring (March) or autumn (September).
                let y = today.year() - rng.gen_range(0..=1);
                let d = if rng.gen_bool(0.5) {
                    super::ymd(y, 3, rng.gen_range(10..=28))
                } else {
                    super::ymd(y, 9, rng.gen_range(15..=30))
                };
                let d = if d > last {
                    date_between(rng, days_before(last, 200), last)
                } else {
                    d
                };
                Aid {
                    child_id: f.id,
                    school_id: Some(school_id),
                    date: Some(d),
                    kind: AidKind::BoardingSubsidy,
                    items: String::new(),
                    amount_fen: if f.grade >= 7 { 62_500 } else { 50_000 },
                    fund_source: "家庭经济困难寄宿生生活补助".to_string(),
                    fund_year: d.year(),
                    handed_over_by: f.teacher.0.clone(),
                }
            } else {
                let d = date_between(rng, days_before(last, 700), last);
                let (kind, items, amount_fen, fund_source) =
                    match pick_weighted(rng, &[(0u8, 45), (1, 45), (2, 10)]) {
                        0 => (
                            AidKind::Cash,
                            "",
                            i64::from(rng.gen_range(4..=20u32)) * 5_000,
                            pick(
                                rng,
                                &[
                                    "县留守儿童关爱专项资金",
                                    "乡镇临时救助资金",
                                    "县妇联春蕾计划",
                                ],
                            ),
                        ),
                        1 => (
                            AidKind::Goods,
                            pick(
                                rng,
                                &[
                                    "棉被一床、冬衣一套",
                                    "书包、文具一套",
                                    "课外读物10册",
                                    "运动鞋一双、校服一套",
                                    "台灯一盏、学习桌一张",
                                ],
                            ),
                            // Goods are booked at their value, to the fen.
                            i64::from(rng.gen_range(6_000..=45_000u32)),
                            pick(rng, &["爱心企业捐赠", "学校关爱基金", "县慈善总会"]),
                        ),
                        _ => (AidKind::Other, "慈善助学金", 50_000, "县慈善总会"),
                    };
                Aid {
                    child_id: f.id,
                    school_id: Some(school_id),
                    date: Some(d),
                    kind,
                    items: items.to_string(),
                    amount_fen,
                    fund_source: fund_source.to_string(),
                    fund_year: d.year(),
                    handed_over_by: f.teacher.0.clone(),
                }
            };
            let id = self.ids_e.next(rng);
            self.queue.push_back(Record::Aid(id, Box::new(aid)));
        }

        // Absences (缺勤).
        if rng.gen_bool(0.22) {
            for _ in 0..rng.gen_range(1..=3) {
                let d = school_day(date_between(rng, days_before(last, 365), last));
                let (reason, half_days, note) =
                    match pick_weighted(rng, &[(0u8, 50), (1, 25), (2, 20), (3, 5)]) {
                        0 => (AbsenceReason::Sick, rng.gen_range(1..=6), ABSENCE_NOTES[0]),
                        1 => (
                            AbsenceReason::Personal,
                            rng.gen_range(1..=2),
                            ABSENCE_NOTES[1],
                        ),
                        2 => (
                            AbsenceReason::Unexcused,
                            rng.gen_range(1..=4),
                            ABSENCE_NOTES[2],
                        ),
                        _ => (AbsenceReason::Other, rng.gen_range(1..=2), ABSENCE_NOTES[3]),
                    };
                let id = self.ids_e.next(rng);
                self.queue.push_back(Record::Absence(
                    id,
                    Box::new(Absence {
                        child_id: f.id,
                        school_id: Some(school_id),
                        date: Some(d),
                        half_days,
                        reason,
                        note: note.to_string(),
                    }),
                ));
            }
        }

        // Dropout and persuasion to return (控辍保学).
        if let Some(d) = &f.dropout {
            let event_id = self.ids_e.next(rng);
            self.queue.push_back(Record::DropoutEvent(
                event_id,
                Box::new(DropoutEvent {
                    child_id: f.id,
                    school_id: Some(school_id),
                    date: Some(d.date),
                    reason: d.reason,
                    note: d.note.to_string(),
                }),
            ));
            let visits = rng.gen_range(1..=3);
            let mut date = d.date;
            for k in 0..visits {
                date = days_after(date, rng.gen_range(2..=12)).min(today);
                let final_visit = k + 1 == visits;
                let (outcome, return_date) = if final_visit && d.returned {
                    (
                        PersuasionOutcome::Returned,
                        Some(days_after(date, rng.gen_range(1..=7)).min(today)),
                    )
                } else if final_visit {
                    (
                        pick(
                            rng,
                            &[PersuasionOutcome::Refused, PersuasionOutcome::Promised],
                        ),
                        None,
                    )
                } else {
                    (PersuasionOutcome::Promised, None)
                };
                let mut visitors = vec![f.teacher.0.clone()];
                visitors.push(self.schools[f.school].principal.clone());
                visitors.dedup();
                let id = self.ids_e.next(rng);
                self.queue.push_back(Record::PersuasionVisit(
                    id,
                    Box::new(PersuasionVisit {
                        child_id: f.id,
                        dropout_event_id: Some(event_id),
                        school_id: Some(school_id),
                        date: Some(date),
                        visitors,
                        outcome,
                        return_date,
                        note: pick(rng, PERSUASION_NOTES).to_string(),
                    }),
                ));
            }
        }

        // Family contact (亲情联系) arranged by the school.
        if rng.gen_bool(0.35) {
            for _ in 0..rng.gen_range(1..=4) {
                let d = date_between(rng, days_before(last, 365), last);
                let with_whom = match f.lbt {
                    LeftBehindType::FatherAway | LeftBehindType::FatherAwayMotherUnable => {
                        ContactWith::Father
                    }
                    LeftBehindType::MotherAway | LeftBehindType::MotherAwayFatherUnable => {
                        ContactWith::Mother
                    }
                    LeftBehindType::BothAway => pick_weighted(
                        rng,
                        &[
                            (ContactWith::Both, 40),
                            (ContactWith::Mother, 35),
                            (ContactWith::Father, 25),
                        ],
                    ),
                };
                let id = self.ids_e.next(rng);
                self.queue.push_back(Record::FamilyContact(
                    id,
                    Box::new(FamilyContact {
                        child_id: f.id,
                        school_id: Some(school_id),
                        date: Some(d),
                        mode: if rng.gen_bool(0.6) {
                            ContactMode::Phone
                        } else {
                            ContactMode::Video
                        },
                        with_whom,
                        minutes: Some(rng.gen_range(5..=40)),
                        arranged_by: f.teacher.0.clone(),
                        note: pick(rng, CONTACT_NOTES).to_string(),
                    }),
                ));
            }
        }

        // Psychological notes (心理辅导记录), for a few children.
        if rng.gen_bool(0.03) {
            let mut d = date_between(rng, days_before(last, 300), last);
            let issue = pick(rng, PSYCH_ISSUES);
            for _ in 0..rng.gen_range(1..=3) {
                if d > last {
                    break;
                }
                let kind = pick_weighted(
                    rng,
                    &[
                        (SessionKind::Individual, 80),
                        (SessionKind::Group, 15),
                        (SessionKind::Crisis, 5),
                    ],
                );
                let risk_level = if kind == SessionKind::Crisis {
                    pick(rng, &[RiskLevel::High, RiskLevel::Crisis])
                } else {
                    pick_weighted(
                        rng,
                        &[
                            (RiskLevel::Low, 55),
                            (RiskLevel::Medium, 35),
                            (RiskLevel::High, 10),
                        ],
                    )
                };
                let (scale, score) = match rng.gen_range(0..5) {
                    0 => (
                        Some("MHT心理健康诊断测验"),
                        Some(f64::from(rng.gen_range(40..=80))),
                    ),
                    1 => (Some("SCL-90"), Some(f64::from(rng.gen_range(120..=220)))),
                    2 => (
                        Some("儿童抑郁量表（CDI）"),
                        Some(f64::from(rng.gen_range(10..=30))),
                    ),
                    _ => (None, None),
                };
                let referral =
                    matches!(risk_level, RiskLevel::High | RiskLevel::Crisis) && rng.gen_bool(0.5);
                let next = days_after(d, 14);
                let id = self.ids_e.next(rng);
                self.queue.push_back(Record::PsychNote(
                    id,
                    Box::new(PsychNote {
                        child_id: f.id,
                        school_id: Some(school_id),
                        session_date: Some(d),
                        kind,
                        presenting_issue: issue.to_string(),
                        scale: scale.map(str::to_string),
                        score,
                        risk_level,
                        intervention: pick(rng, PSYCH_INTERVENTIONS).to_string(),
                        referral: referral.then(|| "转介县精神卫生中心".to_string()),
                        next_session: Some(next),
                        // The demo is generated without anyone's keys: its
                        // notes are plain until a counselor seals them.
                        sealed: None,
                    }),
                ));
                d = days_after(d, rng.gen_range(14..=30));
            }
        }

        // This year's screening round (排查) of the child's school.
        if let Some((round_id, started)) = self.schools[f.school].round {
            let (outcome, reason) = match f.status {
                ChildStatus::Active => {
                    if rng.gen_bool(0.12) {
                        (ScreeningOutcome::Added, None)
                    } else {
                        (ScreeningOutcome::Confirmed, None)
                    }
                }
                _ => (ScreeningOutcome::Removed, f.status_reason.clone()),
            };
            let id = self.ids_e.next(rng);
            self.queue.push_back(Record::ScreeningEntry(
                id,
                Box::new(ScreeningEntry {
                    round_id,
                    child_id: f.id,
                    school_id: Some(school_id),
                    outcome,
                    reason,
                    date: Some(days_after(started, rng.gen_range(0..=14)).min(today)),
                }),
            ));
        }
    }

    /// 一户一策: a help plan for most households in difficulty and some
    /// others; a few were revised since.
    pub(super) fn help_plan(&mut self, household_id: Uuid, children: &[ChildFacts]) {
        let Some(eldest) = children.first() else {
            return;
        };
        let today = self.today;
        let school = &self.schools[eldest.school];
        let rng = &mut self.re;
        let urgent = eldest.needy
            || children
                .iter()
                .any(|c| c.guardian.is_empty() || c.dropout.is_some());
        if !rng.gen_bool(if urgent { 0.9 } else { 0.35 }) {
            return;
        }
        let k = rng.gen_range(1..=2);
        let mut needs: Vec<&str> = sample_indices(rng, 4, k)
            .into_iter()
            .map(|i| NEEDS[i])
            .collect();
        if eldest.needy {
            needs.push("经济救助");
        }
        if eldest.guardian.is_empty() {
            needs.push("安全监护");
        }
        if rng.gen_bool(0.05) {
            needs.push("住房修缮");
        }
        let teacher = eldest.teacher.0.clone();
        let mut responsible = vec![teacher.clone()];
        let measures: Vec<Measure> = needs
            .iter()
            .map(|need| {
                let (kind, pool) = match *need {
                    "学业辅导" => (MeasureKind::Tutoring, MEASURE_TUTORING),
                    "亲情陪伴" => (MeasureKind::FamilyContact, MEASURE_CONTACT),
                    "生活照料" => (MeasureKind::GuardianTraining, MEASURE_TRAINING),
                    "心理疏导" => (MeasureKind::Counseling, MEASURE_COUNSELING),
                    "经济救助" => (MeasureKind::Aid, MEASURE_AID),
                    "安全监护" => (MeasureKind::Other, &MEASURE_OTHER[1..]),
                    _ => (MeasureKind::Other, &MEASURE_OTHER[..1]),
                };
                let responsible_one = match kind {
                    MeasureKind::Counseling | MeasureKind::Aid => school.principal.clone(),
                    _ => teacher.clone(),
                };
                Measure {
                    kind,
                    description: pick(rng, pool).to_string(),
                    responsible: responsible_one,
                    due_date: Some(days_after(today, rng.gen_range(15..=120))),
                }
            })
            .collect();
        for m in &measures {
            if !responsible.contains(&m.responsible) {
                responsible.push(m.responsible.clone());
            }
        }
        let plan = HelpPlan {
            household_id,
            school_id: Some(school.id),
            needs: needs.iter().map(|s| s.to_string()).collect(),
            measures,
            responsible_people: responsible,
            review_date: Some(date_between(
                rng,
                days_before(today, 60),
                days_after(today, 150),
            )),
            approved_by: rng.gen_bool(0.7).then(|| school.principal.clone()),
            revision: 0,
            revision_note: "首次制定".to_string(),
        };
        let id = self.ids_e.next(rng);
        let revise = rng.gen_bool(0.1);
        let revised = revise.then(|| {
            let mut p = plan.clone();
            p.measures.push(Measure {
                kind: MeasureKind::FamilyContact,
                description: pick(rng, MEASURE_CONTACT).to_string(),
                responsible: teacher.clone(),
                due_date: Some(days_after(today, rng.gen_range(15..=60))),
            });
            p.review_date = p.review_date.map(|d| days_after(d, 90));
            p.revision_note = pick(rng, REVISION_NOTES).to_string();
            p
        });
        self.queue.push_back(Record::HelpPlan(id, Box::new(plan)));
        if let Some(p) = revised {
            self.queue.push_back(Record::RevisePlan(id, Box::new(p)));
        }
    }

    /// 安全教育: four to six sessions a year per school, each attended by
    /// up to a few classes' worth of its children.
    pub(super) fn safety_sessions(&mut self) {
        let today = self.today;
        let rng = &mut self.re;
        for s in &mut self.schools {
            let n = rng.gen_range(4..=6);
            for t in sample_indices(rng, SAFETY_TITLES.len(), n) {
                let (topic, title) = SAFETY_TITLES[t];
                let topic = match topic {
                    "drowning" => SafetyTopic::Drowning,
                    "fire_electricity" => SafetyTopic::FireElectricity,
                    "traffic" => SafetyTopic::Traffic,
                    "food" => SafetyTopic::Food,
                    "disease" => SafetyTopic::Disease,
                    _ => SafetyTopic::Strangers,
                };
                let presenter = match topic {
                    SafetyTopic::FireElectricity => "县消防救援大队教官".to_string(),
                    SafetyTopic::Strangers | SafetyTopic::Traffic if rng.gen_bool(0.5) => {
                        "镇派出所民警".to_string()
                    }
                    SafetyTopic::Disease => "乡镇卫生院医生".to_string(),
                    _ => s.teachers[rng.gen_range(0..s.teachers.len())].0.clone(),
                };
                let k = rng.gen_range(20..=60);
                let mut attendees: Vec<Uuid> = sample_indices(rng, s.active.len(), k)
                    .into_iter()
                    .map(|i| s.active[i])
                    .collect();
                attendees.sort();
                let id = self.ids_e.next(rng);
                self.queue.push_back(Record::SafetySession(
                    id,
                    Box::new(SafetySession {
                        school_id: s.id,
                        date: Some(school_day(date_between(
                            rng,
                            days_before(today, 365),
                            today,
                        ))),
                        topic,
                        title: title.to_string(),
                        presenter,
                        attendees,
                    }),
                ));
            }
            s.active = Vec::new();
        }
    }
}
