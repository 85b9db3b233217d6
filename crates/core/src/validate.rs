//! Field validators: resident ID numbers (GB 11643-1999), phone numbers, dates,
//! amounts. Each validator first *normalises* what people actually type (full-width
//! digits from a Chinese IME, surrounding spaces, a lowercase `x`), then checks.

use chrono::{Datelike, FixedOffset, NaiveDate, Utc};

use crate::error::{FieldError, FieldErrorKind};
use crate::model::Gender;

/// Full-width ASCII variants (`０-９`, `Ａ-Ｚ`, `－`, ideographic space) to ASCII,
/// then trim.
pub fn normalize_text(s: &str) -> String {
    let mapped: String = s
        .chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .collect();
    mapped.trim().to_string()
}

/// Trim a free-text field; full-width letters in Chinese text are left alone.
pub fn trim_text(s: &str) -> String {
    s.trim_matches(is_trimmed).to_string()
}

/// The characters [`trim_text`] takes off both ends.
pub fn is_trimmed(c: char) -> bool {
    c.is_whitespace() || c == '\u{3000}'
}

/// What an 18-character resident ID number says about its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdInfo {
    pub birth_date: NaiveDate,
    pub gender: Gender,
}

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// Province-level codes (first two digits) of GB/T 2260.
const PROVINCES: [u32; 34] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
];

/// The check character of the first 17 digits.
pub fn id_check_char(first17: &[u8]) -> Option<char> {
    if first17.len() != 17 || !first17.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK.get((sum % 11) as usize).copied()
}

/// Normalise an ID number as typed: full-width to ASCII, spaces removed, `x` → `X`.
pub fn normalize_id_number(raw: &str) -> String {
    normalize_text(raw)
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Check a normalised ID number; `field` names it in the error.
pub fn check_id_number(field: &str, id: &str) -> Result<IdInfo, FieldError> {
    let err = |kind| FieldError::new(field, kind);
    let b = id.as_bytes();
    let len = id.chars().count();
    if len == 15 && b.iter().all(u8::is_ascii_digit) {
        return Err(err(FieldErrorKind::IdNumberLegacy15));
    }
    if len != 18 {
        return Err(err(FieldErrorKind::IdNumberLength { len }));
    }
    if !b[..17].iter().all(u8::is_ascii_digit) || !(b[17].is_ascii_digit() || b[17] == b'X') {
        return Err(err(FieldErrorKind::IdNumberCharacters));
    }
    let province = u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0');
    if !PROVINCES.contains(&province) {
        return Err(err(FieldErrorKind::IdNumberRegion {
            region: id[..6].to_string(),
        }));
    }
    let raw_date = &id[6..14];
    let birth_date = NaiveDate::parse_from_str(raw_date, "%Y%m%d")
        .ok()
        .filter(|d| d.year() >= 1900)
        .ok_or_else(|| {
            err(FieldErrorKind::IdNumberBirthDateInvalid {
                raw: raw_date.to_string(),
            })
        })?;
    let expected = id_check_char(&b[..17]).unwrap_or('?');
    let found = b[17] as char;
    if expected != found {
        return Err(err(FieldErrorKind::IdNumberChecksum { expected, found }));
    }
    let gender = if (b[16] - b'0') % 2 == 1 {
        Gender::Male
    } else {
        Gender::Female
    };
    Ok(IdInfo { birth_date, gender })
}

/// Check an ID number against the card's birth date and gender.
pub fn check_id_number_for(
    field: &str,
    id: &str,
    birth_date: Option<NaiveDate>,
    gender: Option<Gender>,
) -> Result<IdInfo, FieldError> {
    let info = check_id_number(field, id)?;
    if let Some(card_birth) = birth_date {
        if card_birth != info.birth_date {
            return Err(FieldError::new(
                field,
                FieldErrorKind::IdNumberBirthDateMismatch {
                    id_birth: info.birth_date,
                    card_birth,
                },
            ));
        }
    }
    if let Some(g) = gender {
        if g != info.gender {
            return Err(FieldError::new(
                field,
                FieldErrorKind::IdNumberGenderMismatch,
            ));
        }
    }
    Ok(info)
}

/// Normalise a phone number as typed: full-width digits, spaces, hyphens and a
/// `+86` prefix. Landlines keep one hyphen after the area code (`0851-82345678`).
pub fn normalize_phone(raw: &str) -> String {
    let s = normalize_text(raw);
    let mut digits: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '(' && *c != ')')
        .collect();
    if let Some(rest) = digits.strip_prefix("+86") {
        digits = rest.to_string();
    } else if digits.len() == 13 && digits.starts_with("86") && digits[2..].starts_with('1') {
        digits = digits[2..].to_string();
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return s;
    }
    if digits.starts_with('0') {
        // 010 and 02x are three-digit area codes; every other one has four.
        let area = if digits.starts_with("01") || digits.starts_with("02") {
            3
        } else {
            4
        };
        if digits.len() > area {
            return format!("{}-{}", &digits[..area], &digits[area..]);
        }
    }
    digits
}

/// Check a normalised phone number: a mobile (`1[3-9]` + 9 digits) or a
/// landline (`0` + area code, a hyphen, 7–8 digits not starting with 0 or 1).
pub fn check_phone(field: &str, phone: &str) -> Result<(), FieldError> {
    let b = phone.as_bytes();
    let mobile = b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit);
    let landline = phone.split_once('-').is_some_and(|(area, num)| {
        area.len() >= 3
            && area.len() <= 4
            && area.starts_with('0')
            && area.bytes().all(|c| c.is_ascii_digit())
            && (7..=8).contains(&num.len())
            && num.bytes().all(|c| c.is_ascii_digit())
            && !num.starts_with('0')
            && !num.starts_with('1')
    });
    if mobile || landline {
        Ok(())
    } else {
        Err(FieldError::new(field, FieldErrorKind::PhoneInvalid))
    }
}

/// "Today" where the users are: China Standard Time (UTC+8).
pub fn today_cst() -> NaiveDate {
    let now = Utc::now();
    FixedOffset::east_opt(8 * 3600)
        .map(|cst| now.with_timezone(&cst).date_naive())
        .unwrap_or_else(|| now.date_naive())
}

/// A date that cannot lie in the future (birth, visit, aid...).
pub fn check_not_future(field: &str, date: NaiveDate, today: NaiveDate) -> Result<(), FieldError> {
    if date > today {
        return Err(FieldError::new(
            field,
            FieldErrorKind::DateInFuture { date },
        ));
    }
    if date.year() < 1900 {
        return Err(FieldError::new(
            field,
            FieldErrorKind::DateTooEarly { date },
        ));
    }
    Ok(())
}

/// A money amount in fen.
pub fn check_amount(field: &str, fen: i64) -> Result<(), FieldError> {
    if fen < 0 {
        Err(FieldError::new(field, FieldErrorKind::AmountNegative))
    } else {
        Ok(())
    }
}

/// Parse a yuan amount as typed (`12.5`, `１２．５０`, `¥1,200.00`) into fen,
/// exactly (no floating point).
pub fn parse_yuan(raw: &str) -> Option<i64> {
    let s: String = normalize_text(raw)
        .replace('．', ".")
        .chars()
        .filter(|c| !matches!(c, ',' | '，' | '¥' | '￥' | ' ') && *c != '元')
        .collect();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.as_str()),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 2
    {
        return None;
    }
    let yuan: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut fen: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    if frac.len() == 1 {
        fen *= 10;
    }
    let total = yuan.checked_mul(100)?.checked_add(fen)?;
    Some(if neg { -total } else { total })
}

/// `123456` fen → `1234.56`.
pub fn format_yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let a = fen.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

/// A required text field.
pub fn check_required(field: &str, s: &str) -> Result<(), FieldError> {
    if s.trim().is_empty() {
        Err(FieldError::new(field, FieldErrorKind::Required))
    } else {
        Ok(())
    }
}

/// A text field with a maximum length in characters.
pub fn check_len(field: &str, s: &str, max: usize) -> Result<(), FieldError> {
    if s.chars().count() > max {
        Err(FieldError::new(field, FieldErrorKind::TooLong { max }))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    /// Builds a valid ID from a region, a birth date and a sequence code.
    fn make_id(region: &str, birth: &str, seq: &str) -> String {
        let first17 = format!("{region}{birth}{seq}");
        let c = id_check_char(first17.as_bytes()).unwrap_or('?');
        format!("{first17}{c}")
    }

    #[test]
    fn id_numbers_table() {
        // A well-known sample number (GB 11643 appendix): check digit X.
        let x = "11010519491231002X";
        assert_eq!(
            check_id_number("id", x).map(|i| (i.birth_date, i.gender)),
            Ok((d(1949, 12, 31), Gender::Female))
        );
        let lower = normalize_id_number(" 11010519491231002x ");
        assert_eq!(lower, x);
        let fullwidth = normalize_id_number("１１０１０５１９４９１２３１００２Ｘ");
        assert_eq!(fullwidth, x);

        let boy = make_id("520502", "20150301", "001");
        let info = check_id_number("id", &boy);
        assert_eq!(
            info.map(|i| i.gender),
            Ok(Gender::Male),
            "odd 17th digit is male"
        );

        let cases: Vec<(String, &str)> = vec![
            ("110105194912310021".into(), "id_number.checksum"),
            ("11010519491231002".into(), "id_number.length"),
            ("110105491231002".into(), "id_number.legacy_15"),
            ("1101051949123100AX".into(), "id_number.characters"),
            (make_id("990105", "20150301", "001"), "id_number.region"),
            (
                make_id("520502", "20150230", "002"),
                "id_number.birth_date_invalid",
            ),
            (
                make_id("520502", "20151301", "002"),
                "id_number.birth_date_invalid",
            ),
            (
                make_id("520502", "18991231", "002"),
                "id_number.birth_date_invalid",
            ),
        ];
        for (id, code) in cases {
            let r = check_id_number("id", &id);
            assert_eq!(r.map_err(|e| e.code()).err(), Some(code), "{id}");
        }
    }

    #[test]
    fn id_number_agrees_with_card() {
        let girl = make_id("520502", "20160229", "002");
        assert!(
            check_id_number_for("id", &girl, Some(d(2016, 2, 29)), Some(Gender::Female)).is_ok()
        );
        let e = check_id_number_for("id", &girl, Some(d(2016, 3, 1)), None);
        assert_eq!(
            e.map_err(|e| e.code()).err(),
            Some("id_number.birth_date_mismatch")
        );
        let e = check_id_number_for("id", &girl, None, Some(Gender::Male));
        assert_eq!(
            e.map_err(|e| e.code()).err(),
            Some("id_number.gender_mismatch")
        );
    }

    #[test]
    fn checksum_message_is_specific_chinese() {
        let e = check_id_number("id_number", "110105194912310021");
        let msg = e
            .map(|_| String::new())
            .unwrap_or_else(|e| e.message(crate::Lang::ZhCn));
        assert!(msg.contains("第18位校验码不正确"), "{msg}");
        assert!(msg.contains("身份证号"), "{msg}");
    }

    #[test]
    fn phones_table() {
        let ok = [
            (" 13812345678 ", "13812345678"),
            ("１３８１２３４５６７８", "13812345678"),
            ("138 1234 5678", "13812345678"),
            ("+86 138-1234-5678", "13812345678"),
            ("0851-82345678", "0851-82345678"),
            ("085182345678", "0851-82345678"),
            ("010-6512345", "010-6512345"),
            ("(0851) 8123456", "0851-8123456"),
        ];
        for (raw, norm) in ok {
            let n = normalize_phone(raw);
            assert_eq!(n, norm, "{raw}");
            assert!(check_phone("p", &n).is_ok(), "{raw}");
        }
        for bad in [
            "12812345678",
            "1381234567",
            "138123456789",
            "0851-0123456",
            "abc",
            "0851-123",
        ] {
            let n = normalize_phone(bad);
            assert!(check_phone("p", &n).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_and_money() {
        let today = d(2026, 11, 28);
        assert!(check_not_future("d", today, today).is_ok());
        assert_eq!(
            check_not_future("d", d(2026, 11, 29), today).map_err(|e| e.code()),
            Err("date.in_future")
        );
        assert_eq!(parse_yuan("12.5"), Some(1250));
        assert_eq!(parse_yuan("¥1,200.05"), Some(120005));
        assert_eq!(parse_yuan("１２．５０"), Some(1250));
        assert_eq!(parse_yuan("3元"), Some(300));
        assert_eq!(parse_yuan("1.234"), None);
        assert_eq!(parse_yuan("abc"), None);
        assert_eq!(format_yuan(120005), "1200.05");
        assert!(check_amount("a", -1).is_err());
    }
}
