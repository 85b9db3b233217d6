//! Excel in and out: the children register (农村留守儿童信息登记表) as .xlsx,
//! through `shouhu_exchange::xlsx`. The app's side: who may, which children
//! (the user's scope and the list's current filter), the file written
//! whole or not at all, and the audit entry.
//!
//! The file path comes from the shell's native dialog, never from the
//! webview. An export of children is protected with a password the user
//! types, the way Excel's "Encrypt with Password" does (Excel and WPS ask
//! for it on opening), and audited with its count and filter; the empty
//! template carries no data and needs none. An import opens a protected
//! workbook with its password (`import.password_required` asks for it).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::json;
use shouhu_exchange::xlsx;
use shouhu_store::{AuditAction, AuditTarget, SearchParams};

use crate::{Error, Result, Session, Store};

pub use shouhu_exchange::{RowError, XlsxImportReport, XlsxProgress};

/// What to export: the children list's filter (its query too; offset and
/// limit are ignored), or the empty register to fill in.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ExcelExport {
    pub filter: Option<SearchParams>,
    pub template: bool,
    /// The workbook's password (Excel's "Encrypt with Password"): required
    /// for children's data, which leaves the encrypted store protected
    /// (`export.password_required`); checked by the password rules.
    pub password: Option<String>,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExcelExported {
    pub children: usize,
    /// The file's name (not its folder), for the message.
    pub file_name: String,
}

/// Refuses a role that may not export (teachers and counselors export
/// nothing; principals their school, township staff their township, county
/// admins the county; by the role table), and an export of children without
/// a good password. The empty template is for all. The shell asks this
/// before it opens the save dialog.
pub fn check_excel_export(session: &Session, req: &ExcelExport) -> Result<()> {
    if req.template {
        return Ok(());
    }
    if !session.may(shouhu_auth::Action::Export) {
        return Err(Error::Forbidden {
            role: session.role.as_str(),
            action: "export children",
        });
    }
    let pw = req
        .password
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or(Error::ExportPasswordRequired)?;
    shouhu_auth::password::check_new_password(pw, "")?;
    Ok(())
}

/// Refuses the roles that only read (import writes cards).
pub fn check_excel_import(session: &Session) -> Result<()> {
    if !session.may(shouhu_auth::Action::WriteRecords) {
        return Err(Error::Forbidden {
            role: session.role.as_str(),
            action: "import children",
        });
    }
    Ok(())
}

/// The name the save dialog proposes: 留守儿童登记表-2026-11-28.xlsx.
pub fn excel_file_name(session: &Session, store: &Store, template: bool) -> String {
    let today = store.today();
    match (session.lang, template) {
        (shouhu_core::Lang::ZhCn, false) => format!("留守儿童登记表-{today}.xlsx"),
        (shouhu_core::Lang::ZhCn, true) => "留守儿童登记表-空白模板.xlsx".to_string(),
        (shouhu_core::Lang::En, false) => format!("children-{today}.xlsx"),
        (shouhu_core::Lang::En, true) => "children-template.xlsx".to_string(),
    }
}

/// Export the children of the user's scope that `req.filter` finds (all of
/// them without a filter) to `path`, or the empty register.
pub fn export_children_xlsx(
    store: &Store,
    session: &Session,
    req: &ExcelExport,
    path: &Path,
    progress: &mut dyn FnMut(XlsxProgress),
) -> Result<ExcelExported> {
    check_excel_export(session, req)?;
    let password = req.password.as_deref().filter(|_| !req.template);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if req.template {
        write_whole(path, &xlsx::template_xlsx(session.lang)?)?;
        return Ok(ExcelExported {
            children: 0,
            file_name,
        });
    }
    let mut params = req.filter.clone().unwrap_or_default();
    params.school_id = session.school_filter(params.school_id);
    let children = xlsx::children_matching(store, &params)?;
    let (bytes, report) = xlsx::export_children_xlsx(store, &children, session.lang, progress)?;
    let bytes = match password {
        Some(pw) => xlsx::protect_xlsx(&bytes, pw)?,
        None => bytes,
    };
    write_whole(path, &bytes)?;
    store.audit(
        AuditAction::Export,
        AuditTarget {
            entity: Some("child".into()),
            record_id: None,
            school_id: params.school_id,
        },
        json!({
            "via": "app",
            "format": "xlsx",
            "protected": password.is_some(),
            "children": report.children,
            "filter": {
                "query": params.query,
                "school": params.school_id,
                "township": params.township,
                "left_behind_type": params.left_behind_type,
                "guardianship_type": params.guardianship_type,
                "status": params.status,
            },
        }),
    )?;
    Ok(ExcelExported {
        children: report.children,
        file_name,
    })
}

/// Import the register at `path`: all rows or none (a refusal lists every
/// bad cell: `import.rows_invalid`, `details.errors`). A school user's rows
/// must be of their school. Audited either way.
pub fn import_children_xlsx(
    store: &mut Store,
    session: &Session,
    path: &Path,
    password: Option<&str>,
    progress: &mut dyn FnMut(XlsxProgress),
) -> Result<XlsxImportReport> {
    check_excel_import(session)?;
    let bytes = std::fs::read(path).map_err(|e| Error::File {
        path: path.display().to_string(),
        error: e.to_string(),
        write: false,
    })?;
    let opts = xlsx::XlsxImportOptions {
        lang: session.lang,
        only_school: session.own_school(),
        password: password.map(str::to_string),
    };
    let result = xlsx::import_children_xlsx(store, &bytes, &opts, progress);
    let details = match &result {
        Ok(r) => json!({
            "via": "app", "format": "xlsx", "rows": r.rows,
            "created": r.created, "updated": r.updated,
        }),
        Err(e) => json!({ "via": "app", "format": "xlsx", "failed": e.code() }),
    };
    // Asking for the password is not an attempt worth a line in the log.
    if matches!(result, Err(shouhu_exchange::XlsxError::PasswordRequired)) {
        return Ok(result?);
    }
    store.audit(
        AuditAction::Import,
        AuditTarget {
            entity: Some("child".into()),
            record_id: None,
            school_id: session.own_school(),
        },
        details,
    )?;
    Ok(result?)
}

/// Write beside `path` and rename: a failed export never leaves a
/// half-written file under the chosen name.
fn write_whole(path: &Path, bytes: &[u8]) -> Result<()> {
    let failed = |p: &Path, e: std::io::Error| Error::File {
        path: p.display().to_string(),
        error: e.to_string(),
        write: true,
    };
    let tmp = path.with_extension("xlsx.partial");
    std::fs::write(&tmp, bytes).map_err(|e| failed(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        failed(path, e)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testutil;
    use shouhu_auth::{Role, Scope};
    use shouhu_core::ChildCard;

    fn as_role(role: Role, scope: Scope) -> Session {
        Session {
            role,
            scope,
            ..Session::default()
        }
    }

    #[test]
    fn a_principal_exports_their_school_a_teacher_imports_and_both_are_audited() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        let other = s
            .write(|w| {
                w.create(shouhu_core::School {
                    name: "红星小学".into(),
                    township: "青山镇".into(),
                    ..Default::default()
                })
            })
            .unwrap()
            .id();
        testutil::child(&mut s, school);
        let mut stranger = testutil::card(other);
        stranger.name = "外校生".into();
        crate::save_child(
            &mut s,
            &Session::default(),
            crate::SaveChild {
                id: None,
                card: stranger,
            },
        )
        .unwrap();
        let own = Scope::School {
            school_id: school,
            township_id: uuid::Uuid::nil(),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.xlsx");

        // A teacher may not export; the empty template is for everyone.
        let teacher = as_role(Role::Teacher, own);
        let err = export_children_xlsx(&s, &teacher, &ExcelExport::default(), &path, &mut |_| {})
            .unwrap_err();
        assert_eq!(err.code(), "auth.forbidden");
        let t = ExcelExport {
            template: true,
            ..Default::default()
        };
        assert_eq!(
            export_children_xlsx(&s, &teacher, &t, &path, &mut |_| {})
                .unwrap()
                .children,
            0
        );

        // The principal asks for all schools and gets their own.
        let principal = as_role(Role::Principal, own);
        let mut ticks = 0;
        let err = export_children_xlsx(&s, &principal, &ExcelExport::default(), &path, &mut |_| {})
            .unwrap_err();
        assert_eq!(err.code(), "export.password_required");
        let weak = ExcelExport {
            password: Some("123".into()),
            ..Default::default()
        };
        assert!(export_children_xlsx(&s, &principal, &weak, &path, &mut |_| {}).is_err());
        let req = ExcelExport {
            password: Some("qingshan-2026".into()),
            ..Default::default()
        };
        let done = export_children_xlsx(&s, &principal, &req, &path, &mut |_| ticks += 1).unwrap();
        assert_eq!(done.children, 1);
        assert_eq!(done.file_name, "out.xlsx");
        assert!(ticks > 0);
        let audit = s
            .audit_entries(&shouhu_store::AuditFilter::default())
            .unwrap();
        let export = audit
            .iter()
            .find(|e| e.action == AuditAction::Export)
            .unwrap();
        assert_eq!(export.details["children"], 1);
        assert_eq!(export.details["protected"], true);
        assert_eq!(export.school_id, Some(school));

        // A county admin only reads: no import. The teacher imports the
        // file back: the child is there already, nothing changes.
        let admin = as_role(Role::CountyAdmin, Scope::County);
        let err = import_children_xlsx(&mut s, &admin, &path, None, &mut |_| {}).unwrap_err();
        assert_eq!(err.code(), "auth.forbidden");
        let err = import_children_xlsx(&mut s, &teacher, &path, None, &mut |_| {}).unwrap_err();
        assert_eq!(err.code(), "import.password_required");
        let r = import_children_xlsx(&mut s, &teacher, &path, Some("qingshan-2026"), &mut |_| {})
            .unwrap();
        assert_eq!((r.rows, r.created, r.unchanged), (1, 0, 1));
        assert_eq!(s.list_all::<ChildCard>().unwrap().len(), 2);

        // A file that is not there, and one that is not a workbook.
        let err = import_children_xlsx(
            &mut s,
            &teacher,
            &dir.path().join("no.xlsx"),
            None,
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(err.code(), "io.read_failed");
        std::fs::write(dir.path().join("bad.xlsx"), "not a workbook").unwrap();
        let err = import_children_xlsx(
            &mut s,
            &teacher,
            &dir.path().join("bad.xlsx"),
            None,
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(err.code(), "import.xlsx_unreadable");
        assert!(err.body(shouhu_core::Lang::ZhCn).message.contains("Excel"));
        let imports = s
            .audit_entries(&shouhu_store::AuditFilter::default())
            .unwrap()
            .into_iter()
            .filter(|e| e.action == AuditAction::Import)
            .count();
        assert_eq!(imports, 2, "the success and the unreadable file");
    }

    #[test]
    fn the_export_follows_the_list_filter() {
        let mut s = testutil::store();
        let school = testutil::school(&mut s);
        testutil::child(&mut s, school);
        let mut li = testutil::card(school);
        li.name = "李四".into();
        crate::save_child(
            &mut s,
            &Session::default(),
            crate::SaveChild { id: None, card: li },
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("li.xlsx");
        let admin = as_role(Role::CountyAdmin, Scope::County);
        let req = ExcelExport {
            filter: Some(SearchParams {
                query: "李四".into(),
                ..Default::default()
            }),
            template: false,
            password: Some("qingshan-2026".into()),
        };
        let done = export_children_xlsx(&s, &admin, &req, &path, &mut |_| {}).unwrap();
        assert_eq!(done.children, 1);
        assert!(excel_file_name(&admin, &s, false).ends_with("2026-11-28.xlsx"));
    }
}
