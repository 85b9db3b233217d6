//! # shouhu-demo
//!
//! A realistic, **seeded** fictional county of left-behind children's records
//! (织金县, Guizhou: real township names, invented villages and people), for
//! the desktop app's first start, `shouhu demo` and the benchmarks.
//!
//! The same [`DemoSpec`] and calendar date always give the same records, ids
//! included: [`records`] is a pure iterator, and [`generate`] writes that
//! iterator through the [`Store`] API in batches (one transaction each), so
//! every record is normalised, validated and reference-checked like a user's.
//!
//! ```
//! use shouhu_demo::{generate, DemoSpec};
//! let mut store = shouhu_store::Store::open_in_memory()?;
//! let spec = DemoSpec { children: 40, schools: 2, ..DemoSpec::default() };
//! let report = generate(&mut store, &spec, &mut |_progress| {})?;
//! assert_eq!(report.count(shouhu_core::EntityKind::Child), 40);
//! # Ok::<(), shouhu_store::StoreError>(())
//! ```
//!
//! # What a county holds
//! - schools in townships (one junior middle school, a central primary school
//!   and village primary schools per township; a nine-year school where a
//!   township has only one), each with its teachers;
//! - households of 1–3 siblings with their child cards: names from common
//!   surnames (polyphonic 单 曾 解 区 仇 查 among them) and gender-appropriate
//!   given names; valid 18-character IDs (GB 11643, birth date and sex digit
//!   agreeing with the card; about 8% of children have none); grade from the
//!   birth date (school year from 1 September); parents working in real
//!   cities; grandparents as guardians mostly, 无人监护 rare; a few children
//!   whose parents came home, who moved away or who dropped out;
//! - home visits over the past two years (a third of them the summer
//!   campaign 暑期家访), most finalised, with follow-ups and a few amendments;
//! - with [`DemoSpec::extras`]: help plans (some revised), aid, absences,
//!   dropout events and persuasion visits, family contacts, psychological
//!   notes, one screening round per school with an entry per child, and
//!   safety-education sessions with attendees.
//!
//! # Determinism
//! Four independent ChaCha8 streams (schools, children, visits, extras) come
//! from the seed, so the schools and children of a seed do not change when
//! visits or extras are switched off: [`children`] yields exactly the cards
//! [`records`] yields. Dates are relative to the `today` passed in
//! ([`Store::today`] for [`generate`]); the same seed on another day gives the
//! same people a day older. Ids are UUIDv7 made from the stream, not the
//! clock. Only records the store makes itself (plan versions, visit
//! amendments) get fresh ids.

mod gen;
mod names;
mod pick;
mod places;
mod texts;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use serde_json::Value;
use shouhu_core::*;
use shouhu_store::{Store, StoreError, Writer};
use uuid::Uuid;

pub use gen::Records;
pub use places::{COUNTY, COUNTY_CODE, PREFECTURE, PROVINCE, TOWNSHIPS};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoSpec {
    pub seed: u64,
    /// Townships the schools are spread over (at most 20, and at most one
    /// per school).
    pub townships: usize,
    pub schools: usize,
    pub children: usize,
    /// Home visits per child on average; the total is
    /// `round(children × visits_per_child)` exactly, spread at random (some
    /// children have none, some many).
    pub visits_per_child: f64,
    /// Everything beyond schools, households, children and visits (plans,
    /// follow-ups, aid, attendance, dropouts, family contacts, notes,
    /// screening, safety education).
    pub extras: bool,
    /// Records per transaction in [`generate`].
    pub batch_size: usize,
}

impl Default for DemoSpec {
    /// A small county: 600 children in 8 schools of 3 townships, 3 visits a
    /// child, every kind of record.
    fn default() -> Self {
        DemoSpec {
            seed: 1,
            townships: 3,
            schools: 8,
            children: 600,
            visits_per_child: 3.0,
            extras: true,
            batch_size: 1000,
        }
    }
}

impl DemoSpec {
    /// The benchmark's county: `children` children and exactly `visits`
    /// visits, one school per 250 children (at least 8), up to 20 townships,
    /// and no other records.
    pub fn bench(children: usize, visits: usize, seed: u64) -> DemoSpec {
        let schools = (children / 250).max(8);
        DemoSpec {
            seed,
            townships: (schools / 8).clamp(3, TOWNSHIPS.len()),
            schools,
            children,
            visits_per_child: if children == 0 {
                0.0
            } else {
                visits as f64 / children as f64
            },
            extras: false,
            batch_size: 1000,
        }
    }

    /// The exact number of home visits.
    pub fn total_visits(&self) -> usize {
        if self.children == 0 || !self.visits_per_child.is_finite() {
            return 0;
        }
        (self.children as f64 * self.visits_per_child.max(0.0)).round() as usize
    }
}

/// One step of building the county: a record to create with its id, or an
/// edit of a record created earlier in the stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    School(Uuid, Box<School>),
    Household(Uuid, Box<Household>),
    Child(Uuid, Box<ChildCard>),
    HelpPlan(Uuid, Box<HelpPlan>),
    /// A revision of a help plan created earlier (the store archives the old
    /// content as a plan version).
    RevisePlan(Uuid, Box<HelpPlan>),
    HomeVisit(Uuid, Box<HomeVisit>),
    /// A correction of a finalised visit (the store makes the amendment
    /// record, with its own id).
    AmendVisit {
        visit_id: Uuid,
        field: String,
        value: Value,
        reason: String,
    },
    FollowUp(Uuid, Box<FollowUp>),
    PsychNote(Uuid, Box<PsychNote>),
    Aid(Uuid, Box<Aid>),
    Absence(Uuid, Box<Absence>),
    DropoutEvent(Uuid, Box<DropoutEvent>),
    PersuasionVisit(Uuid, Box<PersuasionVisit>),
    FamilyContact(Uuid, Box<FamilyContact>),
    SafetySession(Uuid, Box<SafetySession>),
    ScreeningRound(Uuid, Box<ScreeningRound>),
    ScreeningEntry(Uuid, Box<ScreeningEntry>),
}

/// Where records go: the store's [`Writer`], or anything else that wants the
/// same rows (the benchmark's bare SQLite baseline).
pub trait Sink {
    type Error;
    fn create<T: Entity>(&mut self, id: Uuid, body: T) -> Result<(), Self::Error>;
    fn revise_plan(&mut self, id: Uuid, body: HelpPlan) -> Result<(), Self::Error>;
    fn amend_visit(
        &mut self,
        visit_id: Uuid,
        field: &str,
        value: Value,
        reason: &str,
    ) -> Result<(), Self::Error>;
}

impl Sink for Writer<'_> {
    type Error = StoreError;
    fn create<T: Entity>(&mut self, id: Uuid, body: T) -> Result<(), StoreError> {
        self.create_with_id(id, body).map(|_| ())
    }
    fn revise_plan(&mut self, id: Uuid, body: HelpPlan) -> Result<(), StoreError> {
        self.update(id, body).map(|_| ())
    }
    fn amend_visit(
        &mut self,
        visit_id: Uuid,
        field: &str,
        value: Value,
        reason: &str,
    ) -> Result<(), StoreError> {
        Writer::amend_visit(self, visit_id, field, value, reason).map(|_| ())
    }
}

impl Record {
    /// The kind of record this step makes (a plan revision makes a plan
    /// version; an amendment a visit amendment).
    pub fn kind(&self) -> EntityKind {
        match self {
            Record::School(..) => EntityKind::School,
            Record::Household(..) => EntityKind::Household,
            Record::Child(..) => EntityKind::Child,
            Record::HelpPlan(..) => EntityKind::HelpPlan,
            Record::RevisePlan(..) => EntityKind::PlanVersion,
            Record::HomeVisit(..) => EntityKind::HomeVisit,
            Record::AmendVisit { .. } => EntityKind::VisitAmendment,
            Record::FollowUp(..) => EntityKind::FollowUp,
            Record::PsychNote(..) => EntityKind::PsychNote,
            Record::Aid(..) => EntityKind::Aid,
            Record::Absence(..) => EntityKind::Absence,
            Record::DropoutEvent(..) => EntityKind::DropoutEvent,
            Record::PersuasionVisit(..) => EntityKind::PersuasionVisit,
            Record::FamilyContact(..) => EntityKind::FamilyContact,
            Record::SafetySession(..) => EntityKind::SafetySession,
            Record::ScreeningRound(..) => EntityKind::ScreeningRound,
            Record::ScreeningEntry(..) => EntityKind::ScreeningEntry,
        }
    }

    /// The id of the record created (or revised); `None` for an amendment,
    /// whose id the store assigns.
    pub fn id(&self) -> Option<Uuid> {
        match self {
            Record::School(id, _)
            | Record::Household(id, _)
            | Record::Child(id, _)
            | Record::HelpPlan(id, _)
            | Record::RevisePlan(id, _)
            | Record::HomeVisit(id, _)
            | Record::FollowUp(id, _)
            | Record::PsychNote(id, _)
            | Record::Aid(id, _)
            | Record::Absence(id, _)
            | Record::DropoutEvent(id, _)
            | Record::PersuasionVisit(id, _)
            | Record::FamilyContact(id, _)
            | Record::SafetySession(id, _)
            | Record::ScreeningRound(id, _)
            | Record::ScreeningEntry(id, _) => Some(*id),
            Record::AmendVisit { .. } => None,
        }
    }

    /// Hand the record to a sink.
    pub fn apply<S: Sink>(self, sink: &mut S) -> Result<(), S::Error> {
        match self {
            Record::School(id, b) => sink.create(id, *b),
            Record::Household(id, b) => sink.create(id, *b),
            Record::Child(id, b) => sink.create(id, *b),
            Record::HelpPlan(id, b) => sink.create(id, *b),
            Record::RevisePlan(id, b) => sink.revise_plan(id, *b),
            Record::HomeVisit(id, b) => sink.create(id, *b),
            Record::AmendVisit {
                visit_id,
                field,
                value,
                reason,
            } => sink.amend_visit(visit_id, &field, value, &reason),
            Record::FollowUp(id, b) => sink.create(id, *b),
            Record::PsychNote(id, b) => sink.create(id, *b),
            Record::Aid(id, b) => sink.create(id, *b),
            Record::Absence(id, b) => sink.create(id, *b),
            Record::DropoutEvent(id, b) => sink.create(id, *b),
            Record::PersuasionVisit(id, b) => sink.create(id, *b),
            Record::FamilyContact(id, b) => sink.create(id, *b),
            Record::SafetySession(id, b) => sink.create(id, *b),
            Record::ScreeningRound(id, b) => sink.create(id, *b),
            Record::ScreeningEntry(id, b) => sink.create(id, *b),
        }
    }
}

/// Every record of the county `spec` describes, as of `today`, in an order
/// where references point backwards (schools and screening rounds first;
/// then per household: the household, its children, each child's visits
/// with their follow-ups and the child's other records, the household's
/// plan; safety sessions last). Memory stays small: one household at a time.
pub fn records(spec: &DemoSpec, today: NaiveDate) -> Records {
    Records::new(spec, today)
}

/// The children of the county (the same cards, with the same ids, as
/// [`records`] yields), without generating anything else.
pub fn children(spec: &DemoSpec, today: NaiveDate) -> impl Iterator<Item = (Uuid, ChildCard)> {
    let only = DemoSpec {
        visits_per_child: 0.0,
        extras: false,
        ..spec.clone()
    };
    records(&only, today).filter_map(|r| match r {
        Record::Child(id, card) => Some((id, *card)),
        _ => None,
    })
}

/// How far [`generate`] has got: reported after each committed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Records written so far.
    pub records: usize,
    /// Children written so far, of `children_total` (children come with
    /// their households, so this is the measure of progress to show).
    pub children: usize,
    pub children_total: usize,
}

impl Progress {
    /// Between 0 and 1.
    pub fn fraction(&self) -> f64 {
        if self.children_total == 0 {
            1.0
        } else {
            self.children as f64 / self.children_total as f64
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoReport {
    pub seed: u64,
    pub today: NaiveDate,
    /// Records created per kind (plan versions and visit amendments
    /// included).
    pub counts: BTreeMap<EntityKind, usize>,
    pub total: usize,
    pub elapsed: Duration,
}

impl DemoReport {
    pub fn count(&self, kind: EntityKind) -> usize {
        self.counts.get(&kind).copied().unwrap_or(0)
    }
}

/// Write the county `spec` describes into `store`, `spec.batch_size` records
/// per transaction, calling `progress` after each. Dates are relative to
/// [`Store::today`]. A store that already holds this seed's county fails
/// with `AlreadyExists` on the first batch (ids are deterministic); batches
/// committed before an error stay.
pub fn generate(
    store: &mut Store,
    spec: &DemoSpec,
    progress: &mut dyn FnMut(Progress),
) -> Result<DemoReport, StoreError> {
    generate_with(store, spec, progress, &mut |_, note| Ok(note))
}

/// [`generate`], with each psychological note passed through `note` before
/// it is written (the app seals them for the demo's counselors, so no note
/// is ever stored or logged in plain).
pub fn generate_with<E: From<StoreError>>(
    store: &mut Store,
    spec: &DemoSpec,
    progress: &mut dyn FnMut(Progress),
    note: &mut dyn FnMut(Uuid, PsychNote) -> Result<PsychNote, E>,
) -> Result<DemoReport, E> {
    let started = Instant::now();
    let today = store.today();
    let mut it = records(spec, today);
    let batch_size = if spec.batch_size == 0 {
        1000
    } else {
        spec.batch_size
    };
    let mut counts = BTreeMap::new();
    let mut batch: Vec<Record> = Vec::with_capacity(batch_size);
    let mut done = Progress {
        records: 0,
        children: 0,
        children_total: spec.children,
    };
    loop {
        batch.extend(it.by_ref().take(batch_size));
        if batch.is_empty() {
            break;
        }
        let mut children = 0;
        for r in batch.iter_mut() {
            if let Record::PsychNote(id, body) = r {
                **body = note(*id, std::mem::take(&mut **body))?;
            }
        }
        for r in &batch {
            *counts.entry(r.kind()).or_insert(0) += 1;
            children += usize::from(matches!(r, Record::Child(..)));
        }
        let n = batch.len();
        store.write(|w| {
            for r in batch.drain(..) {
                r.apply(w)?;
            }
            Ok(())
        })?;
        done.records += n;
        done.children += children;
        progress(done);
    }
    Ok(DemoReport {
        seed: spec.seed,
        today,
        total: counts.values().sum(),
        counts,
        elapsed: started.elapsed(),
    })
}
