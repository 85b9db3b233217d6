//! The `shouhu` CLI over a real store file: import with mixed good and bad
//! lines, export and re-import, search, show, stats.

use std::io::Write;

use serde_json::{json, Value};
use shouhu_core::validate::id_check_char;

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn shouhu(db: &std::path::Path, args: &[&str]) -> Run {
    let mut all = vec![
        "shouhu".to_string(),
        "--db".into(),
        db.display().to_string(),
    ];
    all.extend(args.iter().map(|s| s.to_string()));
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = shouhu_cli::run(all, &mut out, &mut err);
    Run {
        code,
        out: String::from_utf8_lossy(&out).into_owned(),
        err: String::from_utf8_lossy(&err).into_owned(),
    }
}

fn id_for(birth: &str, seq3: &str) -> String {
    let first17 = format!("520502{birth}{seq3}");
    let c = id_check_char(first17.as_bytes()).unwrap_or('0');
    format!("{first17}{c}")
}

const SCHOOL: &str = "01934b6e-0000-7000-8000-000000000001";
const CHILD_A: &str = "01934b6e-0000-7000-8000-0000000000a1";
const CHILD_B: &str = "01934b6e-0000-7000-8000-0000000000b2";

fn child(id: &str, name: &str, gender: &str, birth: &str, id_number: &str) -> Value {
    json!({"type": "child", "id": id, "record": {
        "name": name, "gender": gender, "birth_date": birth, "id_number": id_number,
        "ethnicity": "苗族", "school_id": SCHOOL, "grade": "三年级", "class_name": "1班",
        "current_address": {"county": "织金县", "township": "八步街道", "village": "新寨村", "group": "第二组"},
        "left_behind_type": "both_away", "guardianship_type": "fair"
    }})
}

fn mixed_file(dir: &std::path::Path) -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
    let good_a = id_for("20170304", "123"); // 17th digit 3: male
    let good_b = id_for("20160229", "124"); // 4: female
    let mut bad_check = id_for("20150101", "135");
    bad_check.pop();
    bad_check.push(if id_for("20150101", "135").ends_with('1') {
        '2'
    } else {
        '1'
    });
    let lines = vec![
        json!({"type": "school", "id": SCHOOL, "record": {"name": "新寨小学", "county": "织金县", "township": "八步街道"}}).to_string(),
        child(CHILD_A, "张三", "male", "2017-03-04", &good_a).to_string(),
        // 3: bad check digit
        child("01934b6e-0000-7000-8000-0000000000c3", "李四", "male", "2015-01-01", &bad_check).to_string(),
        // 4: not JSON
        "{\"type\": \"child\", \"record\": ".to_string(),
        // 5: blank line, skipped
        String::new(),
        // 6: lower-case x, full-width spaces around: normalised, fine
        child(CHILD_B, "单丽", "female", "2016-02-29", &format!("\u{3000}{}\u{3000}", good_b.to_lowercase())).to_string(),
        // 7: unknown type
        json!({"type": "teacher", "record": {}}).to_string(),
        // 8: a visit for a child that does not exist
        json!({"type": "home_visit", "record": {"child_id": "01934b6e-0000-7000-8000-0000000000ff", "visit_date": "2026-01-05", "visitors": ["刘老师"]}}).to_string(),
        // 9: a good visit
        json!({"type": "home_visit", "record": {"child_id": CHILD_A, "visit_date": "2026-01-05", "visitors": ["刘老师"], "problems_found": "作业无人辅导"}}).to_string(),
        // 10: a bad enum value
        json!({"type": "aid", "record": {"child_id": CHILD_A, "date": "2026-01-05", "kind": "gold", "amount_fen": 100, "fund_source": "专项", "fund_year": 2026, "handed_over_by": "刘"}}).to_string(),
        // 11: 15-digit legacy ID
        child("01934b6e-0000-7000-8000-0000000000d4", "王五", "male", "2015-01-01", "520502150101123").to_string(),
        // 12: 30 February
        child("01934b6e-0000-7000-8000-0000000000e5", "赵六", "male", "2015-02-28", &id_for("20150230", "123")).to_string(),
        // 13: negative aid
        json!({"type": "aid", "record": {"child_id": CHILD_A, "date": "2026-01-05", "kind": "cash", "amount_fen": -5, "fund_source": "专项", "fund_year": 2026, "handed_over_by": "刘"}}).to_string(),
    ];
    let path = dir.join("roster.jsonl");
    let mut f = std::fs::File::create(&path)?;
    for l in lines {
        writeln!(f, "{l}")?;
    }
    Ok(path)
}

#[test]
fn import_keeps_good_lines_and_reports_each_bad_one() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("s.db");
    let file = mixed_file(dir.path())?;
    let r = shouhu(&db, &["import", file.to_str().ok_or("path")?, "--json"]);
    assert_eq!(r.code, 2, "bad lines make a non-zero exit: {}", r.err);
    let report: Value = serde_json::from_str(&r.out)?;
    assert_eq!(report["created"], 4, "{report}");
    let errors: Vec<(u64, String)> = report["errors"]
        .as_array()
        .ok_or("errors")?
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap_or(0),
                e["code"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (3, "id_number.checksum".to_string()),
            (4, "import.malformed_json".to_string()),
            (7, "import.unknown_type".to_string()),
            (8, "record.reference_missing".to_string()),
            (10, "record.malformed".to_string()),
            (11, "id_number.legacy_15".to_string()),
            (12, "id_number.birth_date_invalid".to_string()),
            (13, "amount.negative".to_string()),
        ]
    );
    let msg3 = report["errors"][0]["message"].as_str().unwrap_or("");
    assert!(msg3.contains("第18位校验码不正确"), "{msg3}");

    // Text mode names the line numbers in Chinese on stderr.
    let db2 = dir.path().join("s2.db");
    let r = shouhu(&db2, &["import", file.to_str().ok_or("path")?]);
    assert_eq!(r.code, 2);
    assert!(r.err.contains("第3行 [id_number.checksum]"), "{}", r.err);
    assert!(r.out.contains("新增4"), "{}", r.out);

    // Nothing of the bad lines is in the store; the good ones are, normalised.
    let r = shouhu(&db, &["search", "sl", "--json"]);
    let page: Value = serde_json::from_str(&r.out)?;
    assert_eq!(page["total"], 1);
    let r = shouhu(&db, &["show", CHILD_B, "--json"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let h: Value = serde_json::from_str(&r.out)?;
    assert_eq!(h["child"]["body"]["id_number"], id_for("20160229", "124"));
    let r = shouhu(&db, &["stats", "--json"]);
    let st: Value = serde_json::from_str(&r.out)?;
    assert_eq!(st["records"]["child"], 2);
    assert_eq!(st["records"]["home_visit"], 1);
    assert_eq!(st["records"]["aid"], 0);

    // Importing the same file again changes nothing.
    let r = shouhu(&db, &["import", file.to_str().ok_or("path")?, "--json"]);
    let again: Value = serde_json::from_str(&r.out)?;
    assert_eq!(
        again["created"], 1,
        "the visit line has no id, so it is new each time"
    );
    assert_eq!(again["unchanged"], 3);
    Ok(())
}

#[test]
fn export_then_import_reproduces_the_store() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("a.db");
    let file = mixed_file(dir.path())?;
    shouhu(&db, &["import", file.to_str().ok_or("path")?]);
    let out = dir.path().join("all.jsonl");
    let r = shouhu(&db, &["export", out.to_str().ok_or("path")?]);
    assert_eq!(r.code, 0, "{}", r.err);
    let db2 = dir.path().join("b.db");
    let r = shouhu(&db2, &["import", out.to_str().ok_or("path")?, "--json"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let report: Value = serde_json::from_str(&r.out)?;
    assert_eq!(report["created"], 4);
    let out2 = dir.path().join("again.jsonl");
    shouhu(&db2, &["export", out2.to_str().ok_or("path")?]);
    let strip = |p: &std::path::Path| -> Result<Vec<Value>, Box<dyn std::error::Error>> {
        let text = std::fs::read_to_string(p)?;
        text.lines()
            .map(|l| {
                let mut v: Value = serde_json::from_str(l)?;
                if let Some(o) = v.as_object_mut() {
                    o.remove("meta");
                }
                Ok(v)
            })
            .collect()
    };
    assert_eq!(strip(&out)?, strip(&out2)?);
    Ok(())
}

#[test]
fn errors_are_coded_and_exit_non_zero() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("s.db");
    let r = shouhu(&db, &["import", "/no/such/file.jsonl"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("[io.open_failed]"), "{}", r.err);
    let r = shouhu(&db, &["show", "01934b6e-0000-7000-8000-000000000099"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("[record.not_found]"), "{}", r.err);
    let r = shouhu(
        &db,
        &[
            "--lang",
            "en",
            "show",
            "01934b6e-0000-7000-8000-000000000099",
        ],
    );
    assert!(r.err.starts_with("error [record.not_found]"), "{}", r.err);
    let r = shouhu(&db, &["export", "-", "--kinds", "teacher"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("[cli.unknown_kind]"), "{}", r.err);
    let r = shouhu(&db, &["search", "--status", "happy"]);
    assert_eq!(r.code, 64);
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![7u8; 4096])?;
    let r = shouhu(&junk, &["stats"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("[store.open_failed]"), "{}", r.err);
    Ok(())
}

#[test]
fn demo_fills_a_county_that_search_finds() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("demo.db");
    let r = shouhu(
        &db,
        &["demo", "--children", "120", "--schools", "3", "--seed", "7"],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("已生成演示数据"), "{}", r.out);
    let r = shouhu(&db, &["stats", "--json"]);
    let st: Value = serde_json::from_str(&r.out)?;
    assert_eq!(st["records"]["child"], 120);
    assert_eq!(st["records"]["school"], 3);
    assert!(st["records"]["home_visit"].as_i64().unwrap_or(0) > 0);
    // Every demo child is findable by the initials of its name.
    let r = shouhu(&db, &["search", "--limit", "1", "--json"]);
    let page: Value = serde_json::from_str(&r.out)?;
    let name = page["items"][0]["name"]
        .as_str()
        .ok_or("a child")?
        .to_string();
    let r = shouhu(&db, &["search", &name, "--json"]);
    let page: Value = serde_json::from_str(&r.out)?;
    assert!(page["total"].as_u64().unwrap_or(0) >= 1);
    // The same seed again: the county exists already, a coded error.
    let r = shouhu(
        &db,
        &["demo", "--children", "120", "--schools", "3", "--seed", "7"],
    );
    assert_eq!(r.code, 1);
    assert!(r.err.contains("[record.already_exists]"), "{}", r.err);
    Ok(())
}

#[test]
fn an_encrypted_store_needs_a_log_in_and_audits_what_is_read() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("school.db");
    let ident = dir.path().join("identity");
    let ident = ident.display().to_string();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "wang2026ok\n")?;
    let pw = pw.display().to_string();
    let file = mixed_file(dir.path())?;
    let file = file.display().to_string();
    let with = |extra: &[&str]| {
        let mut args = vec!["--identity-dir", ident.as_str()];
        args.extend_from_slice(extra);
        shouhu(&db, &args)
    };

    // A plain store with data, then encrypted in place with its first user.
    assert_eq!(with(&["import", &file]).code, 2);
    let r = with(&[
        "encrypt",
        "--login",
        "wang",
        "--name",
        "王校长",
        "--role",
        "principal",
        "--password-file",
        &pw,
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    let bytes = std::fs::read(&db)?;
    assert!(
        !bytes.windows("张".len()).any(|w| w == "张".as_bytes()),
        "plaintext on disk"
    );

    // Without a log-in, nothing opens; a wrong password is refused.
    let r = with(&["stats"]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("[cli.login_required]"), "{}", r.err);
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "guess\n")?;
    let r = with(&[
        "--user",
        "wang",
        "--password-file",
        &bad.display().to_string(),
        "stats",
    ]);
    assert!(r.err.contains("[auth.wrong_password]"), "{}", r.err);

    // With it, everything works as before, and reading is audited.
    let r = with(&["--user", "wang", "--password-file", &pw, "show", CHILD_A]);
    assert_eq!(r.code, 0, "{}", r.err);
    // A principal is not a counselor: no notes.
    let r = with(&[
        "--user",
        "wang",
        "--password-file",
        &pw,
        "show",
        CHILD_A,
        "--notes",
    ]);
    assert!(r.err.contains("[auth.forbidden]"), "{}", r.err);
    // An encrypted store's export is never plain: refused without a file
    // password (and no file left), sealed with one.
    let out = dir.path().join("out.jsonl").display().to_string();
    let r = with(&["--user", "wang", "--password-file", &pw, "export", &out]);
    assert!(r.err.contains("[export.password_required]"), "{}", r.err);
    assert!(!std::path::Path::new(&out).exists());
    let epw = dir.path().join("export-pw");
    std::fs::write(&epw, "county-2026\n")?;
    let epw = epw.display().to_string();
    let r = with(&[
        "--user",
        "wang",
        "--password-file",
        &pw,
        "export",
        &out,
        "--export-password-file",
        &epw,
    ]);
    assert_eq!(r.code, 0, "{}", r.err);
    let sealed = std::fs::read(&out)?;
    assert!(shouhu_auth::stream::is_sealed_stream(&sealed));
    assert!(
        !sealed.windows("张三".len()).any(|w| w == "张三".as_bytes()),
        "plaintext in the export"
    );
    // A backup: the store's copy, still encrypted, with its keyring.
    let backup = dir.path().join("backup.db");
    let b = backup.display().to_string();
    let r = with(&["--user", "wang", "--password-file", &pw, "backup", &b]);
    assert_eq!(r.code, 0, "{}", r.err);
    let r = with(&["--user", "wang", "--password-file", &pw, "backup", &b]);
    assert!(r.err.contains("[backup.exists]"), "{}", r.err);
    {
        let copy =
            shouhu_vault::Vault::new(&backup).log_in("wang", "wang2026ok", chrono::Utc::now())?;
        assert!(!shouhu_store::Store::is_plain_file(&backup));
        let a = copy
            .store()
            .fetch::<shouhu_core::ChildCard>(CHILD_A.parse()?)?;
        assert_eq!(a.body.name, "张三");
    }

    // The sealed export imports elsewhere with its password only; a wrong
    // one imports nothing.
    let db2 = dir.path().join("other.db");
    let r = shouhu(&db2, &["import", &out]);
    assert!(r.err.contains("[import.password_required]"), "{}", r.err);
    let r = shouhu(
        &db2,
        &[
            "import",
            &out,
            "--export-password-file",
            &bad.display().to_string(),
        ],
    );
    assert!(r.err.contains("[import.wrong_password]"), "{}", r.err);
    let mut cut = sealed.clone();
    cut.truncate(sealed.len() - 3);
    let cut_path = dir.path().join("cut.jsonl");
    std::fs::write(&cut_path, &cut)?;
    let r = shouhu(
        &db2,
        &[
            "import",
            &cut_path.display().to_string(),
            "--export-password-file",
            &epw,
        ],
    );
    assert!(r.err.contains("[import.file_damaged]"), "{}", r.err);
    let r = shouhu(&db2, &["stats", "--json"]);
    let st: Value = serde_json::from_str(&r.out)?;
    assert_eq!(st["records"]["child"], 0, "nothing imported: {st}");
    let r = shouhu(
        &db2,
        &["import", &out, "--export-password-file", &epw, "--json"],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    let r = shouhu(&db2, &["show", CHILD_A]);
    assert!(r.out.contains("张三"), "{}", r.out);

    let vault = shouhu_vault::Vault::new(&db).with_identity_dir(&ident);
    let session = vault.log_in("wang", "wang2026ok", chrono::Utc::now())?;
    let entries = session
        .store()
        .audit_entries(&shouhu_store::AuditFilter::default())?;
    let actions: Vec<&str> = entries.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "import",
            "login",
            "logout",
            "login_failed",
            "login",
            "view_child",
            "login",
            "login",
            "login",
            "export",
            "login",
            "export",
            "login",
            "login"
        ],
        "{actions:?}"
    );
    Ok(())
}

#[test]
fn a_counselor_reads_sealed_notes_through_the_cli() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("school.db");
    let ident = dir.path().join("identity").display().to_string();
    let file = mixed_file(dir.path())?;
    assert_eq!(
        shouhu(
            &db,
            &[
                "--identity-dir",
                &ident,
                "import",
                &file.display().to_string()
            ]
        )
        .code,
        2
    );
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "xinli2026ok\n")?;
    let pw = pw.display().to_string();
    let r = shouhu(
        &db,
        &[
            "--identity-dir",
            &ident,
            "encrypt",
            "--login",
            "xinli",
            "--name",
            "心理老师",
            "--role",
            "counselor",
            "--school",
            SCHOOL,
            "--township",
            SCHOOL,
            "--password-file",
            &pw,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    // The counselor's note, sealed for the laptop's readers (as the app does).
    let note_id = uuid::Uuid::now_v7();
    {
        let vault = shouhu_vault::Vault::new(&db).with_identity_dir(&ident);
        let mut session = vault.log_in("xinli", "xinli2026ok", chrono::Utc::now())?;
        let readers = session.local_readers()?;
        let note = shouhu_core::PsychNote {
            child_id: CHILD_A.parse()?,
            session_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 20),
            presenting_issue: "夜里想妈妈睡不着".into(),
            ..Default::default()
        };
        let sealed = shouhu_auth::note::seal_value(note_id, &note.content(), &readers)?;
        let body = note.into_sealed(sealed);
        session
            .store_mut()
            .write(|w| w.create_with_id(note_id, body.clone()))?;
    }
    let r = shouhu(
        &db,
        &[
            "--identity-dir",
            &ident,
            "--user",
            "xinli",
            "--password-file",
            &pw,
            "show",
            CHILD_A,
            "--notes",
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("夜里想妈妈睡不着"), "{}", r.out);
    // On disk and in the change log it is ciphertext only.
    let bytes = std::fs::read(&db)?;
    assert!(!bytes.windows("夜里".len()).any(|w| w == "夜里".as_bytes()));
    Ok(())
}

#[test]
fn excel_export_and_import_through_the_cli() -> TestResult {
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("a.db");
    let file = mixed_file(dir.path())?;
    assert_eq!(
        shouhu(&db, &["import", file.to_str().ok_or("path")?]).code,
        2
    );
    let xlsx = dir.path().join("register.xlsx");
    let xlsx_s = xlsx.display().to_string();
    let r = shouhu(&db, &["export-xlsx", &xlsx_s]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("已导出2名儿童"), "{}", r.out);
    // A zip (an .xlsx), not a sealed file.
    assert_eq!(&std::fs::read(&xlsx)?[..2], b"PK");

    // Into a fresh store that knows the school: both children, then a
    // second import changes nothing and duplicates no one.
    let db2 = dir.path().join("b.db");
    let school_only = dir.path().join("school.jsonl");
    std::fs::write(
        &school_only,
        format!(
            "{}\n",
            json!({"type": "school", "id": SCHOOL, "record": {"name": "新寨小学", "county": "织金县", "township": "八步街道"}})
        ),
    )?;
    assert_eq!(
        shouhu(&db2, &["import", school_only.to_str().ok_or("path")?]).code,
        0
    );
    let r = shouhu(&db2, &["import-xlsx", &xlsx_s, "--json"]);
    assert_eq!(r.code, 0, "{}", r.err);
    let rep: Value = serde_json::from_str(&r.out)?;
    assert_eq!(
        (rep["created"].as_u64(), rep["rows"].as_u64()),
        (Some(2), Some(2))
    );
    let r = shouhu(&db2, &["import-xlsx", &xlsx_s]);
    assert!(r.out.contains("新增0，更新0，未变2"), "{}", r.out);
    let r = shouhu(&db2, &["show", CHILD_A]);
    assert!(r.out.contains("张三"), "{}", r.out);

    // A file that is no workbook: coded error, exit 1.
    let r = shouhu(&db2, &["import-xlsx", file.to_str().ok_or("path")?]);
    assert_eq!(r.code, 1);
    assert!(r.err.contains("[import.xlsx_unreadable]"), "{}", r.err);

    // The template has the headers and no child.
    let t = dir.path().join("template.xlsx");
    let r = shouhu(
        &db2,
        &["export-xlsx", "--template", &t.display().to_string()],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    let r = shouhu(&db2, &["import-xlsx", &t.display().to_string()]);
    assert!(r.err.contains("[import.empty]"), "{}", r.err);

    // An encrypted store: without a password only when asked by name, else
    // protected as Excel's "Encrypt with Password" does.
    let ident = dir.path().join("identity").display().to_string();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "wang2026ok\n")?;
    let pw = pw.display().to_string();
    let r = shouhu(
        &db,
        &[
            "--identity-dir",
            &ident,
            "encrypt",
            "--login",
            "wang",
            "--name",
            "王校长",
            "--role",
            "principal",
            "--password-file",
            &pw,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    let as_wang = |extra: &[&str]| {
        let mut args = vec![
            "--identity-dir",
            ident.as_str(),
            "--user",
            "wang",
            "--password-file",
            pw.as_str(),
        ];
        args.extend_from_slice(extra);
        shouhu(&db, &args)
    };
    let sealed = dir.path().join("sealed.xlsx").display().to_string();
    let r = as_wang(&["export-xlsx", &sealed]);
    assert!(r.err.contains("[export.password_required]"), "{}", r.err);
    let epw = dir.path().join("epw");
    std::fs::write(&epw, "export-2026-pass\n")?;
    let epw = epw.display().to_string();
    let r = as_wang(&["export-xlsx", &sealed, "--export-password-file", &epw]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(&std::fs::read(&sealed)?[..4], &[0xD0, 0xCF, 0x11, 0xE0]);
    let r = as_wang(&["export-xlsx", &xlsx_s, "--unprotected"]);
    assert_eq!(r.code, 0, "{}", r.err);
    assert_eq!(&std::fs::read(&xlsx)?[..2], b"PK");

    let db3 = dir.path().join("c.db");
    assert_eq!(
        shouhu(&db3, &["import", school_only.to_str().ok_or("path")?]).code,
        0
    );
    let r = shouhu(&db3, &["import-xlsx", &sealed]);
    assert!(r.err.contains("[import.password_required]"), "{}", r.err);
    let r = shouhu(
        &db3,
        &["import-xlsx", &sealed, "--export-password-file", &pw],
    );
    assert!(r.err.contains("[import.wrong_password]"), "{}", r.err);
    let r = shouhu(
        &db3,
        &["import-xlsx", &sealed, "--export-password-file", &epw],
    );
    assert_eq!(r.code, 0, "{}", r.err);
    assert!(r.out.contains("新增2"), "{}", r.out);

    // Both exports are in the encrypted store's audit log, with their kind.
    let vault = shouhu_vault::Vault::new(&db).with_identity_dir(&ident);
    let session = vault.log_in("wang", "wang2026ok", chrono::Utc::now())?;
    let exports: Vec<Value> = session
        .store()
        .audit_entries(&shouhu_store::AuditFilter::default())?
        .into_iter()
        .filter(|e| e.action.as_str() == "export")
        .map(|e| e.details)
        .collect();
    // The plain store's first export, then the sealed and the unprotected one.
    assert_eq!(exports.len(), 3, "{exports:?}");
    assert!(exports
        .iter()
        .all(|d| d["format"] == "xlsx" && d["children"] == 2));
    assert!(exports.iter().any(|d| d["protected"] == true));
    assert!(exports.iter().any(|d| d["protected"] == false));
    Ok(())
}
