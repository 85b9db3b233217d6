//! Child search with Chinese names, pinyin, initials, polyphonic surnames and
//! ID prefixes; filters, sorting and pagination.

mod common;
use common::*;

use shouhu_core::*;
use shouhu_store::{SearchParams, SortBy, Store};
use uuid::Uuid;

fn names(s: &Store, p: &SearchParams) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    Ok(s.search_children(p)?
        .items
        .into_iter()
        .map(|i| i.name)
        .collect())
}

fn q(query: &str) -> SearchParams {
    SearchParams {
        query: query.into(),
        ..Default::default()
    }
}

fn setup() -> Result<(Store, Uuid, Uuid), Box<dyn std::error::Error>> {
    let mut s = store()?;
    let a = s.write(|w| w.create(school("新寨小学", "八步街道")))?.id();
    let b = s.write(|w| w.create(school("龙场中学", "龙场镇")))?.id();
    let kids = [
        ("张三", Gender::Male, 2016, a),
        ("张珊珊", Gender::Female, 2015, a),
        ("单丽", Gender::Female, 2014, a),
        ("曾小明", Gender::Male, 2013, b),
        ("解放", Gender::Male, 2012, b),
        ("李四", Gender::Male, 2011, b),
        ("欧阳娜娜", Gender::Female, 2016, a),
    ];
    s.write(|w| {
        for (i, (n, g, y, sch)) in kids.iter().enumerate() {
            let mut c = child(n, *g, d(*y, 1 + i as u32, 10), *sch);
            if *sch == b {
                c.current_address.township = "龙场镇".into();
                c.left_behind_type = LeftBehindType::FatherAway;
            }
            w.create(c)?;
        }
        Ok(())
    })?;
    Ok((s, a, b))
}

#[test]
fn finds_by_name_pinyin_initials_and_polyphonic_readings() -> TestResult {
    let (s, _, _) = setup()?;
    assert_eq!(names(&s, &q("张"))?, vec!["张三", "张珊珊"]);
    assert_eq!(names(&s, &q("三"))?, vec!["张三"]);
    assert_eq!(names(&s, &q("zs"))?, vec!["张三", "张珊珊"]);
    assert_eq!(names(&s, &q("zhangsan"))?, vec!["张三"]);
    assert_eq!(names(&s, &q("Zhang San"))?, vec!["张三"]);
    assert_eq!(names(&s, &q("zhangshan"))?, vec!["张珊珊"]);
    assert_eq!(names(&s, &q("zhang"))?, vec!["张三", "张珊珊"]);
    assert_eq!(
        names(&s, &q("ＺＳ"))?,
        vec!["张三", "张珊珊"],
        "full-width input"
    );
    assert_eq!(names(&s, &q("zss"))?, vec!["张珊珊"]);
    // Polyphonic surnames under both readings.
    for (query, name) in [
        ("shanli", "单丽"),
        ("danli", "单丽"),
        ("sl", "单丽"),
        ("zengxiaoming", "曾小明"),
        ("cengxiaoming", "曾小明"),
        ("zxm", "曾小明"),
        ("xiefang", "解放"),
        ("jiefang", "解放"),
        ("oynn", "欧阳娜娜"),
        ("nana", "欧阳娜娜"),
    ] {
        assert!(
            names(&s, &q(query))?.contains(&name.to_string()),
            "{query} → {name}"
        );
    }
    assert!(names(&s, &q("xyz"))?.is_empty());
    Ok(())
}

#[test]
fn finds_by_id_prefix_and_masks_ids() -> TestResult {
    let (s, _, _) = setup()?;
    let id = id_for(d(2016, 1, 10), Gender::Male, 7);
    let page = s.search_children(&q(&id[..14]))?;
    assert_eq!(page.query_kind, "id_prefix");
    assert_eq!(
        page.items
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>(),
        vec!["张三"]
    );
    let masked = page.items[0].id_number_masked.clone().unwrap_or_default();
    assert_eq!(masked, format!("{}**********{}", &id[..4], &id[14..]));
    let lower_x = s.search_children(&q("５２０５０２"))?;
    assert_eq!(lower_x.total, 7, "full-width digits");
    assert_eq!(s.search_children(&q("52"))?.query_kind, "unsupported");
    Ok(())
}

#[test]
fn filters_sort_and_paginate() -> TestResult {
    let (s, a, b) = setup()?;
    let mut p = q("");
    p.school_id = Some(b);
    assert_eq!(
        names(&s, &p)?,
        vec!["李四", "解放", "曾小明"],
        "surname readings: li, xie, zeng"
    );
    p.school_id = None;
    p.township = Some("龙场镇".into());
    assert_eq!(s.search_children(&p)?.total, 3);
    p.township = None;
    p.left_behind_type = Some(LeftBehindType::FatherAway);
    assert_eq!(s.search_children(&p)?.total, 3);
    p.left_behind_type = None;
    p.school_id = Some(a);
    p.sort = SortBy::BirthDate;
    p.descending = true;
    assert_eq!(names(&s, &p)?, vec!["欧阳娜娜", "张三", "张珊珊", "单丽"]);
    p.limit = 2;
    p.offset = 2;
    let page = s.search_children(&p)?;
    assert_eq!(page.total, 4);
    assert_eq!(
        page.items
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>(),
        vec!["张珊珊", "单丽"]
    );
    p.offset = 10;
    assert!(s.search_children(&p)?.items.is_empty());
    Ok(())
}

#[test]
fn index_follows_own_and_other_writes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.db");
    let mut s = Store::open(&path)?;
    s.set_today(Some(today()));
    let sch = s.write(|w| w.create(school("新寨小学", "八步街道")))?.id();
    let c = s.write(|w| w.create(child("张三", Gender::Male, d(2016, 5, 4), sch)))?;
    assert_eq!(names(&s, &q("zs"))?, vec!["张三"]);
    // Own edit: renamed.
    let mut b = c.body.clone();
    b.name = "李三".into();
    b.status = ChildStatus::ParentsReturned;
    b.status_reason = Some("父母返乡".into());
    s.write(|w| w.update(c.id(), b))?;
    assert!(names(&s, &q("zs"))?.is_empty());
    assert_eq!(names(&s, &q("ls"))?, vec!["李三"]);
    let mut p = q("");
    p.status = Some(ChildStatus::ParentsReturned);
    assert_eq!(s.search_children(&p)?.total, 1);
    // Another connection (another process) writes: seen on the next search.
    {
        let mut other = Store::open(&path)?;
        other.set_today(Some(today()));
        other.write(|w| w.create(child("王小丫", Gender::Female, d(2015, 5, 4), sch)))?;
    }
    assert_eq!(names(&s, &q("wxy"))?, vec!["王小丫"]);
    // Deleted children are not listed.
    s.write(|w| w.delete(EntityKind::Child, c.id(), "重复录入"))?;
    assert!(names(&s, &q("ls"))?.is_empty());
    Ok(())
}

#[test]
fn name_order_holds_after_own_writes_both_ways_and_across_pages() -> TestResult {
    let (mut s, a, _) = setup()?;
    let all = |s: &Store, descending: bool| -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let mut p = q("");
        p.descending = descending;
        names(s, &p)
    };
    let before = all(&s, false)?;
    assert_eq!(
        before,
        vec![
            "李四",
            "欧阳娜娜",
            "单丽",
            "解放",
            "曾小明",
            "张三",
            "张珊珊"
        ],
        "li, ouyang, shan (单 as a surname), xie, zeng, zhang"
    );
    // Patched entries (new, renamed) land in their place in the loaded index.
    s.write(|w| w.create(child("安娜", Gender::Female, d(2015, 3, 3), a)))?;
    s.write(|w| w.create(child("周七", Gender::Male, d(2015, 3, 3), a)))?;
    let zhang = s.search_children(&q("张三"))?.items[0].id;
    let mut b = s.fetch::<ChildCard>(zhang)?.body;
    b.name = "毛三".into();
    s.write(|w| w.update(zhang, b))?;
    let expected = vec![
        "安娜",
        "李四",
        "毛三",
        "欧阳娜娜",
        "单丽",
        "解放",
        "曾小明",
        "张珊珊",
        "周七",
    ];
    assert_eq!(all(&s, false)?, expected);
    let mut reversed = expected.clone();
    reversed.reverse();
    assert_eq!(all(&s, true)?, reversed);
    let mut p = q("");
    p.limit = 4;
    p.offset = 3;
    let page = s.search_children(&p)?;
    assert_eq!(page.total, 9);
    let got: Vec<&str> = page.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(got, &expected[3..7]);
    p.descending = true;
    p.offset = 7;
    let got: Vec<String> = s
        .search_children(&p)?
        .items
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(got, vec!["李四", "安娜"]);
    // Grade order: grade, class, then name.
    let mut p = q("");
    p.sort = SortBy::Grade;
    p.school_id = Some(a);
    let first = s.search_children(&p)?.items;
    assert!(first
        .windows(2)
        .all(|w| (&w[0].grade, &w[0].class_name) <= (&w[1].grade, &w[1].class_name)));
    Ok(())
}
