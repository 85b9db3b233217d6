//! One child's file (一人一卡): the card and everything recorded about the
//! child, plus the change log behind it, for the card screen's timeline.

use serde::Serialize;
use shouhu_core::*;
use uuid::Uuid;

use crate::changelog::ChangeEntry;
use crate::error::Result;
use crate::store::Store;

#[derive(Debug, Clone, Serialize)]
pub struct ChildHistory {
    pub child: Stored<ChildCard>,
    pub household: Option<Stored<Household>>,
    pub siblings: Vec<Stored<ChildCard>>,
    pub plans: Vec<Stored<HelpPlan>>,
    pub visits: Vec<Stored<HomeVisit>>,
    pub amendments: Vec<Stored<VisitAmendment>>,
    pub follow_ups: Vec<Stored<FollowUp>>,
    /// Empty unless the caller may read psychological notes.
    pub psych_notes: Vec<Stored<PsychNote>>,
    pub aid: Vec<Stored<Aid>>,
    pub absences: Vec<Stored<Absence>>,
    pub dropouts: Vec<Stored<DropoutEvent>>,
    pub persuasions: Vec<Stored<PersuasionVisit>>,
    pub contacts: Vec<Stored<FamilyContact>>,
    pub screenings: Vec<Stored<ScreeningEntry>>,
    /// Changes to the card itself, oldest first: who changed what and when.
    pub card_changes: Vec<ChangeEntry>,
}

impl Store {
    /// The child's whole file. `with_notes` includes psychological notes; the
    /// caller decides it from the user's role.
    pub fn child_history(&self, child_id: Uuid, with_notes: bool) -> Result<ChildHistory> {
        let child = self.fetch::<ChildCard>(child_id)?;
        let (household, siblings, plans) = match child.body.household_id {
            Some(h) => (
                self.get::<Household>(h)?,
                self.list_by_parent::<ChildCard>(h)?
                    .into_iter()
                    .filter(|s| s.meta.id != child_id)
                    .collect(),
                self.list_by_parent::<HelpPlan>(h)?,
            ),
            None => (None, vec![], vec![]),
        };
        Ok(ChildHistory {
            household,
            siblings,
            plans,
            visits: self.list_by_child(child_id)?,
            amendments: self.list_by_child(child_id)?,
            follow_ups: self.list_by_child(child_id)?,
            psych_notes: if with_notes {
                self.list_by_child(child_id)?
            } else {
                vec![]
            },
            aid: self.list_by_child(child_id)?,
            absences: self.list_by_child(child_id)?,
            dropouts: self.list_by_child(child_id)?,
            persuasions: self.list_by_child(child_id)?,
            contacts: self.list_by_child(child_id)?,
            screenings: self.list_by_child(child_id)?,
            card_changes: self.changes_for_record(child_id)?,
            child,
        })
    }
}
