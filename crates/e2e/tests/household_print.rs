//! The printable child card (一人一卡) and a household edited after its
//! creation, through the real app: 打印 asks, is audited and opens the GTK
//! print dialog (seen as an X window: WebDriver cannot see it) with the A4
//! print view on the page, shown on screen through `html[data-print]` (the
//! same rules as `@media print`) for the screenshot; then the household's
//! address and phone are changed and a sibling is added by pinyin initials,
//! and the store holds all of it.

use chrono::NaiveDate;
use shouhu_core::{
    ChildCard, CounselingFlag, Gender, Guardian, GuardianRelation, HelpPlan, Household, Measure,
    MeasureKind, SafetyAlert,
};
use shouhu_e2e::flows::{open_child, open_children, quit};
use shouhu_e2e::{fixtures, testid, E2eError, Harness};
use uuid::Uuid;

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

struct Seeded {
    household: Uuid,
    child: Uuid,
    sibling: Uuid,
}

fn seed(h: &Harness) -> Result<Seeded, E2eError> {
    fixtures::with_store(&h.db, &h.identity_dir, |s| {
        s.write(|w| {
            let household = w
                .create(Household {
                    label: "王家".into(),
                    head_name: "王建国".into(),
                    phone: Some("13800001111".into()),
                    ..Default::default()
                })?
                .id();
            w.create(HelpPlan {
                household_id: household,
                needs: vec!["学业辅导".into(), "亲情陪伴".into()],
                measures: vec![Measure {
                    kind: MeasureKind::Tutoring,
                    description: "每周二、四放学后辅导数学".into(),
                    responsible: "李老师".into(),
                    due_date: date(2027, 1, 15),
                }],
                responsible_people: vec!["李老师".into(), "村妇联主任".into()],
                review_date: date(2027, 3, 1),
                ..Default::default()
            })?;
            let child = w
                .create(ChildCard {
                    name: "王小红".into(),
                    gender: Some(Gender::Female),
                    birth_date: date(2015, 6, 1),
                    id_number: Some(fixtures::id_number(
                        "520522",
                        NaiveDate::from_ymd_opt(2015, 6, 1).unwrap_or_default(),
                        22,
                    )),
                    grade: "四年级".into(),
                    class_name: "2班".into(),
                    household_id: Some(household),
                    guardian: Guardian {
                        name: "王奶奶".into(),
                        relation: GuardianRelation::Grandparent,
                        phone: Some("13800001111".into()),
                        ..Default::default()
                    },
                    counseling: CounselingFlag {
                        active: true,
                        since: date(2026, 9, 1),
                        alert: SafetyAlert::Watch,
                        alert_text: "最近情绪低落，请多关心".into(),
                    },
                    ..Default::default()
                })?
                .id();
            let sibling = w
                .create(ChildCard {
                    name: "王小明".into(),
                    gender: Some(Gender::Male),
                    birth_date: date(2019, 2, 3),
                    grade: "一年级".into(),
                    ..Default::default()
                })?
                .id();
            Ok(Seeded {
                household,
                child,
                sibling,
            })
        })
        .map_err(|e| E2eError::Process(format!("seeding: {e}")))
    })?
}

#[test]
fn the_card_prints_on_a4_and_the_household_is_edited_with_a_sibling_added() -> Result<(), E2eError>
{
    let h = Harness::start()?;
    let seeded = seed(&h)?;
    let app = h.launch()?;
    open_children(&app)?;
    open_child(&app, seeded.child)?;

    let before = h.x_windows()?;
    assert!(
        !before.iter().any(|w| w == "Print" || w == "打印"),
        "{before:?}"
    );
    app.click("child-print")?;
    let dialog = app.text("confirm-dialog")?;
    assert!(dialog.contains("审计"), "{dialog:?}");
    app.click("confirm-ok")?;
    let card = app.wait("print-card")?;
    let windows = app.wait_for("the GTK print dialog", || {
        let w = h.x_windows()?;
        Ok(w.iter().any(|w| w == "Print" || w == "打印").then_some(w))
    })?;
    eprintln!("e2e: X windows with the print dialog open: {windows:?}");
    assert!(
        !app.session.is_displayed(&card)?,
        "the print view is hidden on screen"
    );
    app.session.execute(
        "document.documentElement.dataset.print = '1'; window.scrollTo(0, 0);",
        vec![],
    )?;
    let text = app.session.inner_text(&card)?;
    for expected in [
        "农村留守儿童信息卡",
        "儿童基本情况",
        "就学情况",
        "家庭情况",
        "监护情况",
        "帮扶情况",
        "王小红",
        "2015年6月1日",
        "王奶奶",
        "每周二、四放学后辅导数学",
        "2027年3月1日",
        "正在接受心理辅导",
        "需关注",
        fixtures::E2E_NAME,
    ] {
        assert!(
            text.contains(expected),
            "the print view shows {expected:?}: {text}"
        );
    }
    assert!(
        !text.contains("最近情绪低落"),
        "no counseling text on paper: {text}"
    );
    // Nothing of the app (navigation, buttons) is shown beside it.
    assert!(!app.is_shown("nav-home")?, "the navigation is hidden");
    assert!(!app.is_shown("child-save")?, "the buttons are hidden");
    app.screenshot("19-print-card")?;
    app.session.execute(
        "document.querySelector('[data-testid=print-counseling]').scrollIntoView({block: 'end'});",
        vec![],
    )?;
    app.screenshot("19b-print-card-plan")?;
    app.session
        .execute("delete document.documentElement.dataset.print;", vec![])?;
    app.wait("nav-home")?;

    // The household: edit its address and phone, add the sibling.
    app.click("nav-households")?;
    let row = format!(
        "{}[data-id=\"{}\"]",
        testid("households-row"),
        seeded.household
    );
    let row = app.wait_for("the household's row", || {
        Ok(app.session.find_all(&row)?.into_iter().next())
    })?;
    app.session.click(&row)?;
    app.wait("screen-household")?;
    app.click("household-edit")?;
    app.fill("household-field-address.township", "青山镇")?;
    app.fill("household-field-address.village", "石桥村")?;
    app.fill("household-field-address.group", "三组")?;
    app.fill("household-field-phone", "1390000")?;
    shouhu_e2e::flows::blur(&app, "household-field-phone")?;
    let error = app.wait_text("household-error-phone", "a Chinese phone error", |t| {
        t.contains("电话")
    })?;
    assert_eq!(app.value("household-field-phone")?, "1390000", "{error:?}");
    app.screenshot("20-household-edit")?;
    app.fill("household-field-phone", "13900002222")?;
    shouhu_e2e::flows::blur(&app, "household-field-phone")?;
    app.wait_gone("household-error-phone")?;
    app.click("household-save")?;
    app.wait_gone("household-form")?;
    let info = app.wait_text("household-info", "the new address", |t| {
        t.contains("石桥村")
    })?;
    assert!(info.contains("青山镇 石桥村 三组"), "{info:?}");
    assert!(info.contains("13900002222"), "{info:?}");
    app.fill("household-member-search", "wxm")?;
    let add = format!(
        "{}[data-id=\"{}\"]",
        testid("household-member-add"),
        seeded.sibling
    );
    let add = app.wait_for("the sibling found by initials", || {
        Ok(app.session.find_all(&add)?.into_iter().next())
    })?;
    app.session.click(&add)?;
    app.wait_for("two members", || {
        Ok((app.all("household-member")?.len() == 2).then_some(()))
    })?;
    quit(&h, app)?;

    let (household, sibling, printed) = fixtures::with_store(&h.db, &h.identity_dir, |s| {
        (
            s.fetch::<Household>(seeded.household),
            s.fetch::<ChildCard>(seeded.sibling),
            s.audit_entries(&shouhu_store::AuditFilter {
                action: Some(shouhu_store::AuditAction::Print),
                ..Default::default()
            }),
        )
    })?;
    let household = household.map_err(|e| E2eError::Process(e.to_string()))?;
    assert_eq!(household.body.address.village, "石桥村");
    assert_eq!(household.body.address.group, "三组");
    assert_eq!(household.body.phone.as_deref(), Some("13900002222"));
    assert_eq!(household.body.head_name, "王建国");
    let sibling = sibling.map_err(|e| E2eError::Process(e.to_string()))?;
    assert_eq!(sibling.body.household_id, Some(seeded.household));
    let printed = printed.map_err(|e| E2eError::Process(e.to_string()))?;
    assert_eq!(printed.len(), 1, "{printed:?}");
    assert_eq!(printed[0].record_id, Some(seeded.child));
    Ok(())
}
