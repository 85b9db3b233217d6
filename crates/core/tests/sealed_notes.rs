//! A psychological note is stored sealed; the child card carries the only
//! thing teachers see of counseling (the flag and the counselor's alert).

use chrono::NaiveDate;
use serde_json::json;
use shouhu_core::{
    ChildCard, CounselingFlag, Entity, Gender, PsychNote, PsychNoteContent, RiskLevel, SafetyAlert,
};
use uuid::Uuid;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn today() -> NaiveDate {
    day(2026, 11, 28)
}

fn plain_note() -> PsychNote {
    PsychNote {
        child_id: Uuid::now_v7(),
        session_date: Some(day(2026, 11, 20)),
        presenting_issue: "想念外出打工的妈妈，夜里睡不着".into(),
        risk_level: RiskLevel::High,
        intervention: "倾听，约定下周再谈".into(),
        ..Default::default()
    }
}

fn sealed_json() -> serde_json::Value {
    json!({"version": 1, "note_id": Uuid::now_v7(), "nonce": "AAAA", "ciphertext": "QUJD", "readers": []})
}

fn codes(r: Result<(), shouhu_core::ValidationErrors>) -> Vec<(String, String)> {
    match r {
        Ok(()) => vec![],
        Err(e) => e
            .errors
            .iter()
            .map(|e| (e.field.clone(), e.code().to_string()))
            .collect(),
    }
}

#[test]
fn sealing_empties_the_confidential_fields_and_keeps_the_plain_ones() {
    let note = plain_note();
    let content = note.content();
    let sealed = note.clone().into_sealed(sealed_json());
    assert!(sealed.is_sealed());
    assert_eq!(sealed.content(), PsychNoteContent::default());
    assert_eq!(sealed.child_id, note.child_id);
    assert_eq!(sealed.session_date, note.session_date);
    let text = serde_json::to_string(&sealed).unwrap_or_default();
    assert!(!text.contains("妈妈"), "{text}");
    assert!(!text.contains("倾听"), "{text}");
    assert!(!text.contains("high"), "risk level leaked: {text}");
    assert_eq!(codes(sealed.validate(today())), vec![]);
    // Opened by its reader, the note is whole again.
    let mut opened = sealed;
    opened.set_content(content);
    opened.sealed = None;
    assert_eq!(opened, note);
}

#[test]
fn a_sealed_note_with_plain_text_beside_it_is_refused() {
    let mut n = plain_note().into_sealed(sealed_json());
    n.presenting_issue = "漏出的明文".into();
    assert_eq!(
        codes(n.validate(today())),
        vec![(
            "sealed".to_string(),
            "psych_note.plaintext_beside_sealed".to_string()
        )]
    );
    let mut n = plain_note().into_sealed(sealed_json());
    n.risk_level = RiskLevel::Crisis;
    assert!(!codes(n.validate(today())).is_empty());
}

#[test]
fn a_sealed_field_that_is_not_an_encrypted_note_is_refused() {
    for bad in [
        json!("secret"),
        json!({"readers": []}),
        json!({"ciphertext": 5, "readers": []}),
    ] {
        let n = plain_note().into_sealed(bad.clone());
        assert_eq!(
            codes(n.validate(today())),
            vec![(
                "sealed".to_string(),
                "psych_note.sealed_malformed".to_string()
            )],
            "{bad}"
        );
    }
}

#[test]
fn a_sealed_note_still_needs_its_child_and_date() {
    let mut n = plain_note().into_sealed(sealed_json());
    n.child_id = Uuid::nil();
    n.session_date = None;
    let c = codes(n.validate(today()));
    assert!(c.iter().any(|(f, _)| f == "child_id"), "{c:?}");
    assert!(c.iter().any(|(f, _)| f == "session_date"), "{c:?}");
}

#[test]
fn a_plain_legacy_note_is_checked_as_before() {
    assert_eq!(codes(plain_note().validate(today())), vec![]);
    let mut n = plain_note();
    n.presenting_issue.clear();
    assert_eq!(
        codes(n.validate(today())),
        vec![("presenting_issue".to_string(), "field.required".to_string())]
    );
}

#[test]
fn a_note_from_before_sealing_reads_back_unchanged() {
    let old = json!({"child_id": Uuid::now_v7(), "session_date": "2026-11-20", "kind": "individual",
        "presenting_issue": "x", "risk_level": "low", "intervention": ""});
    let n: PsychNote = serde_json::from_value(old).unwrap_or_default();
    assert!(!n.is_sealed());
    assert_eq!(n.presenting_issue, "x");
    // And an unsealed note serialises without a `sealed` key (its old form).
    let v = serde_json::to_value(&n).unwrap_or_default();
    assert!(v.get("sealed").is_none());
}

fn card() -> ChildCard {
    ChildCard {
        name: "张三".into(),
        gender: Some(Gender::Male),
        birth_date: Some(day(2015, 3, 7)),
        ..Default::default()
    }
}

#[test]
fn the_counseling_flag_travels_on_the_card_and_an_alert_needs_its_text() {
    let old = serde_json::to_value(card()).unwrap_or_default();
    assert_eq!(old["counseling"]["active"], json!(false));
    let mut c = card();
    c.counseling = CounselingFlag {
        active: true,
        since: Some(day(2026, 11, 1)),
        alert: SafetyAlert::Urgent,
        alert_text: "  ".into(),
    };
    c.normalize();
    assert_eq!(
        codes(c.validate(today())),
        vec![(
            "counseling.alert_text".to_string(),
            "field.required".to_string()
        )]
    );
    c.counseling.alert_text = "放学后请勿让孩子独自回家，有异常请马上告诉心理老师".into();
    assert_eq!(codes(c.validate(today())), vec![]);
    c.counseling.since = Some(day(2027, 1, 1));
    assert_eq!(
        codes(c.validate(today())),
        vec![("counseling.since".to_string(), "date.in_future".to_string())]
    );
    // A card written before the flag existed reads as "not under counseling".
    let mut before = serde_json::to_value(card()).unwrap_or_default();
    if let Some(m) = before.as_object_mut() {
        m.remove("counseling");
    }
    let back: ChildCard = serde_json::from_value(before).unwrap_or_default();
    assert_eq!(back.counseling, CounselingFlag::default());
}

#[test]
fn a_change_that_would_put_note_text_in_plain_is_named() {
    use shouhu_core::Op;
    let sealed = plain_note().into_sealed(sealed_json());
    let body = serde_json::to_value(&sealed).unwrap_or_default();
    assert!(PsychNote::plaintext_in_change(Op::Create, &body).is_empty());
    let plain = serde_json::to_value(plain_note()).unwrap_or_default();
    assert_eq!(
        PsychNote::plaintext_in_change(Op::Create, &plain),
        ["intervention", "presenting_issue", "risk_level", "sealed"]
    );
    // Updates: re-sealing (sealed's leaves change) is fine, so is clearing a
    // field; text in a confidential field or removing the seal is not.
    let ok = json!({"sealed.ciphertext": "QUJD", "sealed.nonce": "AAAA", "presenting_issue": ""});
    assert!(PsychNote::plaintext_in_change(Op::Update, &ok).is_empty());
    let leak = json!({"presenting_issue": "明文", "session_date": "2026-11-21"});
    assert_eq!(
        PsychNote::plaintext_in_change(Op::Update, &leak),
        ["presenting_issue"]
    );
    let unseal = json!({"sealed": null});
    assert_eq!(
        PsychNote::plaintext_in_change(Op::Update, &unseal),
        ["sealed"]
    );
    assert!(PsychNote::plaintext_in_change(Op::Delete, &json!({"reason": "x"})).is_empty());
}
