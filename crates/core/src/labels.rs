//! Field names as users know them, for error messages outside the UI (the UI has
//! its own catalog keyed by the same dotted paths).

use crate::error::Lang;

const LABELS: &[(&str, &str, &str)] = &[
    ("name", "姓名", "Name"),
    ("gender", "性别", "Gender"),
    ("ethnicity", "民族", "Ethnicity"),
    ("birth_date", "出生日期", "Birth date"),
    ("id_number", "身份证号", "ID number"),
    ("registered_address", "户籍地址", "Registered address"),
    ("health.disability_grade", "残疾等级", "Disability grade"),
    ("father.name", "父亲姓名", "Father's name"),
    ("father.id_number", "父亲身份证号", "Father's ID number"),
    ("father.phone", "父亲电话", "Father's phone"),
    ("father.birth_date", "父亲出生日期", "Father's birth date"),
    ("mother.name", "母亲姓名", "Mother's name"),
    ("mother.id_number", "母亲身份证号", "Mother's ID number"),
    ("mother.phone", "母亲电话", "Mother's phone"),
    ("mother.birth_date", "母亲出生日期", "Mother's birth date"),
    ("guardian.phone", "监护人电话", "Guardian's phone"),
    (
        "guardian.id_number",
        "监护人身份证号",
        "Guardian's ID number",
    ),
    (
        "pairing_teacher_phone",
        "结对教师电话",
        "Pairing teacher's phone",
    ),
    ("status_date", "状态变更日期", "Status date"),
    ("status_reason", "状态变更原因", "Status reason"),
    ("township", "乡镇", "Township"),
    ("phone", "电话", "Phone"),
    ("label", "家庭名称", "Household name"),
    ("household_id", "所属家庭", "Household"),
    ("needs", "帮扶需求", "Needs"),
    ("measures", "帮扶措施", "Measures"),
    ("review_date", "复查日期", "Review date"),
    ("plan_id", "帮扶计划", "Help plan"),
    ("child_id", "儿童", "Child"),
    ("visit_id", "家访记录", "Visit"),
    ("visit_date", "家访日期", "Visit date"),
    ("visitors", "走访人员", "Visitors"),
    ("living_conditions", "生活状况", "Living conditions"),
    ("problems_found", "发现的问题", "Problems found"),
    ("help_given", "帮扶内容", "Help given"),
    ("field", "更正字段", "Amended field"),
    ("reason", "原因", "Reason"),
    ("action", "跟进事项", "Action"),
    ("due_date", "截止日期", "Due date"),
    ("done_date", "完成日期", "Date done"),
    ("session_date", "辅导日期", "Session date"),
    ("next_session", "下次辅导日期", "Next session"),
    ("presenting_issue", "主要问题", "Presenting issue"),
    ("sealed", "加密内容", "Encrypted content"),
    ("counseling.alert_text", "安全提醒内容", "Safety alert text"),
    ("counseling.since", "开始辅导日期", "Counseling since"),
    ("score", "量表得分", "Score"),
    ("date", "日期", "Date"),
    ("amount_fen", "金额", "Amount"),
    ("items", "物品", "Items"),
    ("fund_source", "资金来源", "Fund source"),
    ("fund_year", "资金年度", "Fund year"),
    ("handed_over_by", "发放人", "Handed over by"),
    ("half_days", "缺勤半天数", "Half-days absent"),
    ("return_date", "返校日期", "Return date"),
    ("minutes", "通话时长（分钟）", "Minutes"),
    ("school_id", "学校", "School"),
    ("title", "主题", "Title"),
    ("round_id", "排查批次", "Screening round"),
    ("year", "年度", "Year"),
    ("started_on", "开始日期", "Start date"),
];

/// The label of a dotted field path; list items (`measures.0.description`) use
/// the list's label and their position, unknown paths are shown as they are.
pub fn field_label(path: &str, lang: Lang) -> String {
    let pick = |zh: &str, en: &str| match lang {
        Lang::ZhCn => zh.to_string(),
        Lang::En => en.to_string(),
    };
    if let Some((_, zh, en)) = LABELS.iter().find(|(p, _, _)| *p == path) {
        return pick(zh, en);
    }
    let mut parts = path.splitn(3, '.');
    if let (Some(list), Some(idx), rest) = (parts.next(), parts.next(), parts.next()) {
        if let Ok(i) = idx.parse::<usize>() {
            let base = field_label(list, lang);
            let sub = rest.map(|r| field_label(r, lang)).unwrap_or_default();
            return match lang {
                Lang::ZhCn => format!("{base}第{}项{sub}", i + 1),
                Lang::En => format!("{base} #{} {sub}", i + 1).trim_end().to_string(),
            };
        }
    }
    path.to_string()
}
