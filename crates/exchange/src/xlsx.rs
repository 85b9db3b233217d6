//! The children register as an Excel workbook (农村留守儿童信息登记表 style):
//! one row per child, one column per field of the child card that the paper
//! register has, Chinese headers (English with [`Lang::En`]).
//!
//! **Export** ([`export_children_xlsx`]) writes the children it is given (the
//! caller decides the scope and filter) on one sheet: a bold frozen header
//! row, column widths that fit, enum values as the UI's labels (父母均外出务工,
//! not `both_away`), dates as real Excel dates (yyyy-mm-dd), ID numbers and
//! phones as text (never 5.2E+17). The last column, 系统编号, is the card's
//! record id: a re-import of the file finds each child by it.
//! [`template_xlsx`] is the same sheet with headers only.
//!
//! **Import** ([`import_children_xlsx`]) reads the first sheet. The header
//! row is the first of the top ten rows that names 姓名 (a title row above it
//! is skipped); columns are found by header name, in any order, ignoring
//! spaces (全角 too), `*` marks and the kind of brackets, with synonyms
//! (身份证号码, 公民身份号码, 监护人联系电话…); unknown columns are ignored.
//! Each row becomes a child card, normalised and checked with the card's own
//! rules (`Entity::validate`); a missing gender or birth date is taken from
//! a valid ID number. **All or nothing**: one bad row and nothing is written;
//! every problem of every row is returned as (row as Excel numbers it, column
//! header, code, message). Otherwise every row is written in one store
//! transaction, each with its change-log entry.
//!
//! **Duplicates**: a row is the same child as an existing card when its
//! 系统编号 names that card, else when its ID number is that card's, else
//! (no ID number) when name, birth date and school are the same. Such a row
//! updates the card, and only the fields that differ (an identical row
//! changes nothing). An empty cell keeps what the card holds: a register
//! with fewer columns filled never erases what teachers typed in the app.
//! Two rows of one file for the same child are an error
//! (`import.duplicate_row`). No duplicate card is ever created.
//!
//! **Password protection**: [`protect_xlsx`] encrypts the workbook the way
//! Excel's "Encrypt with Password" does (`office_crypt`), so Excel and WPS
//! open it with the password; import opens such a file with
//! [`XlsxImportOptions::password`] (`import.password_required`,
//! `import.wrong_password`).
//!
//! A school-scoped importer passes `only_school`: rows of another school are
//! refused (`import.school_forbidden`), and rows without a school go to it.

use std::collections::HashMap;

use calamine::{Data, DataType, Reader};
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{json, Value};
use shouhu_core::validate::{check_id_number, normalize_id_number, normalize_text};
use shouhu_core::*;
use shouhu_store::{Store, StoreError};
use uuid::Uuid;

/// How far an export or import has got: rows done of all rows, in a phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct XlsxProgress {
    /// `check` (an import reading and checking its rows, before anything
    /// is written) or `write` (rows written to the store or the workbook).
    pub phase: &'static str,
    pub done: usize,
    pub total: usize,
}

impl XlsxProgress {
    fn check(done: usize, total: usize) -> Self {
        XlsxProgress {
            phase: "check",
            done,
            total,
        }
    }

    fn write(done: usize, total: usize) -> Self {
        XlsxProgress {
            phase: "write",
            done,
            total,
        }
    }
}

/// One problem of one row (or of the header row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// The row number as Excel shows it (1 = the first row).
    pub row: u32,
    /// The column's header as written in the file (or the field's name when
    /// the file has no such column).
    pub column: String,
    pub code: String,
    pub message: String,
}

/// What stops a whole Excel import or export.
#[derive(Debug, thiserror::Error)]
pub enum XlsxError {
    /// Not an .xlsx workbook (or a damaged one), or it has no sheet.
    #[error("the file is not a readable Excel workbook: {0}")]
    Unreadable(String),
    /// Columns without which no row can be read.
    #[error("the header row lacks the columns {}", .missing.join(", "))]
    HeaderMissing { missing: Vec<String> },
    /// Some rows are wrong: nothing was written.
    #[error("{} problems in the rows; nothing was imported", .errors.len())]
    Rows { errors: Vec<RowError> },
    /// The workbook is password-protected and no password was given.
    #[error("the workbook is password-protected: give its password")]
    PasswordRequired,
    /// The password does not open the workbook.
    #[error("the password does not open the workbook")]
    WrongPassword,
    /// The sheet has a header but no child.
    #[error("the sheet holds no child")]
    Empty,
    /// Writing the workbook failed.
    #[error("cannot write the workbook: {0}")]
    Write(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl XlsxError {
    pub fn code(&self) -> &'static str {
        match self {
            XlsxError::Unreadable(_) => "import.xlsx_unreadable",
            XlsxError::HeaderMissing { .. } => "import.header_missing",
            XlsxError::Rows { .. } => "import.rows_invalid",
            XlsxError::Empty => "import.empty",
            XlsxError::PasswordRequired => "import.password_required",
            XlsxError::WrongPassword => "import.wrong_password",
            XlsxError::Write(_) => "export.xlsx_failed",
            XlsxError::Store(e) => e.code(),
        }
    }

    pub fn message(&self, lang: Lang) -> String {
        match (self, lang) {
            (XlsxError::Unreadable(e), Lang::ZhCn) => {
                format!("无法读取这个Excel文件（请用.xlsx格式另存后再导入）：{e}")
            }
            (XlsxError::HeaderMissing { missing }, Lang::ZhCn) => format!(
                "表头缺少“{}”列：请在第一行（或标题下一行）写上这些列名",
                missing.join("”“")
            ),
            (XlsxError::Rows { errors }, Lang::ZhCn) => {
                format!(
                    "表格中有{}处错误，没有导入任何儿童：请改正后重新导入",
                    errors.len()
                )
            }
            (XlsxError::Empty, Lang::ZhCn) => "表格中没有儿童信息".to_string(),
            (XlsxError::PasswordRequired, Lang::ZhCn) => {
                "这个Excel文件设置了打开密码：请输入导出时设置的密码".to_string()
            }
            (XlsxError::WrongPassword, Lang::ZhCn) => {
                "密码不正确，无法打开这个Excel文件，没有导入任何儿童".to_string()
            }
            (XlsxError::Write(e), Lang::ZhCn) => format!("无法生成Excel文件：{e}"),
            (XlsxError::Store(e), l) => e.message(l),
            (other, Lang::En) => other.to_string(),
        }
    }

    pub fn details(&self, lang: Lang) -> Value {
        match self {
            XlsxError::HeaderMissing { missing } => json!({ "missing": missing }),
            XlsxError::Rows { errors } => json!({ "errors": errors }),
            XlsxError::Unreadable(e) | XlsxError::Write(e) => json!({ "error": e }),
            XlsxError::Store(e) => e.details(lang),
            XlsxError::Empty | XlsxError::PasswordRequired | XlsxError::WrongPassword => {
                Value::Null
            }
        }
    }

    pub fn body(&self, lang: Lang) -> ErrorBody {
        ErrorBody {
            code: self.code().to_string(),
            message: self.message(lang),
            details: self.details(lang),
        }
    }
}

// ---------------------------------------------------------------------------
// Columns

/// An enum's values: (serde value, zh label, en label, more spellings).
type Choices = &'static [(
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
)];

/// How a column's cells are written and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    /// Kept as text on export; on import a numeric cell is refused when it
    /// cannot hold every digit (ID numbers).
    Digits,
    Date,
    Bool,
    /// Enum: (serde value, zh label, en label, more accepted spellings).
    Enum(Choices),
    School,
    RecordId,
    /// Import only: one cell for both grade and class (三年级2班).
    GradeClass,
}

/// One column of the register.
#[derive(Debug, Clone, Copy)]
struct Col {
    /// The card field (dotted path, as field errors name it).
    field: &'static str,
    zh: &'static str,
    en: &'static str,
    synonyms: &'static [&'static str],
    kind: Kind,
    width: f64,
}

const GENDER: &[(&str, &str, &str, &[&str])] = &[
    ("male", "男", "Male", &["男性", "m"]),
    ("female", "女", "Female", &["女性", "f"]),
];
const HEALTH: &[(&str, &str, &str, &[&str])] = &[
    ("healthy", "健康", "Healthy", &["良好", "正常"]),
    ("disabled", "残疾", "Disabled", &[]),
    ("ill", "患病", "Ill", &["疾病", "生病"]),
];
const STAGE: &[(&str, &str, &str, &[&str])] = &[
    ("kindergarten", "幼儿园", "Kindergarten", &["学前", "在园"]),
    (
        "not_in_kindergarten",
        "学龄前未入园",
        "Pre-school, not enrolled",
        &["未入园"],
    ),
    ("primary", "小学", "Primary", &[]),
    ("junior", "初中", "Junior middle", &[]),
    ("senior", "高中", "Senior middle", &[]),
    ("vocational", "中职", "Vocational", &["中专", "职高"]),
    ("dropped_out", "辍学", "Dropped out", &[]),
    ("not_in_school", "未入学", "Not in school", &[]),
];
const LEFT_BEHIND: &[(&str, &str, &str, &[&str])] = &[
    (
        "both_away",
        "父母均外出务工",
        "Both parents away",
        &["父母外出", "父母均外出", "双亲外出"],
    ),
    ("father_away", "父亲外出务工", "Father away", &["父亲外出"]),
    ("mother_away", "母亲外出务工", "Mother away", &["母亲外出"]),
    (
        "father_away_mother_unable",
        "父亲外出，母亲无监护能力",
        "Father away, mother unable to care",
        &["父亲外出母亲无监护能力"],
    ),
    (
        "mother_away_father_unable",
        "母亲外出，父亲无监护能力",
        "Mother away, father unable to care",
        &["母亲外出父亲无监护能力"],
    ),
];
const RELATION: &[(&str, &str, &str, &[&str])] = &[
    (
        "grandparent",
        "祖父母 / 外祖父母",
        "Grandparent",
        &[
            "祖父母",
            "外祖父母",
            "祖辈",
            "爷爷",
            "奶奶",
            "外公",
            "外婆",
            "姥姥",
            "姥爷",
            "祖父",
            "祖母",
            "外祖父",
            "外祖母",
        ],
    ),
    (
        "other_relative",
        "其他亲属",
        "Other relative",
        &["亲属", "亲戚"],
    ),
    (
        "entrusted",
        "受委托人",
        "Entrusted person",
        &["委托人", "受委托监护人"],
    ),
    ("none", "无人监护", "No guardian", &["无"]),
];
const GUARDIANSHIP: &[(&str, &str, &str, &[&str])] = &[
    ("unattended", "无人监护", "Unattended", &[]),
    (
        "parent_incapable",
        "父或母无监护能力",
        "Parent unable to care",
        &[],
    ),
    (
        "guardian_insufficient",
        "受委托监护人监护能力不足",
        "Guardian not able enough",
        &["监护能力不足"],
    ),
    ("fair", "监护情况一般", "Fair", &["一般"]),
    ("good", "监护情况较好", "Good", &["较好", "良好"]),
];
const STATUS: &[(&str, &str, &str, &[&str])] = &[
    ("active", "在册", "On the register", &["在读", "在校"]),
    ("parents_returned", "父母返乡", "Parents returned", &[]),
    ("graduated", "毕业", "Graduated", &["已毕业"]),
    ("transferred", "转学", "Transferred", &["已转学", "转出"]),
    ("dropped_out", "辍学", "Dropped out", &["已辍学"]),
    ("aged_out", "已满16周岁", "Aged 16 or over", &["满16周岁"]),
];

macro_rules! col {
    ($field:expr, $zh:expr, $en:expr, [$($syn:expr),*], $kind:expr, $w:expr) => {
        Col { field: $field, zh: $zh, en: $en, synonyms: &[$($syn),*], kind: $kind, width: $w }
    };
}

/// The register's columns, in the order of the paper form.
const COLUMNS: &[Col] = &[
    col!(
        "name",
        "姓名",
        "Name",
        ["儿童姓名", "学生姓名"],
        Kind::Text,
        10.0
    ),
    col!("gender", "性别", "Gender", [], Kind::Enum(GENDER), 6.0),
    col!("ethnicity", "民族", "Ethnicity", [], Kind::Text, 8.0),
    col!(
        "birth_date",
        "出生日期",
        "Birth date",
        ["出生年月日", "出生年月", "生日"],
        Kind::Date,
        12.0
    ),
    col!(
        "id_number",
        "身份证号",
        "ID number",
        [
            "身份证号码",
            "公民身份号码",
            "居民身份证号",
            "居民身份证号码",
            "身份证"
        ],
        Kind::Digits,
        21.0
    ),
    col!(
        "school_id",
        "学校",
        "School",
        ["学校名称", "就读学校", "所在学校"],
        Kind::School,
        18.0
    ),
    col!(
        "schooling_stage",
        "就学阶段",
        "Schooling stage",
        ["学段", "就读阶段"],
        Kind::Enum(STAGE),
        10.0
    ),
    col!("grade", "年级", "Grade", ["就读年级"], Kind::Text, 8.0),
    col!(
        "class_name",
        "班级",
        "Class",
        ["班别", "班"],
        Kind::Text,
        8.0
    ),
    col!(
        "student_number",
        "学籍号",
        "Student number",
        ["全国学籍号", "学籍号码"],
        Kind::Digits,
        20.0
    ),
    col!(
        "boarding",
        "是否住校",
        "Boarding",
        ["住校", "是否寄宿", "寄宿"],
        Kind::Bool,
        9.0
    ),
    col!(
        "registered_address",
        "户籍地址",
        "Registered address",
        ["户籍所在地", "户口所在地"],
        Kind::Text,
        24.0
    ),
    col!(
        "current_address.county",
        "县（区）",
        "County",
        ["县", "县区", "所在县", "区县"],
        Kind::Text,
        10.0
    ),
    col!(
        "current_address.township",
        "乡镇",
        "Township",
        ["乡（镇）", "乡镇（街道）", "所在乡镇", "乡镇街道"],
        Kind::Text,
        10.0
    ),
    col!(
        "current_address.village",
        "村（社区）",
        "Village",
        ["村", "行政村", "村社区", "所在村"],
        Kind::Text,
        10.0
    ),
    col!(
        "current_address.group",
        "组",
        "Group",
        ["村民组", "组（社）", "社"],
        Kind::Text,
        8.0
    ),
    col!(
        "current_address.detail",
        "详细地址",
        "House",
        ["家庭住址", "门牌号", "现住址", "家庭详细住址"],
        Kind::Text,
        20.0
    ),
    col!(
        "health.status",
        "健康状况",
        "Health",
        ["身体状况"],
        Kind::Enum(HEALTH),
        9.0
    ),
    col!(
        "left_behind_type",
        "留守类型",
        "Left-behind type",
        ["留守情况"],
        Kind::Enum(LEFT_BEHIND),
        24.0
    ),
    col!(
        "father.name",
        "父亲姓名",
        "Father's name",
        [],
        Kind::Text,
        10.0
    ),
    col!(
        "father.phone",
        "父亲电话",
        "Father's phone",
        ["父亲联系电话", "父亲手机"],
        Kind::Digits,
        14.0
    ),
    col!(
        "father.work_province",
        "父亲务工省份",
        "Father works in (province)",
        [
            "父亲外出务工地",
            "父亲务工地",
            "父亲外出务工省份",
            "父亲务工地（省）"
        ],
        Kind::Text,
        12.0
    ),
    col!(
        "father.work_city",
        "父亲务工城市",
        "Father works in (city)",
        ["父亲外出务工城市", "父亲务工地（市）"],
        Kind::Text,
        12.0
    ),
    col!(
        "mother.name",
        "母亲姓名",
        "Mother's name",
        [],
        Kind::Text,
        10.0
    ),
    col!(
        "mother.phone",
        "母亲电话",
        "Mother's phone",
        ["母亲联系电话", "母亲手机"],
        Kind::Digits,
        14.0
    ),
    col!(
        "mother.work_province",
        "母亲务工省份",
        "Mother works in (province)",
        [
            "母亲外出务工地",
            "母亲务工地",
            "母亲外出务工省份",
            "母亲务工地（省）"
        ],
        Kind::Text,
        12.0
    ),
    col!(
        "mother.work_city",
        "母亲务工城市",
        "Mother works in (city)",
        ["母亲外出务工城市", "母亲务工地（市）"],
        Kind::Text,
        12.0
    ),
    col!(
        "guardian.name",
        "监护人姓名",
        "Guardian",
        ["监护人", "委托监护人", "委托监护人姓名"],
        Kind::Text,
        10.0
    ),
    col!(
        "guardian.relation",
        "监护人与儿童关系",
        "Guardian's relation",
        ["与儿童关系", "监护人关系", "与监护人关系", "监护关系"],
        Kind::Enum(RELATION),
        16.0
    ),
    col!(
        "guardian.phone",
        "监护人电话",
        "Guardian's phone",
        ["监护人联系电话", "监护人手机"],
        Kind::Digits,
        14.0
    ),
    col!(
        "guardianship_type",
        "监护类型",
        "Guardianship",
        ["监护情况"],
        Kind::Enum(GUARDIANSHIP),
        22.0
    ),
    col!(
        "poverty_registered",
        "建档立卡贫困户",
        "Registered poor household",
        ["是否建档立卡", "建档立卡", "是否建档立卡贫困户"],
        Kind::Bool,
        14.0
    ),
    col!(
        "pairing_teacher",
        "结对帮扶教师",
        "Pairing teacher",
        ["帮扶教师", "结对教师"],
        Kind::Text,
        12.0
    ),
    col!(
        "pairing_teacher_phone",
        "结对教师电话",
        "Pairing teacher's phone",
        ["帮扶教师电话"],
        Kind::Digits,
        14.0
    ),
    col!(
        "status",
        "儿童状态",
        "Status",
        ["状态"],
        Kind::Enum(STATUS),
        10.0
    ),
    col!(
        "status_date",
        "状态变更日期",
        "Status date",
        [],
        Kind::Date,
        12.0
    ),
    col!(
        "status_reason",
        "状态变更原因",
        "Reason for the status",
        ["变更原因"],
        Kind::Text,
        16.0
    ),
    col!("notes", "备注", "Notes", [], Kind::Text, 20.0),
    col!(
        "record_id",
        "系统编号",
        "Record ID",
        ["档案编号"],
        Kind::RecordId,
        38.0
    ),
    col!(
        "grade_class",
        "年级班级",
        "Grade and class",
        ["年级/班级", "年级（班级）", "年级、班级", "班级年级"],
        Kind::GradeClass,
        10.0
    ),
];

impl Col {
    fn header(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::ZhCn => self.zh,
            Lang::En => self.en,
        }
    }
}

/// A header as compared: no spaces of any width, no `*` marks, ASCII
/// brackets and slashes, lower case.
fn header_key(s: &str) -> String {
    normalize_text(s)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '*' && *c != '\u{3000}')
        .map(|c| match c {
            '（' => '(',
            '）' => ')',
            '／' => '/',
            '＊' => '*',
            c => c.to_ascii_lowercase(),
        })
        .filter(|c| *c != '*')
        .collect()
}

fn find_column(header: &str) -> Option<usize> {
    let k = header_key(header);
    if k.is_empty() {
        return None;
    }
    COLUMNS.iter().position(|c| {
        header_key(c.zh) == k
            || header_key(c.en) == k
            || header_key(c.field) == k
            || c.synonyms.iter().any(|s| header_key(s) == k)
    })
}

fn enum_label(table: &[(&str, &str, &str, &[&str])], value: &str, lang: Lang) -> String {
    table
        .iter()
        .find(|(v, ..)| *v == value)
        .map(|(_, zh, en, _)| match lang {
            Lang::ZhCn => (*zh).to_string(),
            Lang::En => (*en).to_string(),
        })
        .unwrap_or_else(|| value.to_string())
}

fn enum_value(table: &[(&'static str, &str, &str, &[&str])], text: &str) -> Option<&'static str> {
    let k = header_key(text);
    table
        .iter()
        .find(|(v, zh, en, more)| {
            header_key(v) == k
                || header_key(zh) == k
                || header_key(en) == k
                || more.iter().any(|m| header_key(m) == k)
        })
        .map(|(v, ..)| *v)
}

fn serde_name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn from_name<T: serde::de::DeserializeOwned>(v: &str) -> Option<T> {
    serde_json::from_value(Value::String(v.to_string())).ok()
}

// ---------------------------------------------------------------------------
// Export

/// A cell as exported.
enum Out {
    Text(String),
    Date(NaiveDate),
    Empty,
}

fn text(s: &str) -> Out {
    if s.is_empty() {
        Out::Empty
    } else {
        Out::Text(s.to_string())
    }
}

fn opt_text(s: &Option<String>) -> Out {
    s.as_deref().map(text).unwrap_or(Out::Empty)
}

fn cell_of(
    c: &Col,
    id: Uuid,
    card: &ChildCard,
    schools: &HashMap<Uuid, String>,
    lang: Lang,
) -> Out {
    let e = |v: String| match c.kind {
        Kind::Enum(t) => Out::Text(enum_label(t, &v, lang)),
        _ => Out::Text(v),
    };
    let yes_no = |b: bool| {
        Out::Text(
            match (b, lang) {
                (true, Lang::ZhCn) => "是",
                (false, Lang::ZhCn) => "否",
                (true, Lang::En) => "yes",
                (false, Lang::En) => "no",
            }
            .to_string(),
        )
    };
    let date = |d: Option<NaiveDate>| d.map(Out::Date).unwrap_or(Out::Empty);
    match c.field {
        "name" => text(&card.name),
        "gender" => card.gender.map(|g| e(serde_name(&g))).unwrap_or(Out::Empty),
        "ethnicity" => text(&card.ethnicity),
        "birth_date" => date(card.birth_date),
        "id_number" => opt_text(&card.id_number),
        "school_id" => card
            .school_id
            .map(|s| Out::Text(schools.get(&s).cloned().unwrap_or_else(|| s.to_string())))
            .unwrap_or(Out::Empty),
        "schooling_stage" => e(serde_name(&card.schooling_stage)),
        "grade" => text(&card.grade),
        "class_name" => text(&card.class_name),
        "student_number" => text(&card.student_number),
        "boarding" => yes_no(card.boarding),
        "registered_address" => text(&card.registered_address),
        "current_address.county" => text(&card.current_address.county),
        "current_address.township" => text(&card.current_address.township),
        "current_address.village" => text(&card.current_address.village),
        "current_address.group" => text(&card.current_address.group),
        "current_address.detail" => text(&card.current_address.detail),
        "health.status" => e(serde_name(&card.health.status)),
        "left_behind_type" => e(serde_name(&card.left_behind_type)),
        "father.name" => text(&card.father.name),
        "father.phone" => opt_text(&card.father.phone),
        "father.work_province" => text(&card.father.work_province),
        "father.work_city" => text(&card.father.work_city),
        "mother.name" => text(&card.mother.name),
        "mother.phone" => opt_text(&card.mother.phone),
        "mother.work_province" => text(&card.mother.work_province),
        "mother.work_city" => text(&card.mother.work_city),
        "guardian.name" => text(&card.guardian.name),
        "guardian.relation" => e(serde_name(&card.guardian.relation)),
        "guardian.phone" => opt_text(&card.guardian.phone),
        "guardianship_type" => e(serde_name(&card.guardianship_type)),
        "poverty_registered" => yes_no(card.poverty_registered),
        "pairing_teacher" => text(&card.pairing_teacher),
        "pairing_teacher_phone" => opt_text(&card.pairing_teacher_phone),
        "status" => e(serde_name(&card.status)),
        "status_date" => date(card.status_date),
        "status_reason" => opt_text(&card.status_reason),
        "notes" => text(&card.notes),
        "record_id" => Out::Text(id.to_string()),
        _ => Out::Empty,
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct XlsxExportReport {
    pub children: usize,
    pub bytes: usize,
}

fn sheet_name(lang: Lang) -> &'static str {
    match lang {
        Lang::ZhCn => "留守儿童登记表",
        Lang::En => "Children",
    }
}

fn xerr(e: rust_xlsxwriter::XlsxError) -> XlsxError {
    XlsxError::Write(e.to_string())
}

/// The register of `children` (in the order given) as .xlsx bytes. School
/// names come from the store. Counseling flags, notes of counselors and
/// fields the paper register has no column for are not exported.
pub fn export_children_xlsx(
    store: &Store,
    children: &[Stored<ChildCard>],
    lang: Lang,
    progress: &mut dyn FnMut(XlsxProgress),
) -> Result<(Vec<u8>, XlsxExportReport), XlsxError> {
    let schools: HashMap<Uuid, String> = store
        .list_all::<School>()?
        .into_iter()
        .map(|s| (s.meta.id, s.body.name))
        .collect();
    let total = children.len();
    progress(XlsxProgress::write(0, total));
    let mut wb = rust_xlsxwriter::Workbook::new();
    let date_fmt = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
    let text_fmt = rust_xlsxwriter::Format::new().set_num_format("@");
    {
        let ws = start_sheet(&mut wb, lang, true)?;
        for (i, child) in children.iter().enumerate() {
            let row = u32::try_from(i + 1).map_err(|e| XlsxError::Write(e.to_string()))?;
            for (j, c) in COLUMNS.iter().enumerate() {
                let col = j as u16;
                match cell_of(c, child.meta.id, &child.body, &schools, lang) {
                    Out::Empty => {}
                    Out::Date(d) => {
                        ws.write_datetime_with_format(row, col, d, &date_fmt)
                            .map_err(xerr)?;
                    }
                    Out::Text(s) => {
                        if c.kind == Kind::Digits {
                            ws.write_string_with_format(row, col, s, &text_fmt)
                                .map_err(xerr)?;
                        } else {
                            ws.write_string(row, col, s).map_err(xerr)?;
                        }
                    }
                }
            }
            if (i + 1) % 200 == 0 {
                progress(XlsxProgress::write(i + 1, total));
            }
        }
    }
    let bytes = wb.save_to_buffer().map_err(xerr)?;
    progress(XlsxProgress::write(total, total));
    let report = XlsxExportReport {
        children: total,
        bytes: bytes.len(),
    };
    Ok((bytes, report))
}

/// Protects an exported workbook with `password` as Excel's "Encrypt with
/// Password" does (ECMA-376 agile encryption, AES-256): Excel and WPS ask for
/// the password when they open it; [`import_children_xlsx`] takes it in
/// [`XlsxImportOptions::password`].
pub fn protect_xlsx(bytes: &[u8], password: &str) -> Result<Vec<u8>, XlsxError> {
    crate::office_crypt::encrypt_xlsx(bytes, password).map_err(|e| XlsxError::Write(e.to_string()))
}

/// The empty register (headers only, no 系统编号 column), for staff to fill in.
pub fn template_xlsx(lang: Lang) -> Result<Vec<u8>, XlsxError> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    start_sheet(&mut wb, lang, false)?;
    wb.save_to_buffer().map_err(xerr)
}

fn start_sheet(
    wb: &mut rust_xlsxwriter::Workbook,
    lang: Lang,
    with_record_id: bool,
) -> Result<&mut rust_xlsxwriter::Worksheet, XlsxError> {
    let head = rust_xlsxwriter::Format::new()
        .set_bold()
        .set_background_color(rust_xlsxwriter::Color::RGB(0xDDEBF7))
        .set_border(rust_xlsxwriter::FormatBorder::Thin);
    let date_fmt = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
    let text_fmt = rust_xlsxwriter::Format::new().set_num_format("@");
    let ws = wb.add_worksheet();
    ws.set_name(sheet_name(lang)).map_err(xerr)?;
    for (j, c) in COLUMNS.iter().enumerate() {
        if (c.kind == Kind::RecordId && !with_record_id) || c.kind == Kind::GradeClass {
            continue;
        }
        let col = j as u16;
        ws.write_string_with_format(0, col, c.header(lang), &head)
            .map_err(xerr)?;
        let width = match lang {
            Lang::ZhCn => c.width,
            // English headers are longer than their Chinese twins.
            Lang::En => c.width.max(c.en.len() as f64 * 0.9 + 2.0),
        };
        ws.set_column_width(col, width).map_err(xerr)?;
        // Typed-in dates and digits keep their kind in a filled template.
        match c.kind {
            Kind::Date => {
                ws.set_column_format(col, &date_fmt).map_err(xerr)?;
            }
            Kind::Digits => {
                ws.set_column_format(col, &text_fmt).map_err(xerr)?;
            }
            _ => {}
        }
    }
    ws.set_freeze_panes(1, 0).map_err(xerr)?;
    Ok(ws)
}

// ---------------------------------------------------------------------------
// Import

/// Options of [`import_children_xlsx`].
#[derive(Debug, Clone, Default)]
pub struct XlsxImportOptions {
    /// Language of the messages.
    pub lang: Lang,
    /// A school-scoped importer's school: rows of another school are refused,
    /// rows without a school go to it.
    pub only_school: Option<Uuid>,
    /// The password of a workbook protected with Excel's "Encrypt with
    /// Password" (see [`protect_xlsx`]).
    pub password: Option<String>,
}

/// What an import did (only returned when every row was good).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct XlsxImportReport {
    /// Rows with a child on them.
    pub rows: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Headers of the file that no field matches (ignored).
    pub ignored_columns: Vec<String>,
}

/// A cell as read, before its column's kind is applied.
#[derive(Debug, Clone)]
enum In {
    Text(String),
    Number(f64),
    Date(NaiveDate),
}

fn read_cell(d: &Data) -> Option<In> {
    match d {
        Data::Empty => None,
        Data::String(s) => {
            let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{3000}');
            (!t.is_empty()).then(|| In::Text(t.to_string()))
        }
        Data::Int(i) => Some(In::Number(*i as f64)),
        Data::Float(f) => Some(In::Number(*f)),
        Data::Bool(b) => Some(In::Text(if *b { "是" } else { "否" }.to_string())),
        Data::DateTime(_) | Data::DateTimeIso(_) => d.as_date().map(In::Date),
        Data::DurationIso(s) => Some(In::Text(s.clone())),
        Data::Error(e) => Some(In::Text(format!("#{e:?}"))),
    }
}

/// A date as people type it: 2015-03-07, 2015/3/7, 2015.3.7, 2015年3月7日,
/// 20150307, or an Excel serial number.
fn parse_date(v: &In) -> Option<NaiveDate> {
    match v {
        In::Date(d) => Some(*d),
        In::Number(n) => {
            let n = *n;
            if n.fract() != 0.0 {
                return None;
            }
            if (19_000_101.0..=21_001_231.0).contains(&n) {
                return NaiveDate::parse_from_str(&format!("{n:.0}"), "%Y%m%d").ok();
            }
            // An Excel serial date in a cell without a date format.
            if (1.0..=80_000.0).contains(&n) {
                let base = NaiveDate::from_ymd_opt(1899, 12, 30)?;
                return base.checked_add_signed(chrono::Duration::days(n as i64));
            }
            None
        }
        In::Text(s) => {
            let s = normalize_text(s);
            let s = s.trim().trim_end_matches('日');
            let s: String = s
                .chars()
                .map(|c| match c {
                    '年' | '月' | '/' | '.' => '-',
                    c => c,
                })
                .collect();
            let s = s.trim();
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .or_else(|| NaiveDate::parse_from_str(s, "%Y%m%d").ok())
                .or_else(|| {
                    // 2015-03-07 00:00:00 (a date-time typed as text)
                    s.split_whitespace()
                        .next()
                        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
                })
                .filter(|d| d.year_ce().1 >= 1900)
        }
    }
}

use chrono::Datelike;

fn parse_bool(s: &str) -> Option<bool> {
    match header_key(s).as_str() {
        "是" | "y" | "yes" | "true" | "1" | "√" | "✓" | "住校" | "寄宿" => Some(true),
        "否" | "n" | "no" | "false" | "0" | "×" | "不住校" | "走读" | "无" => Some(false),
        _ => None,
    }
}

fn in_text(v: &In) -> String {
    match v {
        In::Text(s) => s.clone(),
        In::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{n:.0}"),
        In::Number(n) => n.to_string(),
        In::Date(d) => d.to_string(),
    }
}

/// 三年级2班 → (三年级, 2班); 初一(2)班 → (初一, (2)班); anything else is
/// the grade.
fn split_grade_class(s: &str) -> (String, String) {
    let at = s
        .find("年级")
        .map(|i| i + "年级".len())
        .or_else(|| s.find(['(', '（']));
    match at {
        Some(i) => (s[..i].trim().to_string(), s[i..].trim().to_string()),
        None => (s.trim().to_string(), String::new()),
    }
}

/// A problem found while reading a row, before the card is checked.
struct CellProblem {
    col: usize,
    code: &'static str,
    zh: String,
    en: String,
}

/// One row's values, by column index into [`COLUMNS`].
type RowValues = Vec<(usize, In)>;

fn apply(
    card: &mut ChildCard,
    record_id: &mut Option<Uuid>,
    c: &Col,
    col: usize,
    v: &In,
    schools: &HashMap<String, Uuid>,
) -> Result<(), CellProblem> {
    let problem = |code: &'static str, zh: String, en: String| CellProblem { col, code, zh, en };
    let raw = in_text(v);
    let unknown = || {
        problem(
            "field.unknown_value",
            format!("{}的值“{raw}”不在可选范围内", c.zh),
            format!("{}: unknown value “{raw}”", c.en),
        )
    };
    let s = match c.kind {
        Kind::Digits => {
            if let In::Number(n) = v {
                // 18 digits do not fit in a double: Excel rounded them.
                if n.fract() != 0.0 || n.abs() >= 1e15 {
                    return Err(problem(
                        "import.number_as_text_required",
                        format!(
                            "{}被Excel存成了数字（{raw}），末几位已经丢失：请把这一列设为“文本”格式后重新填写",
                            c.zh
                        ),
                        format!(
                            "{} was stored by Excel as a number ({raw}) and lost its last digits: format the column as Text and type it again",
                            c.en
                        ),
                    ));
                }
            }
            raw.clone()
        }
        _ => raw.clone(),
    };
    let enum_of = |t: Choices| enum_value(t, &s).ok_or_else(unknown);
    match c.kind {
        Kind::Date => {
            let d = parse_date(v).ok_or_else(|| {
                problem(
                    "import.date_invalid",
                    format!("{}“{raw}”不是有效的日期，请写成2015-03-07这样的格式", c.zh),
                    format!(
                        "{} “{raw}” is not a valid date: write it as 2015-03-07",
                        c.en
                    ),
                )
            })?;
            match c.field {
                "birth_date" => card.birth_date = Some(d),
                "status_date" => card.status_date = Some(d),
                _ => {}
            }
        }
        Kind::Bool => {
            let b = parse_bool(&s).ok_or_else(|| {
                problem(
                    "field.unknown_value",
                    format!("{}请填写“是”或“否”，而不是“{raw}”", c.zh),
                    format!("{}: write yes or no, not “{raw}”", c.en),
                )
            })?;
            match c.field {
                "boarding" => card.boarding = b,
                "poverty_registered" => card.poverty_registered = b,
                _ => {}
            }
        }
        Kind::School => {
            let id = schools.get(&header_key(&s)).copied().or_else(|| {
                Uuid::parse_str(&s)
                    .ok()
                    .filter(|u| schools.values().any(|x| x == u))
            });
            card.school_id = Some(id.ok_or_else(|| {
                problem(
                    "import.school_unknown",
                    format!("本机没有名为“{raw}”的学校：请核对学校名称（或先同步学校名单）"),
                    format!(
                        "no school named “{raw}” on this laptop: check the name (or sync first)"
                    ),
                )
            })?);
        }
        Kind::GradeClass => {
            let (grade, class) = split_grade_class(&s);
            card.grade = grade;
            if !class.is_empty() {
                card.class_name = class;
            }
        }
        Kind::RecordId => {
            *record_id = Some(Uuid::parse_str(&s).map_err(|_| {
                problem(
                    "import.bad_id",
                    format!("系统编号“{raw}”不正确：请不要修改这一列（新增儿童留空即可）"),
                    format!("record id “{raw}” is not valid: leave this column as exported (empty for new children)"),
                )
            })?);
        }
        Kind::Enum(t) => {
            let v = enum_of(t)?;
            let bad = || unknown();
            match c.field {
                "gender" => card.gender = Some(from_name(v).ok_or_else(bad)?),
                "schooling_stage" => card.schooling_stage = from_name(v).ok_or_else(bad)?,
                "health.status" => card.health.status = from_name(v).ok_or_else(bad)?,
                "left_behind_type" => card.left_behind_type = from_name(v).ok_or_else(bad)?,
                "guardian.relation" => card.guardian.relation = from_name(v).ok_or_else(bad)?,
                "guardianship_type" => card.guardianship_type = from_name(v).ok_or_else(bad)?,
                "status" => card.status = from_name(v).ok_or_else(bad)?,
                _ => {}
            }
        }
        Kind::Text | Kind::Digits => match c.field {
            "name" => card.name = s,
            "ethnicity" => card.ethnicity = s,
            "id_number" => card.id_number = Some(s),
            "grade" => card.grade = s,
            "class_name" => card.class_name = s,
            "student_number" => card.student_number = s,
            "registered_address" => card.registered_address = s,
            "current_address.county" => card.current_address.county = s,
            "current_address.township" => card.current_address.township = s,
            "current_address.village" => card.current_address.village = s,
            "current_address.group" => card.current_address.group = s,
            "current_address.detail" => card.current_address.detail = s,
            "father.name" => card.father.name = s,
            "father.phone" => card.father.phone = Some(s),
            "father.work_province" => card.father.work_province = s,
            "father.work_city" => card.father.work_city = s,
            "mother.name" => card.mother.name = s,
            "mother.phone" => card.mother.phone = Some(s),
            "mother.work_province" => card.mother.work_province = s,
            "mother.work_city" => card.mother.work_city = s,
            "guardian.name" => card.guardian.name = s,
            "guardian.phone" => card.guardian.phone = Some(s),
            "pairing_teacher" => card.pairing_teacher = s,
            "pairing_teacher_phone" => card.pairing_teacher_phone = Some(s),
            "status_reason" => card.status_reason = Some(s),
            "notes" => card.notes = s,
            _ => {}
        },
    }
    Ok(())
}

/// The rows found in a sheet: the header row's Excel number, each matched
/// column's header (by index into [`COLUMNS`]) and the child rows.
struct Sheet {
    headers: HashMap<usize, String>,
    ignored: Vec<String>,
    rows: Vec<(u32, RowValues)>,
}

fn read_sheet(bytes: &[u8]) -> Result<Sheet, XlsxError> {
    let cursor = std::io::Cursor::new(bytes);
    let mut wb = calamine::Xlsx::new(cursor)
        .map_err(|e: calamine::XlsxError| XlsxError::Unreadable(e.to_string()))?;
    let range = wb
        .worksheet_range_at(0)
        .ok_or_else(|| XlsxError::Unreadable("no sheet".into()))?
        .map_err(|e| XlsxError::Unreadable(e.to_string()))?;
    let (row0, _) = range.start().unwrap_or((0, 0));
    let all: Vec<&[Data]> = range.rows().collect();
    // The header row: the first of the top ten rows that names 姓名.
    let name_col = COLUMNS.iter().position(|c| c.field == "name");
    let header_at = all.iter().take(10).position(|r| {
        r.iter()
            .any(|d| d.get_string().and_then(find_column) == name_col && name_col.is_some())
    });
    let Some(h) = header_at else {
        return Err(XlsxError::HeaderMissing {
            missing: vec!["姓名".into()],
        });
    };
    let mut headers = HashMap::new();
    let mut by_pos: Vec<Option<usize>> = Vec::new();
    let mut ignored = Vec::new();
    for d in all[h].iter() {
        let text = read_cell(d).map(|v| in_text(&v)).unwrap_or_default();
        let found = find_column(&text).filter(|i| !headers.contains_key(i));
        match found {
            Some(i) => {
                headers.insert(i, text.trim().to_string());
            }
            None if !text.trim().is_empty() => ignored.push(text.trim().to_string()),
            None => {}
        }
        by_pos.push(found);
    }
    let has = |f: &str| {
        COLUMNS
            .iter()
            .position(|c| c.field == f)
            .is_some_and(|i| headers.contains_key(&i))
    };
    let mut missing = Vec::new();
    if !has("id_number") {
        for (f, zh) in [("gender", "性别"), ("birth_date", "出生日期")] {
            if !has(f) {
                missing.push(zh.to_string());
            }
        }
        if !missing.is_empty() {
            missing.push("（或身份证号）".to_string());
        }
    }
    if !missing.is_empty() {
        return Err(XlsxError::HeaderMissing { missing });
    }
    let mut rows = Vec::new();
    for (k, r) in all.iter().enumerate().skip(h + 1) {
        let mut values = Vec::new();
        for (j, d) in r.iter().enumerate() {
            if let (Some(Some(i)), Some(v)) = (by_pos.get(j), read_cell(d)) {
                values.push((*i, v));
            }
        }
        if values.is_empty() {
            continue;
        }
        let excel_row = row0 + k as u32 + 1;
        rows.push((excel_row, values));
    }
    Ok(Sheet {
        headers,
        ignored,
        rows,
    })
}

/// Import the children register in `bytes` (an .xlsx file's content). See
/// the module documentation for how rows find their child and what is
/// written. Returns every problem of every row, and writes nothing, when any
/// row is wrong.
pub fn import_children_xlsx(
    store: &mut Store,
    bytes: &[u8],
    opts: &XlsxImportOptions,
    progress: &mut dyn FnMut(XlsxProgress),
) -> Result<XlsxImportReport, XlsxError> {
    let lang = opts.lang;
    let opened;
    let bytes = if crate::office_crypt::is_compound_file(bytes) {
        let pw = opts
            .password
            .as_deref()
            .ok_or(XlsxError::PasswordRequired)?;
        opened = crate::office_crypt::decrypt_xlsx(bytes, pw).map_err(|e| match e {
            crate::office_crypt::CryptError::WrongPassword => XlsxError::WrongPassword,
            crate::office_crypt::CryptError::Damaged(d) => XlsxError::Unreadable(d),
        })?;
        &opened[..]
    } else {
        bytes
    };
    let sheet = read_sheet(bytes)?;
    let total = sheet.rows.len();
    if total == 0 {
        return Err(XlsxError::Empty);
    }
    let today = store.today();
    let schools_list = store.list_all::<School>()?;
    let schools: HashMap<String, Uuid> = schools_list
        .iter()
        .map(|s| (header_key(&s.body.name), s.meta.id))
        .collect();
    let existing = store.list_all::<ChildCard>()?;
    let by_id: HashMap<Uuid, usize> = existing
        .iter()
        .enumerate()
        .map(|(i, c)| (c.meta.id, i))
        .collect();
    let mut by_number: HashMap<String, usize> = HashMap::new();
    let mut by_name: HashMap<(String, Option<NaiveDate>, Option<Uuid>), usize> = HashMap::new();
    for (i, c) in existing.iter().enumerate() {
        match &c.body.id_number {
            Some(n) if !n.is_empty() => {
                by_number.insert(normalize_id_number(n), i);
            }
            _ => {
                by_name.insert(
                    (c.body.name.clone(), c.body.birth_date, c.body.school_id),
                    i,
                );
            }
        }
    }
    let header_of = |field: &str| -> String {
        COLUMNS
            .iter()
            .position(|c| c.field == field || field.starts_with(&format!("{}.", c.field)))
            .and_then(|i| sheet.headers.get(&i).cloned())
            .unwrap_or_else(|| shouhu_core::labels::field_label(field, lang))
    };
    let mut errors: Vec<RowError> = Vec::new();
    // What to write: (existing card, id for a new card, card), in row order.
    let mut plan: Vec<(Option<Uuid>, Option<Uuid>, ChildCard)> = Vec::new();
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut seen_ids: HashMap<Uuid, u32> = HashMap::new();
    progress(XlsxProgress::check(0, total));
    for (n, (row, values)) in sheet.rows.iter().enumerate() {
        if n > 0 && n % 200 == 0 {
            progress(XlsxProgress::check(n, total));
        }
        let row = *row;
        let mut problems: Vec<RowError> = Vec::new();
        let push = |problems: &mut Vec<RowError>, p: CellProblem| {
            problems.push(RowError {
                row,
                column: sheet.headers.get(&p.col).cloned().unwrap_or_default(),
                code: p.code.to_string(),
                message: match lang {
                    Lang::ZhCn => p.zh,
                    Lang::En => p.en,
                },
            })
        };
        // First pass: the keys that find the child.
        let mut record_id = None;
        let mut probe = ChildCard::default();
        for (i, v) in values {
            let c = &COLUMNS[*i];
            if matches!(c.field, "record_id" | "id_number") {
                if let Err(p) = apply(&mut probe, &mut record_id, c, *i, v, &schools) {
                    push(&mut problems, p);
                }
            }
        }
        let number = probe
            .id_number
            .as_deref()
            .map(normalize_id_number)
            .filter(|s| !s.is_empty());
        let mut found = record_id
            .and_then(|id| by_id.get(&id).copied())
            .or_else(|| number.as_ref().and_then(|n| by_number.get(n).copied()));
        // Start from the existing card: empty cells keep its values.
        let mut card = found.map(|i| existing[i].body.clone()).unwrap_or_default();
        for (i, v) in values {
            let c = &COLUMNS[*i];
            if c.field == "record_id" {
                continue;
            }
            if let Err(p) = apply(&mut card, &mut record_id, c, *i, v, &schools) {
                push(&mut problems, p);
            }
        }
        if card.school_id.is_none() {
            card.school_id = opts.only_school;
        }
        if let (Some(own), Some(s)) = (opts.only_school, card.school_id) {
            if own != s {
                problems.push(RowError {
                    row,
                    column: header_of("school_id"),
                    code: "import.school_forbidden".into(),
                    message: match lang {
                        Lang::ZhCn => "只能导入本校的儿童：这一行是其他学校的".into(),
                        Lang::En => "only children of your own school may be imported".into(),
                    },
                });
            }
        }
        card.normalize();
        // A valid ID number tells a missing gender and birth date.
        if let Some(id) = card.id_number.as_deref().filter(|s| !s.is_empty()) {
            if let Ok(info) = check_id_number("id_number", id) {
                card.birth_date.get_or_insert(info.birth_date);
                card.gender.get_or_insert(info.gender);
            }
        } else {
            card.id_number = None;
        }
        if found.is_none() && number.is_none() {
            found = by_name
                .get(&(card.name.clone(), card.birth_date, card.school_id))
                .copied();
            if let Some(i) = found {
                // Re-apply this row over the card it names.
                let mut again = existing[i].body.clone();
                for (k, v) in values {
                    let c = &COLUMNS[*k];
                    if c.field != "record_id" {
                        let _ = apply(&mut again, &mut record_id, c, *k, v, &schools);
                    }
                }
                if again.school_id.is_none() {
                    again.school_id = opts.only_school;
                }
                again.normalize();
                card = again;
            }
        }
        if let Err(v) = card.validate(today) {
            for e in v.errors {
                problems.push(RowError {
                    row,
                    column: header_of(&e.field),
                    code: e.code().to_string(),
                    message: e.message(lang),
                });
            }
        }
        // One child, one row.
        let target = found.map(|i| existing[i].meta.id);
        let dup = match (target, card.id_number.as_ref()) {
            (Some(id), _) => seen_ids.insert(id, row),
            (None, Some(num)) => seen.insert(num.clone(), row),
            (None, None) => seen.insert(
                format!("{}|{:?}|{:?}", card.name, card.birth_date, card.school_id),
                row,
            ),
        };
        if let Some(first) = dup {
            problems.push(RowError {
                row,
                column: header_of(if card.id_number.is_some() {
                    "id_number"
                } else {
                    "name"
                }),
                code: "import.duplicate_row".into(),
                message: match lang {
                    Lang::ZhCn => format!("与第{first}行是同一名儿童：一名儿童只能占一行"),
                    Lang::En => format!("the same child as row {first}: one row per child"),
                },
            });
        }
        if problems.is_empty() {
            // A new child keeps the record id its row carries (an export of
            // another store): the same child stays one record across stores.
            let keep = match (target, record_id) {
                (None, Some(id)) if store.get::<ChildCard>(id)?.is_none() => Some(id),
                _ => None,
            };
            plan.push((target, keep, card));
        } else {
            errors.extend(problems);
        }
    }
    progress(XlsxProgress::write(0, total));
    if !errors.is_empty() {
        return Err(XlsxError::Rows { errors });
    }
    let mut report = XlsxImportReport {
        rows: total,
        ignored_columns: sheet.ignored,
        ..Default::default()
    };
    let before: HashMap<Uuid, &ChildCard> = existing.iter().map(|c| (c.meta.id, &c.body)).collect();
    let (created, updated, unchanged) = store.write(|w| {
        let (mut c, mut u, mut same) = (0, 0, 0);
        for (k, (target, keep, card)) in plan.into_iter().enumerate() {
            match (target, keep) {
                (None, Some(id)) => {
                    w.create_with_id(id, card)?;
                    c += 1;
                }
                (None, None) => {
                    w.create(card)?;
                    c += 1;
                }
                (Some(id), _) if before.get(&id).is_some_and(|b| **b == card) => same += 1,
                (Some(id), _) => {
                    w.update(id, card)?;
                    u += 1;
                }
            }
            if (k + 1) % 50 == 0 {
                progress(XlsxProgress::write(k + 1, total));
            }
        }
        Ok((c, u, same))
    })?;
    progress(XlsxProgress::write(total, total));
    report.created = created;
    report.updated = updated;
    report.unchanged = unchanged;
    Ok(report)
}

/// The register's headers in `lang` (the template's columns).
pub fn register_headers(lang: Lang) -> Vec<&'static str> {
    COLUMNS
        .iter()
        .filter(|c| c.kind != Kind::RecordId && c.kind != Kind::GradeClass)
        .map(|c| c.header(lang))
        .collect()
}

/// The live children a children search finds (its query and filters; its
/// offset and limit are ignored), in the search's order: what "export the
/// current list" exports.
pub fn children_matching(
    store: &Store,
    params: &shouhu_store::SearchParams,
) -> Result<Vec<Stored<ChildCard>>, XlsxError> {
    let mut ids = Vec::new();
    let mut p = params.clone();
    p.offset = 0;
    p.limit = 1000;
    loop {
        let page = store.search_children(&p)?;
        let n = page.items.len();
        ids.extend(page.items.into_iter().map(|c| c.id));
        p.offset += n;
        if n == 0 || p.offset >= page.total {
            break;
        }
    }
    let mut all: HashMap<Uuid, Stored<ChildCard>> = store
        .list_all::<ChildCard>()?
        .into_iter()
        .map(|c| (c.meta.id, c))
        .collect();
    Ok(ids.into_iter().filter_map(|id| all.remove(&id)).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The register's labels are the UI's (`enum.<enum>.<value>` in the
    /// zh-CN and en catalogs), so a sheet reads like the screens.
    #[test]
    fn enum_labels_match_the_ui_catalogs() {
        let catalogs = [
            (
                include_str!("../../../ui/src/lib/i18n/zh-CN.ts"),
                Lang::ZhCn,
            ),
            (include_str!("../../../ui/src/lib/i18n/en.ts"), Lang::En),
        ];
        let tables: [(&str, Choices); 7] = [
            ("gender", GENDER),
            ("health_status", HEALTH),
            ("schooling_stage", STAGE),
            ("left_behind_type", LEFT_BEHIND),
            ("guardian_relation", RELATION),
            ("guardianship_type", GUARDIANSHIP),
            ("child_status", STATUS),
        ];
        for (text, lang) in catalogs {
            for (name, table) in tables {
                for (value, ..) in table.iter() {
                    let key = format!("'enum.{name}.{value}': '");
                    let at = text.find(&key).unwrap_or_else(|| panic!("{key} missing"));
                    let rest = &text[at + key.len()..];
                    let ui = &rest[..rest.find("',").unwrap()];
                    assert_eq!(enum_label(table, value, lang), ui, "{name}.{value}");
                }
            }
        }
    }

    #[test]
    fn one_cell_for_grade_and_class_is_split() {
        let split = |s: &str| split_grade_class(s);
        assert_eq!(split("三年级2班"), ("三年级".into(), "2班".into()));
        assert_eq!(split("初一(2)班"), ("初一".into(), "(2)班".into()));
        assert_eq!(split("学前班"), ("学前班".into(), String::new()));
    }

    #[test]
    fn headers_match_with_spaces_marks_brackets_and_synonyms() {
        let field = |h: &str| find_column(h).map(|i| COLUMNS[i].field);
        assert_eq!(field(" 姓　名 "), Some("name"));
        assert_eq!(field("*身份证号码"), Some("id_number"));
        assert_eq!(field("公民身份号码"), Some("id_number"));
        assert_eq!(field("县(区)"), Some("current_address.county"));
        assert_eq!(field("ID Number"), Some("id_number"));
        assert_eq!(field("监护人联系电话"), Some("guardian.phone"));
        assert_eq!(field("年级/班级"), Some("grade_class"));
        assert_eq!(field("序号"), None);
        assert_eq!(field(""), None);
    }
}
