//! Psychological notes sealed end to end: what the app writes is encrypted
//! for the note's readers before it reaches the store, and opened for the
//! logged-in reader when it is shown.
//!
//! A note's readers are the counselors of its school and the county's
//! psychology supervisors: every user of this laptop's keyring with a reader
//! key ([`NoteKeys::readers`], from the vault at log-in) and the readers the
//! county server published ([`SETTING_SERVER_READERS`], written after each
//! sync). Sealing needs only their public keys, so a legacy plain note (demo
//! data, an import) is sealed from any session ([`seal_plain_notes`]) before
//! it can be pushed; opening needs the reader's own secret, which only a
//! reader's log-in opens.
//!
//! **A new counselor** sees earlier notes once an existing reader, logged in
//! on a laptop that knows the newcomer's public key, runs [`grant_reader`]:
//! every note that reader can open gets the note key wrapped for the
//! newcomer too, and the change syncs like any edit.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use shouhu_auth::note::{open_value, parse_sealed, seal_value};
use shouhu_auth::{AuthError, ReaderKeyPair, ReaderPublicKey};
use shouhu_core::{Entity, PsychNote, PsychNoteContent, Stored};
use uuid::Uuid;

use crate::{Error, Result, Session, Store};

/// Store setting: the readers the county server published, as JSON
/// `[{"user_id": …, "public": …}]`.
pub const SETTING_SERVER_READERS: &str = "notes.server_readers";

/// What sealing and opening notes needs from the logged-in user.
#[derive(Debug, Default)]
pub struct NoteKeys {
    pub user_id: Uuid,
    /// The user's own reader keys (readers only).
    pub keys: Option<Arc<ReaderKeyPair>>,
    /// The readers known on this laptop (its keyring).
    pub readers: Vec<(Uuid, ReaderPublicKey)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedReader {
    pub user_id: Uuid,
    pub public: ReaderPublicKey,
}

/// Everyone a note is sealed for: the laptop's readers and the server's,
/// each key once (a reader with two laptops has two keys, each gets the note
/// key).
pub fn all_readers(store: &Store, session: &Session) -> Result<Vec<(Uuid, ReaderPublicKey)>> {
    let mut all: Vec<(Uuid, ReaderPublicKey)> = session
        .notes
        .as_ref()
        .map(|n| n.readers.clone())
        .unwrap_or_default();
    if let Some(text) = store.setting(SETTING_SERVER_READERS)? {
        let published: Vec<PublishedReader> =
            serde_json::from_str(&text).map_err(shouhu_store::StoreError::from)?;
        all.extend(published.into_iter().map(|p| (p.user_id, p.public)));
    }
    all.sort_by_key(|(id, k)| (*id, k.0));
    all.dedup();
    Ok(all)
}

/// Remembers the readers the server published (after a sync).
pub fn set_server_readers(store: &mut Store, readers: &[PublishedReader]) -> Result<()> {
    let text = serde_json::to_string(readers).map_err(shouhu_store::StoreError::from)?;
    store.set_setting(SETTING_SERVER_READERS, &text)?;
    Ok(())
}

/// The logged-in reader: their user id and reader keys (none for roles
/// that do not read notes).
fn logged_in_reader(session: &Session) -> Option<(Uuid, Arc<ReaderKeyPair>)> {
    let me = session.notes.as_ref()?;
    Some((me.user_id, me.keys.clone()?))
}

/// A note as its reader sees it: the plain form (opened), and whether it
/// could be opened at all.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenedNote {
    pub note: PsychNote,
    /// `false`: sealed, but not for this reader (only the plain fields show).
    pub readable: bool,
}

/// Validates `note` as typed, then seals its confidential part for every
/// reader (the writer included) under the record id `id`.
pub fn seal_note(
    store: &Store,
    session: &Session,
    id: Uuid,
    mut note: PsychNote,
) -> Result<PsychNote> {
    note.sealed = None;
    note.normalize();
    note.validate(store.today())?;
    let readers = all_readers(store, session)?;
    let sealed = seal_value(id, &note.content(), &readers).map_err(|e| match e {
        AuthError::NotAReader => Error::NoNoteReaders,
        other => other.into(),
    })?;
    Ok(note.into_sealed(sealed))
}

/// Opens a stored note for the session's reader. A legacy plain note shows
/// as it is.
pub fn open_note(session: &Session, id: Uuid, note: PsychNote) -> Result<OpenedNote> {
    let Some(sealed) = note.sealed.clone() else {
        return Ok(OpenedNote {
            note,
            readable: true,
        });
    };
    let Some((user_id, keys)) = logged_in_reader(session) else {
        return Ok(OpenedNote {
            note,
            readable: false,
        });
    };
    match open_value::<PsychNoteContent>(id, &sealed, user_id, &keys) {
        Ok(content) => {
            let mut plain = note;
            plain.set_content(content);
            plain.sealed = None;
            Ok(OpenedNote {
                note: plain,
                readable: true,
            })
        }
        Err(AuthError::NotAReader) => Ok(OpenedNote {
            note,
            readable: false,
        }),
        Err(e) => Err(e.into()),
    }
}

/// Seals every plain note in the store for the known readers (demo data,
/// imports, notes from before sealing): none may reach the server in plain.
/// Returns how many were sealed. Needs no reader's secret.
pub fn seal_plain_notes(store: &mut Store, session: &Session) -> Result<usize> {
    let plain: Vec<Stored<PsychNote>> = store
        .list_all::<PsychNote>()?
        .into_iter()
        .filter(|n| !n.body.is_sealed())
        .collect();
    if plain.is_empty() {
        return Ok(0);
    }
    let readers = all_readers(store, session)?;
    if readers.is_empty() {
        return Err(Error::NoNoteReaders);
    }
    let mut sealed = Vec::with_capacity(plain.len());
    for n in plain {
        let content = n.body.content();
        let v = seal_value(n.meta.id, &content, &readers)?;
        sealed.push((n.meta.id, n.body.into_sealed(v)));
    }
    let count = sealed.len();
    let mut blobs = Vec::with_capacity(count);
    store.write(|w| {
        for (id, body) in sealed {
            blobs.push((id, body.sealed.clone()));
            w.update(id, body)?;
        }
        Ok(())
    })?;
    // The note's earlier entries still to be pushed carry its text: they go
    // to the server without it (the create with the sealed blob).
    let empty = serde_json::to_value(PsychNoteContent::default())
        .map_err(shouhu_store::StoreError::from)?;
    for (id, blob) in blobs {
        store.rewrite_unsent_fields(id, |op, fields| {
            scrub_note_change(op, fields, &empty, blob.as_ref())
        })?;
    }
    Ok(count)
}

/// A note's change-log fields without its confidential part: each content
/// field back to its empty value, and a create given the sealed blob.
fn scrub_note_change(
    op: shouhu_core::Op,
    fields: &mut serde_json::Value,
    empty: &serde_json::Value,
    sealed: Option<&serde_json::Value>,
) {
    let Some(map) = fields.as_object_mut() else {
        return;
    };
    let keys: Vec<String> = map.keys().cloned().collect();
    for k in keys {
        let top = k.split('.').next().unwrap_or(&k).to_string();
        let Some(blank) = empty.get(&top) else {
            continue;
        };
        if k == top {
            map.insert(k, blank.clone());
        } else {
            map.remove(&k);
        }
    }
    if op == shouhu_core::Op::Create {
        if let Some(sealed) = sealed {
            map.insert("sealed".into(), sealed.clone());
        }
    }
}

/// The logged-in reader gives `reader` (a new counselor, a supervisor, or
/// their own key on another laptop) access with the key `public` to every
/// note they can open themselves. Returns how many notes changed; notes
/// already wrapped for that key are left alone.
pub fn grant_reader(
    store: &mut Store,
    session: &Session,
    reader: Uuid,
    public: ReaderPublicKey,
) -> Result<usize> {
    let Some((my_id, keys)) = logged_in_reader(session) else {
        return Err(Error::Forbidden {
            role: session.role.as_str(),
            action: "share psychological notes",
        });
    };
    let mut changed = Vec::new();
    for n in store.list_all::<PsychNote>()? {
        let Some(sealed) = &n.body.sealed else {
            continue;
        };
        let mut enc = parse_sealed(n.meta.id, sealed)?;
        if enc.has_reader_key(reader, public) {
            continue;
        }
        match enc.add_reader(my_id, &keys, reader, public) {
            Ok(()) => {}
            // Notes sealed before this reader joined stay as they are.
            Err(AuthError::NotAReader) => continue,
            Err(e) => return Err(e.into()),
        }
        let v = serde_json::to_value(&enc).map_err(shouhu_store::StoreError::from)?;
        let mut body = n.body.clone();
        body.sealed = Some(v);
        changed.push((n.meta.id, body));
    }
    let count = changed.len();
    store.write(|w| {
        for (id, body) in changed {
            w.update(id, body)?;
        }
        Ok(())
    })?;
    Ok(count)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::{testutil, Role};
    use shouhu_core::RiskLevel;

    pub(crate) fn reader_session(
        role: Role,
        keys: &Arc<ReaderKeyPair>,
        id: Uuid,
        readers: &[(Uuid, ReaderPublicKey)],
    ) -> Session {
        Session {
            role,
            notes: Some(Arc::new(NoteKeys {
                user_id: id,
                keys: Some(keys.clone()),
                readers: readers.to_vec(),
            })),
            ..Session::default()
        }
    }

    fn note(child: Uuid) -> PsychNote {
        PsychNote {
            child_id: child,
            session_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 20),
            presenting_issue: "想念外出打工的妈妈".into(),
            risk_level: RiskLevel::High,
            ..Default::default()
        }
    }

    #[test]
    fn a_note_is_sealed_for_every_reader_and_opens_only_for_them() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let c = testutil::child(&mut s, school);
        let (a, b, outsider) = (
            Arc::new(ReaderKeyPair::generate().unwrap()),
            Arc::new(ReaderKeyPair::generate().unwrap()),
            Arc::new(ReaderKeyPair::generate().unwrap()),
        );
        let (ida, idb, ido) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let counselor = reader_session(Role::Counselor, &a, ida, &[(ida, a.public())]);
        // The supervisor is known from the server.
        set_server_readers(
            &mut s,
            &[PublishedReader {
                user_id: idb,
                public: b.public(),
            }],
        )
        .unwrap();
        let id = Uuid::now_v7();
        let sealed = seal_note(&s, &counselor, id, note(c)).unwrap();
        assert!(sealed.is_sealed());
        assert!(sealed.presenting_issue.is_empty());
        s.write(|w| w.create_with_id(id, sealed.clone())).unwrap();
        let text = serde_json::to_string(&s.fetch::<PsychNote>(id).unwrap().body).unwrap();
        assert!(!text.contains("妈妈"), "{text}");

        let opened = open_note(&counselor, id, sealed.clone()).unwrap();
        assert!(opened.readable);
        assert_eq!(opened.note.presenting_issue, "想念外出打工的妈妈");
        assert_eq!(opened.note.risk_level, RiskLevel::High);
        let supervisor = reader_session(Role::PsychSupervisor, &b, idb, &[]);
        assert!(open_note(&supervisor, id, sealed.clone()).unwrap().readable);
        let other = reader_session(Role::Counselor, &outsider, ido, &[]);
        let locked = open_note(&other, id, sealed.clone()).unwrap();
        assert!(!locked.readable);
        assert!(locked.note.presenting_issue.is_empty());

        // The newcomer is granted access by a reader; then it opens.
        assert_eq!(
            grant_reader(&mut s, &counselor, ido, outsider.public()).unwrap(),
            1
        );
        assert_eq!(
            grant_reader(&mut s, &counselor, ido, outsider.public()).unwrap(),
            0
        );
        let now = s.fetch::<PsychNote>(id).unwrap().body;
        assert!(open_note(&other, id, now).unwrap().readable);
        // A teacher cannot grant anything.
        assert_eq!(
            grant_reader(&mut s, &Session::default(), ido, outsider.public())
                .unwrap_err()
                .code(),
            "auth.forbidden"
        );
    }

    #[test]
    fn a_bad_note_is_refused_before_sealing_and_no_readers_means_no_note() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let c = testutil::child(&mut s, school);
        let a = Arc::new(ReaderKeyPair::generate().unwrap());
        let ida = Uuid::now_v7();
        let counselor = reader_session(Role::Counselor, &a, ida, &[(ida, a.public())]);
        let mut bad = note(c);
        bad.presenting_issue.clear();
        let e = seal_note(&s, &counselor, Uuid::now_v7(), bad).unwrap_err();
        let fields: Vec<String> = e
            .field_errors(crate::Lang::ZhCn)
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(fields, ["presenting_issue"]);
        let nobody = reader_session(Role::Counselor, &a, ida, &[]);
        let e = seal_note(&s, &nobody, Uuid::now_v7(), note(c)).unwrap_err();
        assert_eq!(e.code(), "notes.no_readers");
    }

    #[test]
    fn plain_notes_are_sealed_before_they_can_leave() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let c = testutil::child(&mut s, school);
        let id = s.write(|w| w.create(note(c))).unwrap().meta.id;
        // A teacher's session seals them too: only public keys are needed.
        let a = Arc::new(ReaderKeyPair::generate().unwrap());
        let ida = Uuid::now_v7();
        let teacher = Session {
            notes: Some(Arc::new(NoteKeys {
                user_id: Uuid::now_v7(),
                keys: None,
                readers: vec![(ida, a.public())],
            })),
            ..Session::default()
        };
        assert_eq!(seal_plain_notes(&mut s, &teacher).unwrap(), 1);
        assert_eq!(seal_plain_notes(&mut s, &teacher).unwrap(), 0);
        // Nothing still to be pushed carries the text: the create goes out
        // with the sealed blob.
        let outbox: Vec<_> = s
            .outbox(100)
            .unwrap()
            .into_iter()
            .filter(|c| c.record_id == id)
            .collect();
        assert_eq!(outbox.len(), 2);
        for c in &outbox {
            assert!(!c.fields.to_string().contains("妈妈"), "{:?}", c.fields);
            assert!(PsychNote::plaintext_in_change(c.op, &c.fields).is_empty());
        }
        let stored = s.fetch::<PsychNote>(id).unwrap().body;
        assert!(stored.is_sealed());
        let counselor = reader_session(Role::Counselor, &a, ida, &[]);
        let opened = open_note(&counselor, id, stored).unwrap();
        assert_eq!(opened.note.presenting_issue, "想念外出打工的妈妈");
        // With no reader known at all, plain notes are not sealed for nobody.
        let id2 = s.write(|w| w.create(note(c))).unwrap().meta.id;
        assert_eq!(
            seal_plain_notes(&mut s, &Session::default())
                .unwrap_err()
                .code(),
            "notes.no_readers"
        );
        assert!(!s.fetch::<PsychNote>(id2).unwrap().body.is_sealed());
    }
}
