//! Chinese personal names: common surnames (with the polyphonic ones staff
//! trip over in search), gender-appropriate given names for children, and
//! older-style given names for parents and grandparents.

use rand::Rng;
use shouhu_core::Gender;

use crate::pick::{pick, pick_weighted};

/// Surnames with rough weights (per mille of the population, nudged towards
/// Guizhou, where 杨 吴 龙 罗 石 潘 are more common than nationally). The
/// polyphonic surnames 单 曾 解 区 仇 查 are included at realistic, small
/// weights: search must find them under their surname readings.
pub const SURNAMES: &[(&str, u32)] = &[
    ("王", 70),
    ("李", 70),
    ("张", 64),
    ("刘", 52),
    ("陈", 50),
    ("杨", 48),
    ("黄", 20),
    ("赵", 20),
    ("吴", 28),
    ("周", 18),
    ("徐", 12),
    ("孙", 10),
    ("马", 10),
    ("朱", 10),
    ("胡", 10),
    ("郭", 9),
    ("何", 12),
    ("高", 8),
    ("林", 8),
    ("罗", 20),
    ("郑", 7),
    ("梁", 7),
    ("谢", 8),
    ("宋", 6),
    ("唐", 8),
    ("许", 6),
    ("韩", 5),
    ("冯", 5),
    ("邓", 7),
    ("曹", 5),
    ("彭", 6),
    ("曾", 8),
    ("肖", 6),
    ("田", 8),
    ("董", 5),
    ("袁", 5),
    ("潘", 8),
    ("蒋", 5),
    ("蔡", 4),
    ("余", 5),
    ("杜", 4),
    ("叶", 4),
    ("程", 4),
    ("苏", 4),
    ("魏", 4),
    ("吕", 3),
    ("丁", 4),
    ("任", 4),
    ("姚", 3),
    ("卢", 3),
    ("钟", 3),
    ("谭", 4),
    ("陆", 3),
    ("范", 3),
    ("石", 9),
    ("廖", 4),
    ("贾", 2),
    ("夏", 3),
    ("韦", 5),
    ("付", 3),
    ("方", 3),
    ("邹", 3),
    ("熊", 5),
    ("秦", 2),
    ("江", 3),
    ("雷", 4),
    ("龙", 9),
    ("陶", 2),
    ("黎", 2),
    ("顾", 2),
    ("龚", 2),
    ("毛", 2),
    ("向", 3),
    ("安", 4),
    ("文", 3),
    ("蒙", 2),
    ("单", 2),
    ("解", 1),
    ("区", 1),
    ("仇", 1),
    ("查", 1),
];

const BOY_CHARS: &[&str] = &[
    "浩", "宇", "轩", "子", "博", "文", "俊", "杰", "鑫", "磊", "明", "辉", "强", "伟", "勇", "超",
    "鹏", "飞", "翔", "豪", "睿", "天", "佳", "嘉", "泽", "锦", "晨", "阳", "航", "志", "兴", "成",
    "康", "宏", "林", "海", "波", "涛", "然", "诚", "毅", "昊", "铭", "凯", "瑞", "希", "洋", "峰",
    "龙", "斌", "思", "奕", "家", "义", "荣", "彬", "建", "鸿",
];

const GIRL_CHARS: &[&str] = &[
    "欣", "怡", "梓", "涵", "雨", "萱", "思", "佳", "诗", "琪", "婷", "雪", "丽", "芳", "娟", "敏",
    "静", "悦", "可", "馨", "妍", "瑶", "璐", "蕾", "露", "梦", "月", "彤", "桐", "慧", "颖", "倩",
    "晴", "美", "玲", "艳", "燕", "霞", "红", "娇", "菲", "嘉", "雅", "紫", "玉", "春", "秋", "语",
    "心", "宁", "冰", "薇", "琳", "洁",
];

const MAN_CHARS: &[&str] = &[
    "建", "国", "明", "军", "勇", "强", "华", "平", "志", "林", "海", "波", "成", "刚", "贵", "发",
    "兵", "文", "富", "忠", "全", "德", "永", "光", "学", "正", "云", "红", "祥", "友", "荣", "才",
];

const WOMAN_CHARS: &[&str] = &[
    "秀", "英", "兰", "芳", "梅", "丽", "玉", "珍", "桂", "红", "霞", "琴", "燕", "娟", "凤", "艳",
    "萍", "敏", "芬", "菊", "莲", "花", "群", "翠", "美", "春", "素", "仙", "琼", "芝",
];

pub fn surname(rng: &mut impl Rng) -> &'static str {
    pick_weighted(rng, SURNAMES)
}

/// A given name of 1 (about 25%) or 2 characters, never the same character twice.
fn given(rng: &mut impl Rng, chars: &[&'static str], single_share: f64) -> String {
    let first = pick(rng, chars);
    if rng.gen_bool(single_share) {
        return first.to_string();
    }
    let mut second = pick(rng, chars);
    while second == first {
        second = pick(rng, chars);
    }
    format!("{first}{second}")
}

/// A child's given name: 1–2 characters, gender-appropriate.
pub fn child_given(rng: &mut impl Rng, gender: Gender) -> String {
    match gender {
        Gender::Male => given(rng, BOY_CHARS, 0.25),
        Gender::Female => given(rng, GIRL_CHARS, 0.25),
    }
}

/// A given name in the style of the parents' or grandparents' generation.
pub fn adult_given(rng: &mut impl Rng, gender: Gender) -> String {
    match gender {
        Gender::Male => given(rng, MAN_CHARS, 0.15),
        Gender::Female => given(rng, WOMAN_CHARS, 0.15),
    }
}

pub fn adult(rng: &mut impl Rng, gender: Gender) -> String {
    format!("{}{}", surname(rng), adult_given(rng, gender))
}

/// A teacher's full name (any generation's style).
pub fn teacher(rng: &mut impl Rng) -> String {
    let gender = if rng.gen_bool(0.6) {
        Gender::Female
    } else {
        Gender::Male
    };
    let given = if rng.gen_bool(0.5) {
        adult_given(rng, gender)
    } else {
        child_given(rng, gender)
    };
    format!("{}{given}", surname(rng))
}
