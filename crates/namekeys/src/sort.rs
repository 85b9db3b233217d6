//! Pinyin sort keys.

use pinyin::Pinyin;

use crate::normalize::{ascii_spelling, unit, Unit};

/// Separates syllables in a sort key; sorts below every syllable character.
const SYLLABLE_SEP: char = '!';
/// Ends the pinyin part of a sort key; sorts below [`SYLLABLE_SEP`], so a
/// name sorts before its extensions (西 < 西安) whatever follows.
const END: char = ' ';
/// Tone digit for a neutral-tone reading: after tones 1–4, as in dictionaries.
const NEUTRAL_TONE: char = '5';

/// A key that sorts names in pinyin order under plain byte-wise comparison
/// (`str::cmp`, SQLite's default `BINARY` collation): 阿 < 白 < 张.
///
/// A surname (the first Han character) is spelt by its surname reading where
/// that differs (曾 `zeng`, 单 `shan`; a short table, for sorting only). Every
/// other Han character is spelt by its most common reading (the first in the
/// `pinyin` crate's data; so after the surname 曾 sorts as `ceng`, whatever the
/// name's actual reading) followed by its tone digit (`5` for neutral), `ü`
/// as `v` (so 吕 `lv3` sorts after every `lu…`, as in dictionaries).
/// Syllables are compared one by one, so 西安 (`xi1!an1`) sorts before 先
/// (`xian1`). A Latin word is one lowercased syllable; other letters and
/// digits are kept as they are (they sort after all pinyin); whitespace and
/// `·` are skipped. After the pinyin part comes a space and the name itself,
/// so homophones (张三, 章三) still get a total, deterministic order.
///
/// The exact format is an implementation detail that may change between
/// versions: store it only as a derived column that is recomputed on
/// upgrade, and compare keys only with each other.
///
/// ```
/// use shouhu_namekeys::sort_key;
/// let mut names = vec!["张三", "阿美", "王五", "李四"];
/// names.sort_by_key(|n| sort_key(n));
/// assert_eq!(names, ["阿美", "李四", "王五", "张三"]);
/// ```
#[must_use]
pub fn sort_key(name: &str) -> String {
    let mut key = String::with_capacity(name.len() * 2 + 1);
    let mut in_word = false;
    let mut first_han = true;
    for c in name.chars() {
        let u = unit(c);
        if let Unit::Letter(b) = u {
            if !in_word {
                separate(&mut key);
                in_word = true;
            }
            key.push(char::from(b));
            continue;
        }
        in_word = false;
        match u {
            Unit::Han(multi) => {
                let surname = if first_han { surname_reading(c) } else { None };
                first_han = false;
                if let Some(toned) = surname {
                    separate(&mut key);
                    key.push_str(toned);
                    continue;
                }
                let Some(reading) = multi.into_iter().next() else {
                    continue;
                };
                separate(&mut key);
                push_toned(&mut key, reading);
            }
            Unit::Other(c) => {
                separate(&mut key);
                key.push(c);
            }
            Unit::Letter(_) | Unit::Separator => {}
        }
    }
    key.push(END);
    key.push_str(name);
    key
}

/// Sorting only: the reading a character takes *as a surname* where it
/// differs from the crate's most common reading, so a class list puts 曾 under
/// Z and 单 under S, as staff expect (百家姓 readings). Search never uses this
/// table: it indexes every reading the pinyin data has.
const SURNAME_READINGS: &[(char, &str)] = &[
    ('曾', "zeng1"),
    ('单', "shan4"),
    ('解', "xie4"),
    ('区', "ou1"),
    ('仇', "qiu2"),
    ('查', "zha1"),
    ('朴', "piao2"),
    ('尉', "yu4"),
    ('乐', "yue4"),
    ('覃', "qin2"),
    ('缪', "miao4"),
    ('翟', "zhai2"),
    ('盖', "ge3"),
    ('召', "shao4"),
    ('秘', "bi4"),
    ('种', "chong2"),
    ('繁', "po2"),
    ('员', "yun4"),
    ('粘', "nian2"),
    ('乜', "nie4"),
    ('牟', "mou2"),
    ('长', "zhang3"),
    ('重', "chong2"),
    ('折', "she2"),
    ('华', "hua4"),
    ('任', "ren2"),
    ('宁', "ning4"),
    ('纪', "ji3"),
    ('薄', "bo2"),
    ('沈', "shen3"),
    ('石', "shi2"),
    ('万', "wan4"),
];

fn surname_reading(c: char) -> Option<&'static str> {
    SURNAME_READINGS
        .iter()
        .find(|(s, _)| *s == c)
        .map(|(_, r)| *r)
}

fn separate(key: &mut String) {
    if !key.is_empty() {
        key.push(SYLLABLE_SEP);
    }
}

fn push_toned(key: &mut String, reading: Pinyin) {
    let toned = reading.with_tone_num_end();
    key.extend(ascii_spelling(toned, false));
    if !toned.ends_with(|c: char| c.is_ascii_digit()) {
        key.push(NEUTRAL_TONE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        v.sort_by_cached_key(|n| sort_key(n));
        v
    }

    #[test]
    fn surnames_sort_by_their_surname_reading() {
        assert_eq!(
            sorted(&["曾小明", "解放", "李四", "单丽", "蔡一"]),
            ["蔡一", "李四", "单丽", "解放", "曾小明"]
        );
        // Only the first character: 小曾 is xiao + ceng/zeng as the data says.
        assert!(sort_key("小曾").starts_with("xiao3!"));
    }

    #[test]
    fn key_format() {
        assert_eq!(sort_key("张三"), "zhang1!san1 张三");
        assert_eq!(sort_key("吕"), "lv3 吕");
        assert_eq!(sort_key("买买提·艾力"), "mai3!mai3!ti2!ai4!li4 买买提·艾力");
        assert_eq!(sort_key("李Anna"), "li3!anna 李Anna");
        assert_eq!(sort_key("ＡＢ 7"), "ab!7 ＡＢ 7");
        assert_eq!(sort_key(""), " ");
    }

    #[test]
    fn pinyin_order() {
        assert_eq!(
            sorted(&["张三", "王五", "阿美", "赵六", "李四", "陈七", "白一"]),
            ["阿美", "白一", "陈七", "李四", "王五", "张三", "赵六"]
        );
    }

    #[test]
    fn syllable_then_tone_then_next_syllable() {
        // 西安 xi1 an1 < 先 xian1: compare syllable by syllable.
        assert_eq!(sorted(&["先", "西安"]), ["西安", "先"]);
        // a name sorts before its extension
        assert_eq!(sorted(&["张三丰", "张三"]), ["张三", "张三丰"]);
        // tones 1-4 order homophone syllables: 妈 ma1 < 麻 ma2 < 马 ma3 < 骂 ma4
        assert_eq!(sorted(&["马", "骂", "妈", "麻"]), ["妈", "麻", "马", "骂"]);
        // lu < lü, as in dictionaries
        assert_eq!(sorted(&["吕布", "鲁迅", "陆游"]), ["鲁迅", "陆游", "吕布"]);
    }

    #[test]
    fn homophones_are_ordered_deterministically() {
        let a = sort_key("张三");
        let b = sort_key("章三");
        assert_ne!(a, b);
        assert_eq!(sorted(&["章三", "张三"]), sorted(&["张三", "章三"]));
    }

    #[test]
    fn latin_and_other_scripts() {
        // Latin words interleave with pinyin; other scripts sort last.
        assert_eq!(
            sorted(&["김민준", "Zoe", "安娜", "Anna"]),
            ["安娜", "Anna", "Zoe", "김민준"]
        );
    }
}
