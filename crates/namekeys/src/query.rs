//! Classifying what a user typed into the search box.

use crate::normalize::{half_width, is_han};

/// Shortest digit string treated as an ID-number prefix. Shorter digit
/// strings would match a large share of all children (every ID starts with a
/// six-digit region code), so they are [`Query::Unsupported`].
pub const MIN_ID_PREFIX_LEN: usize = 4;

/// Length of a resident ID number (居民身份证号码); its last character may
/// be the check character `X`.
pub const ID_LEN: usize = 18;

/// A normalised search query; see [`classify_query`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Query {
    /// Nothing to search for: blank input, or only spaces and apostrophes.
    Empty,
    /// Contains at least one Han character: search the name itself by
    /// substring. Whitespace is removed (`张 三` → `张三`), full-width forms
    /// are folded and ASCII is lowercased, so compare case-insensitively.
    Name(String),
    /// Only ASCII letters (spaces and apostrophes removed, `ü` spelt `v`):
    /// search [`name_keys`](crate::name_keys) by prefix.
    Pinyin(String),
    /// [`MIN_ID_PREFIX_LEN`] to [`ID_LEN`] digits, where an 18th character
    /// may be `X` (always uppercase here): search ID numbers by prefix.
    IdPrefix(String),
    /// Fits no rule: too few digits, digits mixed with letters, more than
    /// 18 digits, an `X` before the 18th place, punctuation only, other
    /// scripts. Holds the normalised text; callers show a hint, not results.
    Unsupported(String),
}

/// Normalises and classifies search-box input.
///
/// Normalisation: full-width ASCII (`ＺＳ`, `５２０１`, `＇`) and the
/// ideographic space fold to ASCII, letters are lowercased, and surrounding
/// whitespace is trimmed. Then, first rule that applies wins:
///
/// 1. nothing left → [`Query::Empty`];
/// 2. any Han character → [`Query::Name`], whitespace removed;
/// 3. with whitespace removed: 4–18 ASCII digits, or 17 digits and an `x`
///    → [`Query::IdPrefix`], `x` uppercased (`52010219900101123x` →
///    `52010219900101123X`);
/// 4. with whitespace and apostrophes (`'`, `’`, `‘`) removed: only ASCII
///    letters (`ü` accepted as `v`) → [`Query::Pinyin`] (` Zhang San ` →
///    `zhangsan`, `xi'an` → `xian`); only apostrophes → [`Query::Empty`];
/// 5. anything else → [`Query::Unsupported`].
///
/// ```
/// use shouhu_namekeys::{classify_query, Query};
/// assert_eq!(classify_query(" Zhang San "), Query::Pinyin("zhangsan".into()));
/// assert_eq!(classify_query("５２０１"), Query::IdPrefix("5201".into()));
/// assert_eq!(classify_query("张"), Query::Name("张".into()));
/// ```
#[must_use]
pub fn classify_query(q: &str) -> Query {
    let mut normalised = String::with_capacity(q.len());
    for c in q.chars().map(half_width) {
        if c.is_ascii() {
            normalised.push(c.to_ascii_lowercase());
        } else {
            normalised.extend(c.to_lowercase());
        }
    }
    let normalised = normalised.trim();
    if normalised.is_empty() {
        return Query::Empty;
    }
    if normalised.chars().any(is_han) {
        return Query::Name(normalised.chars().filter(|c| !c.is_whitespace()).collect());
    }
    let compact: String = normalised.chars().filter(|c| !c.is_whitespace()).collect();
    if let Some(id) = id_prefix(&compact) {
        return Query::IdPrefix(id);
    }
    let mut letters = String::with_capacity(compact.len());
    for c in compact.chars() {
        match c {
            '\'' | '\u{2018}' | '\u{2019}' => {}
            'ü' => letters.push('v'),
            c if c.is_ascii_lowercase() => letters.push(c),
            _ => return Query::Unsupported(normalised.to_owned()),
        }
    }
    if letters.is_empty() {
        Query::Empty
    } else {
        Query::Pinyin(letters)
    }
}

/// `Some(prefix)` if `s` is a plausible ID-number prefix (lowercase `x`).
fn id_prefix(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    if !(MIN_ID_PREFIX_LEN..=ID_LEN).contains(&bytes.len()) {
        return None;
    }
    let (body, last) = bytes.split_at(bytes.len() - 1);
    let body_ok = body.iter().all(u8::is_ascii_digit);
    let last_ok = last[0].is_ascii_digit() || (last[0] == b'x' && bytes.len() == ID_LEN);
    (body_ok && last_ok).then(|| s.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Query {
        Query::Name(s.to_owned())
    }
    fn pinyin(s: &str) -> Query {
        Query::Pinyin(s.to_owned())
    }
    fn id(s: &str) -> Query {
        Query::IdPrefix(s.to_owned())
    }
    fn unsupported(s: &str) -> Query {
        Query::Unsupported(s.to_owned())
    }

    #[test]
    fn classify_table() {
        let table = [
            // empty
            ("", Query::Empty),
            ("   ", Query::Empty),
            ("\u{3000}\t\n", Query::Empty),
            ("'", Query::Empty),
            // pinyin
            ("zs", pinyin("zs")),
            ("ZS", pinyin("zs")),
            (" Zhang San ", pinyin("zhangsan")),
            ("ｚｈａｎｇ　ｓａｎ", pinyin("zhangsan")),
            ("xi'an", pinyin("xian")),
            ("xi\u{2019}an", pinyin("xian")),
            ("ｘｉ＇ａｎ", pinyin("xian")),
            ("lü", pinyin("lv")),
            ("LÜ", pinyin("lv")),
            // Han: substring search on the name
            ("张", name("张")),
            (" 张三 ", name("张三")),
            ("张 三", name("张三")),
            ("张s", name("张s")),
            ("买买提·艾力", name("买买提·艾力")),
            ("李Anna", name("李anna")),
            // ID prefixes
            ("5201", id("5201")),
            ("５２０１", id("5201")),
            ("１２３４５", id("12345")),
            ("5201 0219", id("52010219")),
            ("52010219900101123x", id("52010219900101123X")),
            ("52010219900101123X", id("52010219900101123X")),
            (
                "５２０１０２１９９００１０１１２３ｘ",
                id("52010219900101123X"),
            ),
            ("520102199001011234", id("520102199001011234")),
            ("520102900101123", id("520102900101123")),
            // unsupported
            ("520", unsupported("520")),
            ("５２", unsupported("52")),
            ("5201x", unsupported("5201x")),
            ("5201023x", unsupported("5201023x")),
            ("5201021990010112345", unsupported("5201021990010112345")),
            ("zs1", unsupported("zs1")),
            ("zhang-san", unsupported("zhang-san")),
            ("·", unsupported("·")),
            ("김민준", unsupported("김민준")),
        ];
        for (input, expected) in table {
            assert_eq!(classify_query(input), expected, "input {input:?}");
        }
    }
}
