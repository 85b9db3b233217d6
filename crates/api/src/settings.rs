//! The app's settings, kept in the store's settings table so a restarted app
//! keeps them: language, text size, "my school" and the auto-lock minutes.
//! (The role is the logged-in user's, from the vault: see `account`.)

use serde::{Deserialize, Serialize};
use shouhu_core::Lang;
use uuid::Uuid;

use crate::{Error, Result, Store};

pub const SETTING_LANGUAGE: &str = "ui.language";
pub const SETTING_TEXT_SIZE: &str = "ui.text_size";
pub const SETTING_SCHOOL: &str = "ui.school_id";
pub const SETTING_AUTO_LOCK: &str = "ui.auto_lock_minutes";
/// Set on a store made by "use demo data": the log-in screen may show the
/// demo password (see `account::DEMO_MARKER`).
pub const SETTING_DEMO: &str = "demo";

/// Auto-lock after this many idle minutes unless the setting says otherwise.
pub const DEFAULT_AUTO_LOCK_MINUTES: u32 = 10;
pub const MAX_AUTO_LOCK_MINUTES: u32 = 240;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// `zh-CN` (default) or `en`.
    pub language: String,
    /// `normal` (default) or `large`.
    pub text_size: String,
    /// The school this laptop works for; `None` shows every school.
    pub school_id: Option<Uuid>,
    /// Lock after this many minutes without user input (1 to 240, default 10).
    pub auto_lock_minutes: u32,
    /// A store made by "use demo data".
    pub demo: bool,
}

/// A change to one setting: `{"key": "language", "value": "en"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingChange {
    pub key: String,
    pub value: String,
}

pub fn get_settings(store: &Store) -> Result<Settings> {
    let language = match store.setting(SETTING_LANGUAGE)?.as_deref() {
        Some("en") => "en",
        _ => "zh-CN",
    };
    let text_size = match store.setting(SETTING_TEXT_SIZE)?.as_deref() {
        Some("large") => "large",
        _ => "normal",
    };
    let school_id = store
        .setting(SETTING_SCHOOL)?
        .and_then(|s| Uuid::parse_str(&s).ok());
    let auto_lock_minutes = store
        .setting(SETTING_AUTO_LOCK)?
        .and_then(|s| s.parse::<u32>().ok())
        .filter(|m| (1..=MAX_AUTO_LOCK_MINUTES).contains(m))
        .unwrap_or(DEFAULT_AUTO_LOCK_MINUTES);
    Ok(Settings {
        language: language.into(),
        text_size: text_size.into(),
        school_id,
        auto_lock_minutes,
        demo: store.setting(SETTING_DEMO)?.as_deref() == Some("true"),
    })
}

/// Change one setting; unknown keys and values are refused.
pub fn set_setting(store: &mut Store, change: &SettingChange) -> Result<Settings> {
    let bad = || Error::InvalidInput {
        field: change.key.clone(),
        value: change.value.clone(),
    };
    let v = change.value.as_str();
    match change.key.as_str() {
        "language" if v == "zh-CN" || v == "en" => store.set_setting(SETTING_LANGUAGE, v)?,
        "text_size" if v == "normal" || v == "large" => store.set_setting(SETTING_TEXT_SIZE, v)?,
        "school_id" => {
            if v.is_empty() {
                store.set_setting(SETTING_SCHOOL, "")?;
            } else {
                let id = Uuid::parse_str(v).map_err(|_| bad())?;
                store.fetch::<shouhu_core::School>(id)?;
                store.set_setting(SETTING_SCHOOL, &id.to_string())?;
            }
        }
        "auto_lock_minutes" => {
            let m = v
                .parse::<u32>()
                .ok()
                .filter(|m| (1..=MAX_AUTO_LOCK_MINUTES).contains(m))
                .ok_or_else(bad)?;
            store.set_setting(SETTING_AUTO_LOCK, &m.to_string())?;
        }
        _ => return Err(bad()),
    }
    get_settings(store)
}

/// The language the settings choose.
pub fn lang(store: &Store) -> Result<Lang> {
    Ok(match store.setting(SETTING_LANGUAGE)?.as_deref() {
        Some("en") => Lang::En,
        _ => Lang::ZhCn,
    })
}

/// A school for pick lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchoolItem {
    pub id: Uuid,
    pub name: String,
    pub township: String,
}

pub fn list_schools(store: &Store) -> Result<Vec<SchoolItem>> {
    let mut out: Vec<SchoolItem> = store
        .list_all::<shouhu_core::School>()?
        .into_iter()
        .map(|s| SchoolItem {
            id: s.meta.id,
            name: s.body.name,
            township: s.body.township,
        })
        .collect();
    out.sort_by(|a, b| (&a.township, &a.name).cmp(&(&b.township, &b.name)));
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testutil;

    fn change(key: &str, value: &str) -> SettingChange {
        SettingChange {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn defaults_then_persisted_changes() {
        let mut s = testutil::store();
        let d = get_settings(&s).unwrap();
        assert_eq!(d.language, "zh-CN");
        assert_eq!(d.text_size, "normal");
        assert_eq!(d.auto_lock_minutes, 10);
        assert!(!d.demo);
        set_setting(&mut s, &change("language", "en")).unwrap();
        set_setting(&mut s, &change("text_size", "large")).unwrap();
        set_setting(&mut s, &change("auto_lock_minutes", "30")).unwrap();
        let school = testutil::school(&mut s);
        set_setting(&mut s, &change("school_id", &school.to_string())).unwrap();
        let g = get_settings(&s).unwrap();
        assert_eq!(
            (g.language.as_str(), g.text_size.as_str(), g.school_id),
            ("en", "large", Some(school))
        );
        assert_eq!(g.auto_lock_minutes, 30);
        assert_eq!(lang(&s).unwrap(), Lang::En);
    }

    #[test]
    fn unknown_values_are_refused() {
        let mut s = testutil::store();
        for (k, v) in [
            ("language", "fr"),
            ("text_size", "huge"),
            ("role", "counselor"),
            ("auto_lock_minutes", "0"),
            ("auto_lock_minutes", "241"),
            ("auto_lock_minutes", "ten"),
            ("colour", "red"),
            ("school_id", "nope"),
        ] {
            let e = set_setting(&mut s, &change(k, v)).unwrap_err();
            assert_eq!(e.code(), "input.invalid", "{k}={v}");
        }
        let e = set_setting(
            &mut s,
            &change("school_id", &uuid::Uuid::now_v7().to_string()),
        )
        .unwrap_err();
        assert_eq!(e.code(), "record.not_found");
    }
}
