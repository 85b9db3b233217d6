//! Roles and the permission matrix.
//!
//! A user has one [`Role`] and one [`Scope`] (a school, a township or the
//! county). An [`Action`] is asked about a [`Target`]: the school and township
//! that the record belongs to, or the county itself for county-level things
//! (users, devices, the audit log). [`allowed`] answers from one table; nothing
//! else in the product decides permissions.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AuthError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 班主任 / 结对教师: their school's cards, plans, visits, aid, attendance;
    /// a child's counseling flag, never notes.
    Teacher,
    /// 心理教师: a teacher's rights plus the psychological notes of their school.
    Counselor,
    /// 校长: the whole school, approves plans, school reports; no notes.
    Principal,
    /// 乡镇教育办: township reports and sync hub; reads, does not edit; no notes.
    TownshipStaff,
    /// 县教育局: users, devices, schools, county reports and funds, the audit
    /// log; no notes.
    CountyAdmin,
    /// 县心理健康督导: reads notes county-wide (and the records around them);
    /// writes nothing.
    PsychSupervisor,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Teacher,
        Role::Counselor,
        Role::Principal,
        Role::TownshipStaff,
        Role::CountyAdmin,
        Role::PsychSupervisor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Teacher => "teacher",
            Role::Counselor => "counselor",
            Role::Principal => "principal",
            Role::TownshipStaff => "township_staff",
            Role::CountyAdmin => "county_admin",
            Role::PsychSupervisor => "psych_supervisor",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Role::Teacher => "教师",
            Role::Counselor => "心理教师",
            Role::Principal => "校长",
            Role::TownshipStaff => "乡镇教育办人员",
            Role::CountyAdmin => "县教育局管理员",
            Role::PsychSupervisor => "县心理健康督导",
        }
    }

    /// Whether this role may ever hold psychological note keys (and so gets a
    /// reader key pair and note ciphertext synced to its devices).
    pub fn reads_notes(self) -> bool {
        matches!(self, Role::Counselor | Role::PsychSupervisor)
    }
}

/// Where a user works. A school user is also inside its township.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    School { school_id: Uuid, township_id: Uuid },
    Township { township_id: Uuid },
    County,
}

/// What an action is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// A record of one school (a child and everything about the child).
    School { school_id: Uuid, township_id: Uuid },
    /// Township-level things (township reports).
    Township { township_id: Uuid },
    /// County-level things: users, devices, schools, the audit log, county reports.
    County,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Child cards, households and plans, visits, aid, absences, dropout and
    /// persuasion visits, family contacts, safety education, screening.
    ReadRecords,
    WriteRecords,
    /// Approve a help plan version.
    ApprovePlan,
    /// That a child is under counseling, and safety alerts a counselor raised.
    ReadCounselingFlag,
    /// Raise or clear a counseling flag or safety alert.
    WriteCounselingFlag,
    ReadNotes,
    WriteNotes,
    /// Export to Excel/JSONL, print cards.
    Export,
    ReadReports,
    ManageUsers,
    ManageDevices,
    ManageSchools,
    ReadAudit,
}

impl Action {
    pub const ALL: [Action; 13] = [
        Action::ReadRecords,
        Action::WriteRecords,
        Action::ApprovePlan,
        Action::ReadCounselingFlag,
        Action::WriteCounselingFlag,
        Action::ReadNotes,
        Action::WriteNotes,
        Action::Export,
        Action::ReadReports,
        Action::ManageUsers,
        Action::ManageDevices,
        Action::ManageSchools,
        Action::ReadAudit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::ReadRecords => "read_records",
            Action::WriteRecords => "write_records",
            Action::ApprovePlan => "approve_plan",
            Action::ReadCounselingFlag => "read_counseling_flag",
            Action::WriteCounselingFlag => "write_counseling_flag",
            Action::ReadNotes => "read_notes",
            Action::WriteNotes => "write_notes",
            Action::Export => "export",
            Action::ReadReports => "read_reports",
            Action::ManageUsers => "manage_users",
            Action::ManageDevices => "manage_devices",
            Action::ManageSchools => "manage_schools",
            Action::ReadAudit => "read_audit",
        }
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            Action::ReadRecords => "查看儿童档案",
            Action::WriteRecords => "修改儿童档案",
            Action::ApprovePlan => "审批帮扶计划",
            Action::ReadCounselingFlag => "查看心理关注标记",
            Action::WriteCounselingFlag => "设置心理关注标记",
            Action::ReadNotes => "查看心理辅导记录",
            Action::WriteNotes => "填写心理辅导记录",
            Action::Export => "导出或打印",
            Action::ReadReports => "查看统计报表",
            Action::ManageUsers => "管理用户",
            Action::ManageDevices => "管理设备",
            Action::ManageSchools => "管理学校",
            Action::ReadAudit => "查看审计日志",
        }
    }
}

/// How far a role's right reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Only targets inside the user's own scope.
    OwnScope,
    /// Anywhere in the county (the user's scope is the county for these roles).
    County,
}

/// The matrix: `None` means never.
fn reach(role: Role, action: Action) -> Option<Reach> {
    use Action::*;
    use Role::*;
    let own = Some(Reach::OwnScope);
    match (role, action) {
        (Teacher | Counselor | Principal, ReadRecords | WriteRecords) => own,
        (Teacher | Counselor | Principal, ReadCounselingFlag) => own,
        (Counselor, WriteCounselingFlag | ReadNotes | WriteNotes) => own,
        (Principal, ApprovePlan | Export | ReadReports) => own,
        (TownshipStaff, ReadRecords | ReadCounselingFlag | Export | ReadReports) => own,
        (
            CountyAdmin,
            ReadRecords | ReadCounselingFlag | Export | ReadReports | ManageUsers | ManageDevices
            | ManageSchools | ReadAudit,
        ) => Some(Reach::County),
        (PsychSupervisor, ReadRecords | ReadCounselingFlag | ReadNotes) => Some(Reach::County),
        _ => None,
    }
}

fn inside(scope: Scope, target: Target) -> bool {
    match (scope, target) {
        (Scope::County, _) => true,
        (Scope::Township { township_id }, Target::School { township_id: t, .. })
        | (Scope::Township { township_id }, Target::Township { township_id: t }) => {
            township_id == t
        }
        (Scope::School { school_id, .. }, Target::School { school_id: s, .. }) => school_id == s,
        _ => false,
    }
}

/// Whether `role` working in `scope` may do `action` on `target`.
pub fn allowed(role: Role, scope: Scope, action: Action, target: Target) -> bool {
    match reach(role, action) {
        None => false,
        Some(Reach::County) => true,
        Some(Reach::OwnScope) => inside(scope, target),
    }
}

/// [`allowed`] as a `Result`, for `?` in the library and the server.
pub fn check(role: Role, scope: Scope, action: Action, target: Target) -> Result<(), AuthError> {
    if allowed(role, scope, action, target) {
        Ok(())
    } else {
        Err(AuthError::Forbidden { role, action })
    }
}

/// Whether a logged-in user may give another user access to this laptop (wrap
/// the data key for them): a county admin for anyone; a principal for the
/// teachers, counselors and principals of their own school. Accounts
/// themselves are created by county admins on the server.
pub fn may_add_laptop_user(
    granter: Role,
    granter_scope: Scope,
    new_role: Role,
    new_scope: Scope,
) -> bool {
    match granter {
        Role::CountyAdmin => true,
        Role::Principal => {
            matches!(new_role, Role::Teacher | Role::Counselor | Role::Principal)
                && matches!(
                    (granter_scope, new_scope),
                    (Scope::School { school_id: a, .. }, Scope::School { school_id: b, .. }) if a == b
                )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (Uuid, Uuid, Uuid, Uuid) {
        (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        )
    }

    #[test]
    fn the_matrix_in_own_scope() {
        let (school, township, ..) = ids();
        let scope_for = |role: Role| match role {
            Role::Teacher | Role::Counselor | Role::Principal => Scope::School {
                school_id: school,
                township_id: township,
            },
            Role::TownshipStaff => Scope::Township {
                township_id: township,
            },
            Role::CountyAdmin | Role::PsychSupervisor => Scope::County,
        };
        let own_school = Target::School {
            school_id: school,
            township_id: township,
        };
        use Action::*;
        // (role, actions allowed on a record of the user's own school)
        let expected: [(Role, &[Action]); 6] = [
            (
                Role::Teacher,
                &[ReadRecords, WriteRecords, ReadCounselingFlag],
            ),
            (
                Role::Counselor,
                &[
                    ReadRecords,
                    WriteRecords,
                    ReadCounselingFlag,
                    WriteCounselingFlag,
                    ReadNotes,
                    WriteNotes,
                ],
            ),
            (
                Role::Principal,
                &[
                    ReadRecords,
                    WriteRecords,
                    ApprovePlan,
                    ReadCounselingFlag,
                    Export,
                    ReadReports,
                ],
            ),
            (
                Role::TownshipStaff,
                &[ReadRecords, ReadCounselingFlag, Export, ReadReports],
            ),
            (
                Role::CountyAdmin,
                &[
                    ReadRecords,
                    ReadCounselingFlag,
                    Export,
                    ReadReports,
                    ManageUsers,
                    ManageDevices,
                    ManageSchools,
                    ReadAudit,
                ],
            ),
            (
                Role::PsychSupervisor,
                &[ReadRecords, ReadCounselingFlag, ReadNotes],
            ),
        ];
        for (role, allowed_actions) in expected {
            for action in Action::ALL {
                assert_eq!(
                    allowed(role, scope_for(role), action, own_school),
                    allowed_actions.contains(&action),
                    "{role:?} {action:?}"
                );
            }
        }
    }

    #[test]
    fn nobody_but_counselors_and_supervisors_reads_notes() {
        let (school, township, ..) = ids();
        let target = Target::School {
            school_id: school,
            township_id: township,
        };
        for role in Role::ALL {
            for scope in [
                Scope::County,
                Scope::Township {
                    township_id: township,
                },
                Scope::School {
                    school_id: school,
                    township_id: township,
                },
            ] {
                assert_eq!(
                    allowed(role, scope, Action::ReadNotes, target),
                    role.reads_notes(),
                    "{role:?} {scope:?}"
                );
            }
        }
    }

    #[test]
    fn another_school_or_township_is_refused() {
        let (school, township, other_school, other_township) = ids();
        let teacher_scope = Scope::School {
            school_id: school,
            township_id: township,
        };
        let neighbour = Target::School {
            school_id: other_school,
            township_id: township,
        };
        for role in [Role::Teacher, Role::Counselor, Role::Principal] {
            for action in Action::ALL {
                assert!(!allowed(role, teacher_scope, action, neighbour));
            }
        }
        let err = check(Role::Counselor, teacher_scope, Action::ReadNotes, neighbour);
        assert_eq!(err.map_err(|e| e.code()), Err("auth.forbidden"));

        let township_scope = Scope::Township {
            township_id: township,
        };
        let far = Target::School {
            school_id: other_school,
            township_id: other_township,
        };
        assert!(allowed(
            Role::TownshipStaff,
            township_scope,
            Action::ReadRecords,
            neighbour
        ));
        assert!(!allowed(
            Role::TownshipStaff,
            township_scope,
            Action::ReadRecords,
            far
        ));
        assert!(!allowed(
            Role::TownshipStaff,
            township_scope,
            Action::WriteRecords,
            neighbour
        ));
        // County-level targets only for county reach.
        assert!(!allowed(
            Role::Principal,
            teacher_scope,
            Action::ManageUsers,
            Target::County
        ));
        assert!(allowed(
            Role::CountyAdmin,
            Scope::County,
            Action::ReadAudit,
            Target::County
        ));
        assert!(allowed(
            Role::PsychSupervisor,
            Scope::County,
            Action::ReadNotes,
            far
        ));
    }

    #[test]
    fn who_may_add_a_user_to_a_laptop() {
        let (school, township, other, _) = ids();
        let here = Scope::School {
            school_id: school,
            township_id: township,
        };
        let there = Scope::School {
            school_id: other,
            township_id: township,
        };
        assert!(may_add_laptop_user(
            Role::CountyAdmin,
            Scope::County,
            Role::Teacher,
            there
        ));
        assert!(may_add_laptop_user(
            Role::Principal,
            here,
            Role::Counselor,
            here
        ));
        assert!(!may_add_laptop_user(
            Role::Principal,
            here,
            Role::Counselor,
            there
        ));
        assert!(!may_add_laptop_user(
            Role::Principal,
            here,
            Role::CountyAdmin,
            Scope::County
        ));
        assert!(!may_add_laptop_user(
            Role::Teacher,
            here,
            Role::Teacher,
            here
        ));
        assert!(!may_add_laptop_user(
            Role::Counselor,
            here,
            Role::Teacher,
            here
        ));
    }

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            let json = serde_json::to_string(&role).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
