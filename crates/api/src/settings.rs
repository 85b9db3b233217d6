//! The app's settings, kept in the store's settings table so a restarted app
//! keeps them: language, text size, "my school" and the placeholder role.

use serde::{Deserialize, Serialize};
use shouhu_core::Lang;
use uuid::Uuid;

use crate::{Error, Result, Role, Session, Store};

pub const SETTING_LANGUAGE: &str = "ui.language";
pub const SETTING_TEXT_SIZE: &str = "ui.text_size";
pub const SETTING_SCHOOL: &str = "ui.school_id";
pub const SETTING_ROLE: &str = "user.role";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// `zh-CN` (default) or `en`.
    pub language: String,
    /// `normal` (default) or `large`.
    pub text_size: String,
    /// The school this laptop works for; `None` shows every school.
    pub school_id: Option<Uuid>,
    pub role: Role,
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
    let role = store
        .setting(SETTING_ROLE)?
        .and_then(|s| Role::parse(&s))
        .unwrap_or_default();
    Ok(Settings {
        language: language.into(),
        text_size: text_size.into(),
        school_id,
        role,
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
        "role" => {
            let role = Role::parse(v).ok_or_else(bad)?;
            store.set_setting(SETTING_ROLE, role.name())?;
        }
        _ => return Err(bad()),
    }
    get_settings(store)
}

/// The session the settings describe.
pub fn session(store: &Store) -> Result<Session> {
    let s = get_settings(store)?;
    Ok(Session {
        lang: if s.language == "en" {
            Lang::En
        } else {
            Lang::ZhCn
        },
        role: s.role,
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
        assert_eq!(d.role, Role::Teacher);
        set_setting(&mut s, &change("language", "en")).unwrap();
        set_setting(&mut s, &change("text_size", "large")).unwrap();
        let school = testutil::school(&mut s);
        set_setting(&mut s, &change("school_id", &school.to_string())).unwrap();
        let g = get_settings(&s).unwrap();
        assert_eq!(
            (g.language.as_str(), g.text_size.as_str(), g.school_id),
            ("en", "large", Some(school))
        );
        assert_eq!(session(&s).unwrap().lang, Lang::En);
    }

    #[test]
    fn unknown_values_are_refused() {
        let mut s = testutil::store();
        for (k, v) in [
            ("language", "fr"),
            ("text_size", "huge"),
            ("role", "root"),
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
