//! Test data written straight into the store file before the app starts, and
//! read back after it has quit. The store is encrypted: the fixtures log in
//! through the vault as the e2e user ([`E2E_LOGIN`]), whom [`ensure_account`]
//! makes the laptop's first account (the harness does this before it starts
//! the app and logs in through the UI).

use std::path::Path;

use chrono::NaiveDate;
use shouhu_core::{ChildCard, Gender, HomeVisit, Stored};
use shouhu_vault::{NewUser, Session, Vault, VaultState};
use uuid::Uuid;

use crate::E2eError;

/// The e2e user: a counselor (the one role that reads and writes every kind
/// of record, psychological notes included).
pub const E2E_LOGIN: &str = "e2e-counselor";
pub const E2E_NAME: &str = "测试心理老师";
pub const E2E_PASSWORD: &str = "shouhu-e2e-2026";

fn vault(db: &Path, identity: &Path) -> Vault {
    Vault::new(db).with_identity_dir(identity)
}

fn vault_err(what: &str) -> impl Fn(shouhu_vault::VaultError) -> E2eError + '_ {
    move |e| E2eError::Process(format!("{what}: {e}"))
}

/// Make the e2e user the laptop's first account, unless it is set up
/// already (a plain store is encrypted in place).
pub fn ensure_account(db: &Path, identity: &Path) -> Result<(), E2eError> {
    if let Some(dir) = db.parent() {
        std::fs::create_dir_all(dir)
            .map_err(E2eError::io(format!("creating {}", dir.display())))?;
    }
    let v = vault(db, identity);
    if let VaultState::Ready { .. } = v.state().map_err(vault_err("reading the vault"))? {
        return Ok(());
    }
    v.set_up(NewUser {
        user_id: Uuid::now_v7(),
        login_name: E2E_LOGIN.into(),
        display_name: E2E_NAME.into(),
        role: shouhu_auth::Role::Counselor,
        scope: shouhu_auth::Scope::County,
        password: E2E_PASSWORD.into(),
    })
    .map_err(vault_err("setting up the e2e account"))?
    .lock();
    Ok(())
}

/// Log in as the e2e user (setting the account up first if needed).
fn open(db: &Path, identity: &Path) -> Result<Session, E2eError> {
    ensure_account(db, identity)?;
    vault(db, identity)
        .log_in(E2E_LOGIN, E2E_PASSWORD, chrono::Utc::now())
        .map_err(vault_err(&format!("opening the store {}", db.display())))
}

/// Run `f` on the store, logged in as the e2e user (the app must not be running).
pub fn with_store<R>(
    db: &Path,
    identity: &Path,
    f: impl FnOnce(&mut shouhu_store::Store) -> R,
) -> Result<R, E2eError> {
    let mut session = open(db, identity)?;
    Ok(f(session.store_mut()))
}

/// A child to seed.
#[derive(Debug, Clone)]
pub struct NewChild {
    pub name: &'static str,
    pub gender: Gender,
    pub birth_date: NaiveDate,
}

/// Write `children` (name, gender, birth date only) into the store; their ids.
pub fn seed_children(
    db: &Path,
    identity: &Path,
    children: &[NewChild],
) -> Result<Vec<Uuid>, E2eError> {
    let mut session = open(db, identity)?;
    session
        .store_mut()
        .write(|w| {
            children
                .iter()
                .map(|c| {
                    w.create(ChildCard {
                        name: c.name.to_string(),
                        gender: Some(c.gender),
                        birth_date: Some(c.birth_date),
                        ..ChildCard::default()
                    })
                    .map(|s| s.id())
                })
                .collect()
        })
        .map_err(|e| E2eError::Process(format!("seeding children: {e}")))
}

/// Fill the store with a small `shouhu-demo` county (every kind of record).
pub fn seed_demo(db: &Path, identity: &Path, children: usize) -> Result<(), E2eError> {
    let mut session = open(db, identity)?;
    let spec = shouhu_demo::DemoSpec {
        seed: 7,
        townships: 2,
        schools: 3,
        children,
        visits_per_child: 2.0,
        extras: true,
        batch_size: 1000,
    };
    shouhu_demo::generate(session.store_mut(), &spec, &mut |_| {})
        .map(drop)
        .map_err(|e| E2eError::Process(format!("seeding the demo county: {e}")))
}

/// Every child card in the store (open it only after the app has quit).
pub fn children(db: &Path, identity: &Path) -> Result<Vec<Stored<ChildCard>>, E2eError> {
    open(db, identity)?
        .store()
        .list_all::<ChildCard>()
        .map_err(|e| E2eError::Process(format!("listing children: {e}")))
}

/// Every home visit in the store.
pub fn visits(db: &Path, identity: &Path) -> Result<Vec<Stored<HomeVisit>>, E2eError> {
    open(db, identity)?
        .store()
        .list_all::<HomeVisit>()
        .map_err(|e| E2eError::Process(format!("listing visits: {e}")))
}

/// An 18-digit resident ID number (GB 11643) for `region`, `birth` and the
/// 3-digit `sequence` (odd = male), with its ISO 7064 MOD 11-2 check digit.
pub fn id_number(region: &str, birth: NaiveDate, sequence: u16) -> String {
    let body = format!("{region}{}{sequence:03}", birth.format("%Y%m%d"));
    format!("{body}{}", check_digit(&body))
}

/// The check character of the first 17 digits of an ID number.
pub fn check_digit(first17: &str) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let sum: u32 = first17
        .chars()
        .filter_map(|c| c.to_digit(10))
        .zip(WEIGHTS)
        .map(|(d, w)| d * w)
        .sum();
    CHECK[(sum % 11) as usize]
}

/// The same ID number with a wrong check character.
pub fn with_wrong_check(id: &str) -> String {
    let (body, check) = id.split_at(17);
    let wrong = ['1', '2', '3']
        .into_iter()
        .find(|c| c.to_string() != check)
        .unwrap_or('1');
    format!("{body}{wrong}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_numbers_pass_the_core_check_and_the_wrong_one_fails() {
        let birth = NaiveDate::from_ymd_opt(2015, 3, 7).unwrap_or_default();
        let id = id_number("520522", birth, 13);
        assert_eq!(id.len(), 18);
        assert!(
            shouhu_core::validate::check_id_number_for("id", &id, Some(birth), Some(Gender::Male))
                .is_ok(),
            "{id}"
        );
        let bad = with_wrong_check(&id);
        assert_ne!(bad, id);
        assert!(
            shouhu_core::validate::check_id_number_for("id", &bad, Some(birth), Some(Gender::Male))
                .is_err(),
            "{bad}"
        );
        // The example of GB 11643.
        assert_eq!(check_digit("11010519491231002"), 'X');
    }
}
