//! The generator: deterministic, valid (everything goes through the store),
//! the counts a spec asks for, and realistic enough to search.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use pinyin::ToPinyin;
use shouhu_core::validate::check_id_number_for;
use shouhu_core::*;
use shouhu_demo::{children, generate, records, DemoSpec, Record};
use shouhu_store::{SearchParams, Store};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).unwrap_or_default()
}

fn small() -> DemoSpec {
    DemoSpec {
        seed: 7,
        townships: 2,
        schools: 3,
        children: 60,
        visits_per_child: 3.0,
        extras: true,
        batch_size: 100,
    }
}

fn store() -> Result<Store, shouhu_store::StoreError> {
    let mut s = Store::open_in_memory()?;
    s.set_today(Some(today()));
    Ok(s)
}

fn kind_counts(spec: &DemoSpec) -> BTreeMap<EntityKind, usize> {
    let mut m = BTreeMap::new();
    for r in records(spec, today()) {
        *m.entry(r.kind()).or_insert(0) += 1;
    }
    m
}

#[test]
fn same_seed_same_records_other_seed_other_records() {
    let a: Vec<Record> = records(&small(), today()).collect();
    let b: Vec<Record> = records(&small(), today()).collect();
    assert_eq!(a, b);
    let other = DemoSpec { seed: 8, ..small() };
    let c: Vec<Record> = records(&other, today()).collect();
    assert_ne!(a, c);
    let ids: HashSet<_> = a.iter().filter_map(Record::id).collect();
    let creates = a
        .iter()
        .filter(|r| !matches!(r, Record::RevisePlan(..) | Record::AmendVisit { .. }))
        .count();
    assert_eq!(ids.len(), creates, "every created record has its own id");
}

#[test]
fn children_do_not_depend_on_visits_or_extras() {
    let full: Vec<_> = records(&small(), today())
        .filter_map(|r| match r {
            Record::Child(id, c) => Some((id, *c)),
            _ => None,
        })
        .collect();
    let only: Vec<_> = children(&small(), today()).collect();
    assert_eq!(full, only);
    assert_eq!(only.len(), 60);
}

#[test]
fn small_spec_gives_expected_counts_and_everything_is_stored() -> TestResult {
    let spec = small();
    let mut s = store()?;
    let mut calls = Vec::new();
    let report = generate(&mut s, &spec, &mut |p| calls.push(p))?;
    assert_eq!(report.count(EntityKind::School), 3);
    assert_eq!(report.count(EntityKind::Child), 60);
    assert_eq!(report.count(EntityKind::HomeVisit), 180);
    assert_eq!(report.count(EntityKind::ScreeningRound), 3);
    assert_eq!(report.count(EntityKind::ScreeningEntry), 60);
    assert_eq!(report.counts, kind_counts(&spec));
    // The store holds exactly what the report says.
    for (kind, n) in &report.counts {
        assert_eq!(s.count(*kind)? as usize, *n, "{kind:?}");
    }
    // Progress: one call per batch, ending at every child.
    let last = calls.last().copied().ok_or("no progress")?;
    assert_eq!(last.children, 60);
    assert_eq!(last.records, report.total);
    assert_eq!(calls.len(), report.total.div_ceil(100));
    assert!(calls.windows(2).all(|w| w[0].records < w[1].records));
    // Bodies read back unchanged: the generator writes normalised records.
    for r in records(&spec, today()) {
        match r {
            Record::Child(id, c) => assert_eq!(s.fetch::<ChildCard>(id)?.body, *c),
            Record::HomeVisit(id, v) => assert_eq!(s.fetch::<HomeVisit>(id)?.body, *v),
            Record::Aid(id, a) => assert_eq!(s.fetch::<Aid>(id)?.body, *a),
            Record::SafetySession(id, x) => {
                assert_eq!(s.fetch::<SafetySession>(id)?.body, *x)
            }
            _ => {}
        }
    }
    Ok(())
}

#[test]
fn default_county_has_every_kind_of_record() -> TestResult {
    let mut s = store()?;
    let report = generate(&mut s, &DemoSpec::default(), &mut |_| {})?;
    for kind in EntityKind::ALL {
        if kind == EntityKind::Conflict {
            continue;
        }
        assert!(report.count(kind) > 0, "no {kind:?}: {:?}", report.counts);
    }
    assert_eq!(report.count(EntityKind::Child), 600);
    assert_eq!(report.count(EntityKind::School), 8);
    assert_eq!(report.count(EntityKind::HomeVisit), 1800);
    let stats = s.stats()?;
    assert_eq!(stats.by_township.len(), 3, "{:?}", stats.by_township);
    assert!(stats.aid_total_fen > 0);
    Ok(())
}

#[test]
fn same_seed_writes_the_same_store() -> TestResult {
    let spec = DemoSpec {
        children: 30,
        ..small()
    };
    let mut a = store()?;
    let mut b = store()?;
    generate(&mut a, &spec, &mut |_| {})?;
    generate(&mut b, &spec, &mut |_| {})?;
    let bodies = |s: &Store| -> Result<Vec<(uuid::Uuid, HomeVisit)>, shouhu_store::StoreError> {
        Ok(s.list_all::<HomeVisit>()?
            .into_iter()
            .map(|v| (v.meta.id, v.body))
            .collect())
    };
    assert_eq!(bodies(&a)?, bodies(&b)?);
    let kids = |s: &Store| -> Result<Vec<(uuid::Uuid, ChildCard)>, shouhu_store::StoreError> {
        Ok(s.list_all::<ChildCard>()?
            .into_iter()
            .map(|v| (v.meta.id, v.body))
            .collect())
    };
    assert_eq!(kids(&a)?, kids(&b)?);
    // Writing the same county twice is refused, not duplicated.
    assert!(generate(&mut a, &spec, &mut |_| {}).is_err());
    assert_eq!(a.count(EntityKind::Child)?, 30);
    Ok(())
}

fn initials(name: &str) -> String {
    name.to_pinyin()
        .flatten()
        .filter_map(|p| p.plain().chars().next())
        .collect()
}

#[test]
fn search_finds_a_generated_child_by_pinyin_initials() -> TestResult {
    let mut s = store()?;
    generate(&mut s, &small(), &mut |_| {})?;
    let mut checked = 0;
    for (id, card) in children(&small(), today()).step_by(7) {
        let q = initials(&card.name);
        let page = s.search_children(&SearchParams {
            query: q.clone(),
            school_id: card.school_id,
            limit: 1000,
            ..Default::default()
        })?;
        assert_eq!(page.query_kind, "pinyin");
        assert!(
            page.items.iter().any(|c| c.id == id),
            "{} not found by {q}",
            card.name
        );
        checked += 1;
    }
    assert!(checked >= 8);
    Ok(())
}

#[test]
fn cards_are_realistic() {
    let spec = DemoSpec {
        children: 3000,
        schools: 12,
        ..small()
    };
    let today = today();
    let cards: Vec<_> = children(&spec, today).collect();
    assert_eq!(cards.len(), 3000);
    let mut surnames: HashMap<char, usize> = HashMap::new();
    let mut households: HashMap<uuid::Uuid, Vec<&ChildCard>> = HashMap::new();
    let mut ids = HashSet::new();
    let (mut without_id, mut unattended, mut inactive, mut grandparent) = (0, 0, 0, 0);
    for (_, c) in &cards {
        let first = c.name.chars().next().unwrap_or(' ');
        *surnames.entry(first).or_default() += 1;
        let n = c.name.chars().count();
        assert!((2..=3).contains(&n), "{}", c.name);
        // IDs agree with the card.
        match &c.id_number {
            Some(id) => {
                assert!(check_id_number_for("id", id, c.birth_date, c.gender).is_ok());
                assert!(id.starts_with("52"), "{id}");
                assert!(ids.insert(id.clone()), "duplicate {id}");
                assert_eq!(c.student_number, format!("G{id}"));
            }
            None => without_id += 1,
        }
        // 6 to 15 years old, grade matching the stage.
        let age = c.age_on(today).unwrap_or(0);
        assert!((6..=15).contains(&age), "{} is {age}", c.name);
        let junior = ["七年级", "八年级", "九年级"].contains(&c.grade.as_str());
        match c.schooling_stage {
            SchoolingStage::Junior | SchoolingStage::DroppedOut => assert!(junior),
            SchoolingStage::Primary => assert!(!junior),
            other => panic!("stage {other:?}"),
        }
        if junior {
            assert!(age >= 11, "{} {age} in {}", c.name, c.grade);
        } else {
            assert!(age <= 13, "{} {age} in {}", c.name, c.grade);
        }
        if c.guardianship_type == GuardianshipType::Unattended {
            unattended += 1;
            assert_eq!(c.guardian.relation, GuardianRelation::None);
        }
        if c.guardian.relation == GuardianRelation::Grandparent {
            grandparent += 1;
            assert!(c.grandparents.iter().any(|g| g.name == c.guardian.name));
        }
        if c.status != ChildStatus::Active {
            inactive += 1;
            assert!(c.status_reason.is_some() && c.status_date.is_some());
        }
        for p in [&c.father, &c.mother] {
            if let Some(ph) = &p.phone {
                assert!(shouhu_core::validate::check_phone("p", ph).is_ok(), "{ph}");
            }
        }
        assert_eq!(c.current_address.county, shouhu_demo::COUNTY);
        assert!(c.current_address.group.starts_with('第'));
        if let Some(h) = c.household_id {
            households.entry(h).or_default().push(c);
        }
    }
    // Siblings share parents and an address; some households have several.
    let multi = households.values().filter(|v| v.len() > 1).count();
    assert!(multi > 300, "{multi} households with siblings");
    for kids in households.values() {
        assert!(kids.len() <= 3);
        assert!(kids
            .iter()
            .all(|k| k.father == kids[0].father && k.current_address == kids[0].current_address));
    }
    // Mixes in plausible proportions.
    assert!((100..400).contains(&without_id), "{without_id} without ID");
    assert!(
        unattended > 0 && unattended < 150,
        "{unattended} unattended"
    );
    assert!(grandparent > 2000, "{grandparent} with grandparents");
    assert!((50..500).contains(&inactive), "{inactive} inactive");
    assert!(surnames.len() > 40, "{} surnames", surnames.len());
    let polyphonic = ['单', '曾', '解', '区', '仇', '查']
        .iter()
        .filter(|c| surnames.contains_key(c))
        .count();
    assert!(polyphonic >= 4, "{polyphonic} polyphonic surnames");
    let top = surnames.values().max().copied().unwrap_or(0);
    assert!(top < 400, "most common surname on {top} of 3000");
}

#[test]
fn bench_spec_has_exact_counts_and_no_extras() {
    let spec = DemoSpec::bench(1000, 10_000, 3);
    let counts = kind_counts(&spec);
    assert_eq!(counts.get(&EntityKind::Child), Some(&1000));
    assert_eq!(counts.get(&EntityKind::HomeVisit), Some(&10_000));
    assert_eq!(counts.get(&EntityKind::School), Some(&8));
    let kinds: Vec<_> = counts.keys().copied().collect();
    assert_eq!(
        kinds,
        [
            EntityKind::School,
            EntityKind::Child,
            EntityKind::Household,
            EntityKind::HomeVisit
        ]
    );
}
