//! Character-level normalisation shared by keys, sort keys and queries.

use pinyin::{PinyinMulti, ToPinyinMulti};

/// Maps full-width ASCII variants (`Ａ`, `１`, `＇`, …, U+FF01–U+FF5E) to
/// their ASCII counterparts and the ideographic space U+3000 to `' '`.
/// Every other character is returned unchanged.
#[inline]
pub(crate) fn half_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Whether `c` is a Han (CJK ideograph) character: the unified ideographs
/// and their extensions A–H, the compatibility ideographs, and `〇`.
pub(crate) fn is_han(c: char) -> bool {
    matches!(c,
        '\u{3007}'
        | '\u{3400}'..='\u{4DBF}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{2EBEF}'
        | '\u{2F800}'..='\u{2FA1F}'
        | '\u{30000}'..='\u{3134F}'
        | '\u{31350}'..='\u{323AF}')
}

/// One unit of a name after normalisation.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Unit {
    /// A character with pinyin data (every Han character the crate knows).
    Han(PinyinMulti),
    /// An ASCII letter (full-width already folded), lowercased.
    Letter(u8),
    /// Any other alphanumeric character: a Han character missing from the
    /// pinyin data, a digit, Hangul, accented Latin, …
    Other(char),
    /// Whitespace, `·` and other punctuation: separates words, never indexed.
    Separator,
}

/// Classifies one character of a name (after folding full-width forms).
#[inline]
pub(crate) fn unit(c: char) -> Unit {
    let c = half_width(c);
    if c.is_ascii_alphabetic() {
        return Unit::Letter(c.to_ascii_lowercase() as u8);
    }
    if c.is_ascii() {
        return if c.is_ascii_digit() {
            Unit::Other(c)
        } else {
            Unit::Separator
        };
    }
    if let Some(multi) = c.to_pinyin_multi() {
        return Unit::Han(multi);
    }
    if c.is_alphanumeric() {
        Unit::Other(c)
    } else {
        Unit::Separator
    }
}

/// The ASCII spelling of a plain (toneless) pinyin syllable from the
/// `pinyin` crate: `ü` becomes `v` (the IME convention, `lv` for 吕) or `u`
/// when `u_for_umlaut` (`lu`, the other common habit), `ê` becomes `e`.
pub(crate) fn ascii_spelling(plain: &str, u_for_umlaut: bool) -> impl Iterator<Item = char> + '_ {
    plain.chars().filter_map(move |c| match c {
        'ü' => Some(if u_for_umlaut { 'u' } else { 'v' }),
        'ê' => Some('e'),
        c if c.is_ascii() => Some(c),
        _ => None,
    })
}

/// Appends [`ascii_spelling`] of `plain` to `out`.
#[inline]
pub(crate) fn push_ascii_syllable(out: &mut String, plain: &str, u_for_umlaut: bool) {
    if plain.is_ascii() {
        out.push_str(plain);
    } else {
        out.extend(ascii_spelling(plain, u_for_umlaut));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_width_folds_full_width_ascii_and_ideographic_space() {
        let folded: String = "１２３ＡＢＣｚ＇！～\u{3000}张·"
            .chars()
            .map(half_width)
            .collect();
        assert_eq!(folded, "123ABCz'!~ 张·");
    }

    #[test]
    fn han_ranges() {
        for c in ['张', '〇', '㐀', '𠮷', '\u{2A6D6}'] {
            assert!(is_han(c), "{c}");
        }
        for c in ['a', '1', '·', 'ü', '가', 'あ', '，'] {
            assert!(!is_han(c), "{c}");
        }
    }

    #[test]
    fn units() {
        assert!(matches!(unit('Ｚ'), Unit::Letter(b'z')));
        assert!(matches!(unit('Q'), Unit::Letter(b'q')));
        assert!(matches!(unit('张'), Unit::Han(_)));
        assert!(matches!(unit('·'), Unit::Separator));
        assert!(matches!(unit('\u{3000}'), Unit::Separator));
        assert!(matches!(unit('-'), Unit::Separator));
        assert!(matches!(unit('7'), Unit::Other('7')));
        assert!(matches!(unit('７'), Unit::Other('7')));
        assert!(matches!(unit('가'), Unit::Other('가')));
    }

    #[test]
    fn umlaut_and_circumflex_spellings() {
        let mut s = String::new();
        push_ascii_syllable(&mut s, "lüe", false);
        s.push(' ');
        push_ascii_syllable(&mut s, "lüe", true);
        s.push(' ');
        push_ascii_syllable(&mut s, "ê", false);
        assert_eq!(s, "lve lue e");
    }
}
