//! The children register as .xlsx: round trip, a hand-made register with
//! mistakes, re-import, ID numbers as text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use calamine::{Data, Reader};
use chrono::NaiveDate;
use rust_xlsxwriter::Workbook;
use shouhu_core::validate::id_check_char;
use shouhu_core::*;
use shouhu_exchange::xlsx::register_headers;
use shouhu_exchange::*;
use shouhu_store::Store;
use uuid::Uuid;

fn store() -> Store {
    let mut s = Store::open_in_memory().unwrap();
    s.set_today(NaiveDate::from_ymd_opt(2026, 11, 28));
    s
}

fn school(s: &mut Store, name: &str) -> Uuid {
    s.write(|w| {
        w.create(School {
            name: name.into(),
            township: "青山镇".into(),
            ..Default::default()
        })
    })
    .unwrap()
    .id()
}

/// A valid ID number for a birth date; `seq` odd for a boy, even for a girl.
fn id_number(birth: &str, seq: u32) -> String {
    let first17 = format!("520102{birth}{seq:03}");
    let c = id_check_char(first17.as_bytes()).unwrap();
    format!("{first17}{c}")
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn full_card(school: Uuid) -> ChildCard {
    ChildCard {
        name: "张三".into(),
        gender: Some(Gender::Male),
        ethnicity: "苗族".into(),
        birth_date: Some(date(2015, 3, 7)),
        id_number: Some(id_number("20150307", 123)),
        registered_address: "贵州省贵阳市南明区青山镇".into(),
        current_address: Address {
            county: "南明区".into(),
            township: "青山镇".into(),
            village: "石头村".into(),
            group: "三组".into(),
            detail: "12号".into(),
        },
        boarding: true,
        schooling_stage: SchoolingStage::Primary,
        school_id: Some(school),
        grade: "四年级".into(),
        class_name: "2班".into(),
        student_number: "G520102201503071234".into(),
        father: Parent {
            name: "张大山".into(),
            phone: Some("13800138000".into()),
            work_province: "广东省".into(),
            work_city: "深圳市".into(),
            ..Default::default()
        },
        mother: Parent {
            name: "李花".into(),
            phone: Some("13900139000".into()),
            work_province: "浙江省".into(),
            work_city: "宁波市".into(),
            ..Default::default()
        },
        left_behind_type: LeftBehindType::BothAway,
        guardian: Guardian {
            name: "张爷爷".into(),
            relation: GuardianRelation::Grandparent,
            phone: Some("13700137000".into()),
            ..Default::default()
        },
        guardianship_type: GuardianshipType::GuardianInsufficient,
        poverty_registered: true,
        pairing_teacher: "王老师".into(),
        pairing_teacher_phone: Some("13600136000".into()),
        status: ChildStatus::Active,
        notes: "喜欢画画".into(),
        ..Default::default()
    }
}

fn seed(s: &mut Store, school: Uuid) -> Vec<Uuid> {
    let a = full_card(school);
    let b = ChildCard {
        name: "李四".into(),
        gender: Some(Gender::Female),
        birth_date: Some(date(2016, 9, 1)),
        school_id: Some(school),
        left_behind_type: LeftBehindType::MotherAway,
        status: ChildStatus::Transferred,
        status_date: Some(date(2026, 9, 1)),
        status_reason: Some("随父母转学".into()),
        ..Default::default()
    };
    let c = ChildCard {
        name: "王小五".into(),
        gender: Some(Gender::Female),
        birth_date: Some(date(2014, 1, 20)),
        id_number: Some(id_number("20140120", 124)),
        school_id: Some(school),
        guardianship_type: GuardianshipType::Unattended,
        guardian: Guardian {
            relation: GuardianRelation::None,
            ..Default::default()
        },
        ..Default::default()
    };
    s.write(|w| {
        Ok(vec![
            w.create(a)?.id(),
            w.create(b)?.id(),
            w.create(c)?.id(),
        ])
    })
    .unwrap()
}

fn export_all(s: &Store, lang: Lang) -> Vec<u8> {
    let children = s.list_all::<ChildCard>().unwrap();
    let mut ticks = Vec::new();
    let (bytes, report) = export_children_xlsx(s, &children, lang, &mut |p| ticks.push(p)).unwrap();
    assert_eq!(report.children, children.len());
    let last = ticks.last().copied().unwrap();
    assert_eq!(
        (last.phase, last.done, last.total),
        ("write", children.len(), children.len())
    );
    bytes
}

fn first_sheet(bytes: &[u8]) -> calamine::Range<Data> {
    let mut wb = calamine::Xlsx::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
    wb.worksheet_range_at(0).unwrap().unwrap()
}

fn import(s: &mut Store, bytes: &[u8]) -> Result<XlsxImportReport, XlsxError> {
    import_children_xlsx(s, bytes, &XlsxImportOptions::default(), &mut |_| {})
}

#[test]
fn export_then_import_into_a_fresh_store_gives_the_same_cards() {
    let mut a = store();
    let sa = school(&mut a, "青山小学");
    seed(&mut a, sa);
    let bytes = export_all(&a, Lang::ZhCn);

    let mut b = store();
    let sb = school(&mut b, "青山小学");
    let pending_before = b.pending_count().unwrap();
    let mut ticks = Vec::new();
    let report = import_children_xlsx(&mut b, &bytes, &XlsxImportOptions::default(), &mut |p| {
        ticks.push(p)
    })
    .unwrap();
    assert_eq!((report.rows, report.created, report.updated), (3, 3, 0));
    assert_eq!(ticks.last().map(|p| (p.done, p.total)), Some((3, 3)));
    // Every row is checked before the first is written.
    let first_write = ticks.iter().position(|p| p.phase == "write").unwrap();
    assert!(ticks[..first_write].iter().all(|p| p.phase == "check"));
    assert!(first_write > 0);
    // One change-log entry per child, written with it.
    assert_eq!(b.pending_count().unwrap(), pending_before + 3);

    for orig in a.list_all::<ChildCard>().unwrap() {
        // The record id travels in the 系统编号 column.
        let got = b.fetch::<ChildCard>(orig.meta.id).unwrap();
        let mut want = orig.body.clone();
        want.school_id = Some(sb);
        assert_eq!(got.body, want, "{}", orig.body.name);
    }
}

#[test]
fn export_has_chinese_headers_labels_real_dates_and_text_id_numbers() {
    let mut s = store();
    let sc = school(&mut s, "青山小学");
    seed(&mut s, sc);
    let bytes = export_all(&s, Lang::ZhCn);
    let range = first_sheet(&bytes);
    let header: Vec<String> = range
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|d| d.to_string())
        .collect();
    for h in [
        "姓名",
        "性别",
        "身份证号",
        "出生日期",
        "学校",
        "留守类型",
        "监护类型",
        "监护人电话",
    ] {
        assert!(header.iter().any(|x| x == h), "{h} missing in {header:?}");
    }
    let col = |h: &str| header.iter().position(|x| x == h).unwrap();
    let zhang = range
        .rows()
        .find(|r| r[col("姓名")] == Data::String("张三".into()))
        .unwrap();
    // The ID number is a string cell, every digit kept.
    assert_eq!(
        zhang[col("身份证号")],
        Data::String(id_number("20150307", 123))
    );
    assert!(matches!(zhang[col("出生日期")], Data::DateTime(_)));
    use calamine::DataType;
    assert_eq!(zhang[col("出生日期")].as_date(), Some(date(2015, 3, 7)));
    assert_eq!(
        zhang[col("留守类型")],
        Data::String("父母均外出务工".into())
    );
    assert_eq!(
        zhang[col("监护类型")],
        Data::String("受委托监护人监护能力不足".into())
    );
    assert_eq!(zhang[col("学校")], Data::String("青山小学".into()));
    assert_eq!(zhang[col("是否住校")], Data::String("是".into()));
    assert_eq!(zhang[col("父亲电话")], Data::String("13800138000".into()));

    let en = first_sheet(&export_all(&s, Lang::En));
    let header: Vec<String> = en
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(header[0], "Name");
    assert!(header.iter().any(|h| h == "ID number"));
    // And the English file imports back (nothing changes).
    let en_bytes = export_all(&s, Lang::En);
    let r = import(&mut s, &en_bytes).unwrap();
    assert_eq!((r.created, r.updated, r.unchanged), (0, 0, 3));
}

/// A register as a township office sends it: a title row, headers in
/// another order with spaces and synonyms, an extra column.
fn hand_made(rows: &[[&str; 7]]) -> Vec<u8> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "农村留守儿童信息登记表").unwrap();
    let headers = [
        "序号",
        "身份证号码",
        " 姓　名 ",
        "性别*",
        "出生日期",
        "学校名称",
        "留守类型",
        "监护人联系电话",
    ];
    for (j, h) in headers.iter().enumerate() {
        ws.write_string(1, j as u16, *h).unwrap();
    }
    for (i, r) in rows.iter().enumerate() {
        let row = i as u32 + 2;
        ws.write_number(row, 0, (i + 1) as f64).unwrap();
        for (j, v) in r.iter().enumerate() {
            if !v.is_empty() {
                ws.write_string(row, j as u16 + 1, *v).unwrap();
            }
        }
    }
    wb.save_to_buffer().unwrap()
}

fn good_rows() -> Vec<[String; 7]> {
    (0..8)
        .map(|i| {
            let birth = format!("2015{:02}{:02}", i + 1, 10 + i);
            [
                id_number(&birth, 101 + 2 * i as u32),
                format!("学生{i}"),
                "男".to_string(),
                format!("2015/{}/{}", i + 1, 10 + i),
                "青山小学".to_string(),
                "父亲外出".to_string(),
                format!("1380013800{i}"),
            ]
        })
        .collect()
}

fn as_refs(rows: &[[String; 7]]) -> Vec<[&str; 7]> {
    rows.iter()
        .map(|r| std::array::from_fn(|j| r[j].as_str()))
        .collect()
}

#[test]
fn a_bad_id_number_in_row_5_and_a_bad_date_in_row_9_import_nothing() {
    let mut s = store();
    school(&mut s, "青山小学");
    let mut rows = good_rows();
    // Excel row 5 is the third child (title row 1, headers row 2).
    let last = rows[2][0].pop().unwrap();
    rows[2][0].push(if last == '1' { '2' } else { '1' });
    // Excel row 9 is the seventh child.
    rows[6][3] = "2015-13-45".into();
    let bytes = hand_made(&as_refs(&rows));
    let pending = s.pending_count().unwrap();
    let err = import(&mut s, &bytes).unwrap_err();
    assert_eq!(err.code(), "import.rows_invalid");
    let XlsxError::Rows { errors } = &err else {
        panic!("{err:?}")
    };
    let found: Vec<(u32, &str, &str)> = errors
        .iter()
        .map(|e| (e.row, e.column.as_str(), e.code.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            (5, "身份证号码", "id_number.checksum"),
            (9, "出生日期", "import.date_invalid"),
        ]
    );
    assert!(errors[0].message.contains("校验"), "{}", errors[0].message);
    assert!(
        errors[1].message.contains("2015-13-45"),
        "{}",
        errors[1].message
    );
    // Nothing written, not even the six good rows.
    assert_eq!(s.list_all::<ChildCard>().unwrap().len(), 0);
    assert_eq!(s.pending_count().unwrap(), pending);
    // The body the UI gets lists them.
    let body = err.body(Lang::ZhCn);
    assert_eq!(body.details["errors"][1]["row"], 9);
}

#[test]
fn the_hand_made_register_imports_and_a_reimport_updates_without_duplicates() {
    let mut s = store();
    let sc = school(&mut s, "青山小学");
    let rows = good_rows();
    let r = import(&mut s, &hand_made(&as_refs(&rows))).unwrap();
    assert_eq!((r.rows, r.created), (8, 8));
    assert_eq!(r.ignored_columns, vec!["序号".to_string()]);
    let kids = s.list_all::<ChildCard>().unwrap();
    let first = kids.iter().find(|c| c.body.name == "学生0").unwrap();
    assert_eq!(first.body.school_id, Some(sc));
    assert_eq!(first.body.left_behind_type, LeftBehindType::FatherAway);
    assert_eq!(first.body.birth_date, Some(date(2015, 1, 10)));
    assert_eq!(first.body.guardian.phone.as_deref(), Some("13800138000"));
    // A teacher adds what the register lacks, in the app.
    let mut card = first.body.clone();
    card.notes = "在校表现好".into();
    s.write(|w| w.update(first.meta.id, card)).unwrap();

    // The same register again, with one phone changed.
    let mut again = rows.clone();
    again[0][6] = "13912345678".into();
    let r = import(&mut s, &hand_made(&as_refs(&again))).unwrap();
    assert_eq!((r.created, r.updated, r.unchanged), (0, 1, 7));
    let kids = s.list_all::<ChildCard>().unwrap();
    assert_eq!(kids.len(), 8);
    let first = s.fetch::<ChildCard>(first.meta.id).unwrap();
    assert_eq!(first.body.guardian.phone.as_deref(), Some("13912345678"));
    // What the register has no column for stays.
    assert_eq!(first.body.notes, "在校表现好");
}

#[test]
fn an_id_number_stored_as_a_number_is_refused() {
    let mut s = store();
    school(&mut s, "青山小学");
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    for (j, h) in ["姓名", "身份证号"].iter().enumerate() {
        ws.write_string(0, j as u16, *h).unwrap();
    }
    ws.write_string(1, 0, "张三").unwrap();
    ws.write_number(1, 1, 520102201503071234.0).unwrap();
    let err = import(&mut s, &wb.save_to_buffer().unwrap()).unwrap_err();
    let XlsxError::Rows { errors } = err else {
        panic!()
    };
    assert_eq!(errors[0].row, 2);
    assert_eq!(errors[0].code, "import.number_as_text_required");
}

#[test]
fn the_id_number_gives_a_missing_gender_and_birth_date() {
    let mut s = store();
    school(&mut s, "青山小学");
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "姓名").unwrap();
    ws.write_string(0, 1, "身份证号").unwrap();
    ws.write_string(1, 0, "赵六").unwrap();
    ws.write_string(1, 1, id_number("20150307", 122)).unwrap();
    import(&mut s, &wb.save_to_buffer().unwrap()).unwrap();
    let kid = &s.list_all::<ChildCard>().unwrap()[0].body;
    assert_eq!(kid.gender, Some(Gender::Female));
    assert_eq!(kid.birth_date, Some(date(2015, 3, 7)));
}

#[test]
fn missing_headers_unreadable_files_and_empty_sheets_are_told_apart() {
    let mut s = store();
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "学生").unwrap();
    let err = import(&mut s, &wb.save_to_buffer().unwrap()).unwrap_err();
    assert_eq!(err.code(), "import.header_missing");

    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    ws.write_string(0, 0, "姓名").unwrap();
    let err = import(&mut s, &wb.save_to_buffer().unwrap()).unwrap_err();
    assert_eq!(err.code(), "import.header_missing");
    assert!(err.message(Lang::ZhCn).contains("出生日期"));

    let err = import(&mut s, b"name,gender\n").unwrap_err();
    assert_eq!(err.code(), "import.xlsx_unreadable");

    let template = template_xlsx(Lang::ZhCn).unwrap();
    let err = import(&mut s, &template).unwrap_err();
    assert_eq!(err.code(), "import.empty");
    let header: Vec<String> = first_sheet(&template)
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(header, register_headers(Lang::ZhCn));
}

#[test]
fn two_rows_for_one_child_and_another_school_are_refused() {
    let mut s = store();
    let own = school(&mut s, "青山小学");
    school(&mut s, "红星小学");
    let mut rows = good_rows();
    rows[3] = rows[1].clone();
    rows[4][4] = "红星小学".into();
    rows[5][4] = "不存在小学".into();
    let err = import_children_xlsx(
        &mut s,
        &hand_made(&as_refs(&rows)),
        &XlsxImportOptions {
            lang: Lang::ZhCn,
            only_school: Some(own),
            password: None,
        },
        &mut |_| {},
    )
    .unwrap_err();
    let XlsxError::Rows { errors } = err else {
        panic!()
    };
    let found: Vec<(u32, &str)> = errors.iter().map(|e| (e.row, e.code.as_str())).collect();
    assert_eq!(
        found,
        vec![
            (6, "import.duplicate_row"),
            (7, "import.school_forbidden"),
            (8, "import.school_unknown"),
        ]
    );
    assert!(errors[0].message.contains("第4行"), "{}", errors[0].message);
}

#[test]
fn a_password_protected_export_imports_with_its_password_only() {
    let mut a = store();
    let sa = school(&mut a, "青山小学");
    seed(&mut a, sa);
    let plain = export_all(&a, Lang::ZhCn);
    let protected = protect_xlsx(&plain, "county-2026-pass").unwrap();
    // An OLE compound file, not a zip: Excel asks for the password.
    assert_eq!(&protected[..4], &[0xD0, 0xCF, 0x11, 0xE0]);
    if let Ok(dir) = std::env::var("SHOUHU_XLSX_SAMPLE_DIR") {
        // For checking by hand with other tools (msoffcrypto-tool, Excel).
        std::fs::write(format!("{dir}/protected.xlsx"), &protected).unwrap();
    }

    let mut b = store();
    school(&mut b, "青山小学");
    let err = import(&mut b, &protected).unwrap_err();
    assert_eq!(err.code(), "import.password_required");
    let wrong = XlsxImportOptions {
        password: Some("guess".into()),
        ..Default::default()
    };
    let err = import_children_xlsx(&mut b, &protected, &wrong, &mut |_| {}).unwrap_err();
    assert_eq!(err.code(), "import.wrong_password");
    assert_eq!(b.list_all::<ChildCard>().unwrap().len(), 0);
    let right = XlsxImportOptions {
        password: Some("county-2026-pass".into()),
        ..Default::default()
    };
    let r = import_children_xlsx(&mut b, &protected, &right, &mut |_| {}).unwrap();
    assert_eq!(r.created, 3);
}

/// A workbook made by openpyxl and protected by msoffcrypto-tool (another
/// implementation of Excel's agile encryption), password `fixture-2026`.
#[test]
fn a_workbook_protected_by_another_tool_imports() {
    let file = include_bytes!("fixtures/msoffcrypto-protected.xlsx");
    let mut s = store();
    let opts = XlsxImportOptions {
        password: Some("fixture-2026".into()),
        ..Default::default()
    };
    let r = import_children_xlsx(&mut s, file, &opts, &mut |_| {}).unwrap();
    assert_eq!(r.created, 1);
    let kid = &s.list_all::<ChildCard>().unwrap()[0].body;
    assert_eq!(kid.name, "孙七");
    assert_eq!(kid.birth_date, Some(date(2016, 5, 4)));
    assert_eq!(kid.id_number.as_deref(), Some("520102201605041245"));
}

#[test]
fn a_register_with_one_column_for_grade_and_class_fills_both() {
    let mut s = store();
    school(&mut s, "青山小学");
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    for (j, h) in ["姓名", "身份证号", "年级/班级", "家庭住址"]
        .iter()
        .enumerate()
    {
        ws.write_string(0, j as u16, *h).unwrap();
    }
    ws.write_string(1, 0, "周八").unwrap();
    ws.write_string(1, 1, id_number("20150307", 125)).unwrap();
    ws.write_string(1, 2, "三年级2班").unwrap();
    ws.write_string(1, 3, "石头村三组12号").unwrap();
    import(&mut s, &wb.save_to_buffer().unwrap()).unwrap();
    let kid = &s.list_all::<ChildCard>().unwrap()[0].body;
    assert_eq!(
        (kid.grade.as_str(), kid.class_name.as_str()),
        ("三年级", "2班")
    );
    assert_eq!(kid.current_address.detail, "石头村三组12号");
    assert_eq!(kid.gender, Some(Gender::Male));
}
