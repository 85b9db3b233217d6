//! What the vault's tests share: fast key derivation, a fixed "now", one
//! school's scope and a laptop user of it.

#![allow(dead_code)]

use chrono::{TimeZone, Utc};
use shouhu_auth::password::KdfParams;
use shouhu_auth::{Role, Scope};
use shouhu_vault::NewUser;
use uuid::Uuid;

pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Argon2id at its cheapest: tests, never a real laptop.
pub const FAST: KdfParams = KdfParams {
    m_kib: 64,
    t: 1,
    p: 1,
};

pub fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 8, 0, 0)
        .single()
        .unwrap_or_default()
}

pub fn school_scope() -> Scope {
    Scope::School {
        school_id: Uuid::from_u128(1),
        township_id: Uuid::from_u128(2),
    }
}

/// A laptop user of the school (display name "<login> 老师").
pub fn user(login: &str, role: Role, password: &str) -> NewUser {
    NewUser {
        user_id: Uuid::now_v7(),
        login_name: login.into(),
        display_name: format!("{login} 老师"),
        role,
        scope: school_scope(),
        password: password.into(),
    }
}
