//! Text rendering of a child's file and of the counts.

use std::io::Write;

use shouhu_core::validate::format_yuan;
use shouhu_core::{ChildCard, Lang};
use shouhu_store::{ChildHistory, Stats};

fn yes_no(b: bool, zh: bool) -> &'static str {
    match (b, zh) {
        (true, true) => "是",
        (false, true) => "否",
        (true, false) => "yes",
        (false, false) => "no",
    }
}

fn tag<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn render(h: &ChildHistory, lang: Lang, out: &mut dyn Write) -> std::io::Result<()> {
    let zh = lang == Lang::ZhCn;
    let c: &ChildCard = &h.child.body;
    let l = |zh_s: &'static str, en: &'static str| if zh { zh_s } else { en };
    writeln!(out, "{}  ({})", c.name, h.child.meta.id)?;
    writeln!(
        out,
        "{}：{}  {}：{}  {}：{}",
        l("性别", "gender"),
        c.gender.map(|g| tag(&g)).unwrap_or_default(),
        l("出生日期", "born"),
        c.birth_date.map(|d| d.to_string()).unwrap_or_default(),
        l("民族", "ethnicity"),
        c.ethnicity
    )?;
    writeln!(
        out,
        "{}：{}",
        l("身份证号", "ID number"),
        c.id_number.as_deref().unwrap_or("-")
    )?;
    writeln!(
        out,
        "{}：{}",
        l("现住址", "address"),
        c.current_address.display()
    )?;
    writeln!(
        out,
        "{}：{}{}  {}：{}",
        l("年级班级", "grade/class"),
        c.grade,
        c.class_name,
        l("住校", "boarding"),
        yes_no(c.boarding, zh)
    )?;
    writeln!(
        out,
        "{}：{}  {}：{}",
        l("留守类型", "left-behind type"),
        tag(&c.left_behind_type),
        l("监护类型", "guardianship"),
        tag(&c.guardianship_type)
    )?;
    writeln!(
        out,
        "{}：{} {}{}  {}：{} {}{}",
        l("父亲", "father"),
        c.father.name,
        c.father.work_province,
        c.father.work_city,
        l("母亲", "mother"),
        c.mother.name,
        c.mother.work_province,
        c.mother.work_city
    )?;
    writeln!(
        out,
        "{}：{}（{}）",
        l("监护人", "guardian"),
        c.guardian.name,
        tag(&c.guardian.relation)
    )?;
    writeln!(
        out,
        "{}：{}",
        l("结对教师", "pairing teacher"),
        c.pairing_teacher
    )?;
    writeln!(out, "{}：{}", l("状态", "status"), tag(&c.status))?;
    if !h.siblings.is_empty() {
        let names: Vec<&str> = h.siblings.iter().map(|s| s.body.name.as_str()).collect();
        writeln!(out, "{}：{}", l("兄弟姐妹", "siblings"), names.join("、"))?;
    }
    for p in &h.plans {
        writeln!(
            out,
            "{} #{}：{}  {} {}",
            l("帮扶计划", "help plan"),
            p.body.revision,
            p.body.needs.join("、"),
            l("复查", "review"),
            p.body
                .review_date
                .map(|d| d.to_string())
                .unwrap_or_default()
        )?;
    }
    writeln!(
        out,
        "— {} ({}) —",
        l("家访记录", "home visits"),
        h.visits.len()
    )?;
    for v in &h.visits {
        writeln!(
            out,
            "  {}  {}  {}  {}",
            v.body.visit_date.map(|d| d.to_string()).unwrap_or_default(),
            tag(&v.body.mode),
            tag(&v.body.status),
            v.body.problems_found
        )?;
    }
    for a in &h.amendments {
        writeln!(
            out,
            "  {} {}: {} → {} ({})",
            l("更正", "amended"),
            a.body.field,
            a.body.old_value,
            a.body.new_value,
            a.body.reason
        )?;
    }
    writeln!(
        out,
        "— {} ({}) —",
        l("跟进事项", "follow-ups"),
        h.follow_ups.len()
    )?;
    for f in &h.follow_ups {
        writeln!(
            out,
            "  {}  {}  {}",
            f.body.due_date.map(|d| d.to_string()).unwrap_or_default(),
            if f.body.done { "✓" } else { "○" },
            f.body.action
        )?;
    }
    let aid_total: i64 = h.aid.iter().map(|a| a.body.amount_fen).sum();
    writeln!(
        out,
        "— {} ({}, {} {}) —",
        l("救助记录", "aid"),
        h.aid.len(),
        format_yuan(aid_total),
        l("元", "yuan")
    )?;
    for a in &h.aid {
        writeln!(
            out,
            "  {}  {}  {}  {}",
            a.body.date.map(|d| d.to_string()).unwrap_or_default(),
            tag(&a.body.kind),
            format_yuan(a.body.amount_fen),
            a.body.fund_source
        )?;
    }
    writeln!(
        out,
        "{}：{}  {}：{}  {}：{}  {}：{}",
        l("缺勤", "absences"),
        h.absences.len(),
        l("辍学", "dropouts"),
        h.dropouts.len(),
        l("劝返", "persuasion visits"),
        h.persuasions.len(),
        l("亲情联系", "family contacts"),
        h.contacts.len()
    )?;
    if !h.psych_notes.is_empty() {
        writeln!(
            out,
            "{}：{}",
            l("心理辅导记录", "counseling notes"),
            h.psych_notes.len()
        )?;
    }
    writeln!(out, "— {} —", l("修改记录", "changes"))?;
    for e in &h.card_changes {
        let fields: Vec<String> = match &e.fields {
            serde_json::Value::Object(m) if e.op == shouhu_store::Op::Update => {
                m.keys().cloned().collect()
            }
            _ => vec![],
        };
        writeln!(
            out,
            "  #{} {} {} {}",
            e.seq,
            e.op.as_str(),
            e.user_id,
            fields.join(", ")
        )?;
    }
    Ok(())
}

pub fn render_stats(s: &Stats, lang: Lang, out: &mut dyn Write) -> std::io::Result<()> {
    let zh = lang == Lang::ZhCn;
    for (k, v) in &s.records {
        let name = if zh {
            shouhu_store::entity_zh(k)
        } else {
            k.as_str()
        };
        writeln!(out, "{name}: {v}")?;
    }
    let groups = [
        (
            if zh {
                "留守类型"
            } else {
                "by left-behind type"
            },
            &s.by_left_behind_type,
        ),
        (
            if zh {
                "监护类型"
            } else {
                "by guardianship type"
            },
            &s.by_guardianship_type,
        ),
        (if zh { "状态" } else { "by status" }, &s.by_status),
        (if zh { "乡镇" } else { "by township" }, &s.by_township),
    ];
    for (title, g) in groups {
        writeln!(out, "— {title} —")?;
        for (k, v) in g {
            writeln!(out, "  {k}: {v}")?;
        }
    }
    writeln!(
        out,
        "{}: {}",
        if zh {
            "救助金额合计（元）"
        } else {
            "aid total (yuan)"
        },
        format_yuan(s.aid_total_fen)
    )?;
    writeln!(
        out,
        "{}: {}",
        if zh {
            "逾期跟进事项"
        } else {
            "overdue follow-ups"
        },
        s.overdue_follow_ups
    )?;
    writeln!(
        out,
        "{}: {}",
        if zh {
            "待同步修改"
        } else {
            "changes pending sync"
        },
        s.pending_changes
    )?;
    Ok(())
}
