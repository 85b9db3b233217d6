//! Finding children: by name substring, full pinyin or initials (polyphonic
//! characters under each reading), ID-number or student-number prefix; filtered
//! by school, township, left-behind type, guardianship type and status; sorted
//! and paginated.
//!
//! The children's searchable columns live in the `child` table (name keys are
//! computed once, at write time). Searches run over an in-memory copy of those
//! columns (about 1 KB a child, some 40 MB at 40,000: BENCHMARKS.md): scanning
//! that is a few milliseconds, where SQL `LIKE` over key lists or a key table
//! would cost more per query or per insert. The copy is loaded on the first
//! search from the covering index `child_search` (migration 0006: only the
//! search columns, where the rows also hold each card's JSON), patched
//! after each of this store's own writes, and reloaded when `PRAGMA
//! data_version` shows another connection committed.
//!
//! The entries are kept in name order (`sort_key`, then id), so the default
//! listing takes its page straight from the scan; other orders select and sort
//! only the requested page, comparing borrowed keys.

use serde::{Deserialize, Serialize};
use shouhu_core::{ChildCard, ChildStatus, Gender, GuardianshipType, LeftBehindType};
use shouhu_namekeys::{classify_query, name_keys, sort_key, Query};
use uuid::Uuid;

use crate::error::Result;
use crate::store::Store;

/// The child table's search columns, derived from a card.
pub(crate) struct ChildColumns {
    name: String,
    sort_key: String,
    search_keys: String,
    id_number: Option<String>,
    student_number: String,
    gender: Option<&'static str>,
    township: String,
    grade: String,
    class_name: String,
    lbt: &'static str,
    gt: &'static str,
    status: &'static str,
}

impl ChildColumns {
    pub(crate) fn of(c: &ChildCard) -> Self {
        // Keys joined with a leading space each: " zhangsan zs san s", so a
        // prefix match of any key is `contains(" " + q)`.
        let mut search_keys = String::new();
        for k in name_keys(&c.name) {
            search_keys.push(' ');
            search_keys.push_str(&k);
        }
        ChildColumns {
            name: c.name.clone(),
            sort_key: sort_key(&c.name),
            search_keys,
            id_number: c.id_number.clone(),
            student_number: c.student_number.clone(),
            gender: c.gender.map(gender_str),
            township: c.current_address.township.clone(),
            grade: c.grade.clone(),
            class_name: c.class_name.clone(),
            lbt: enum_str(&c.left_behind_type),
            gt: enum_str(&c.guardianship_type),
            status: enum_str(&c.status),
        }
    }

    pub(crate) fn params(&self) -> Vec<&dyn rusqlite::ToSql> {
        vec![
            &self.name,
            &self.sort_key,
            &self.search_keys,
            &self.id_number,
            &self.student_number,
            &self.gender,
            &self.township,
            &self.grade,
            &self.class_name,
            &self.lbt,
            &self.gt,
            &self.status,
        ]
    }
}

fn gender_str(g: Gender) -> &'static str {
    match g {
        Gender::Male => "male",
        Gender::Female => "female",
    }
}

/// The snake_case name serde gives a unit enum variant.
pub(crate) fn enum_str<T: Serialize>(v: &T) -> &'static str {
    // Unit variants serialise to a string literal; leak-free lookup through a
    // small intern table keeps the columns `&'static str`.
    let s = serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    intern(&s)
}

fn intern(s: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "both_away",
        "father_away",
        "mother_away",
        "father_away_mother_unable",
        "mother_away_father_unable",
        "unattended",
        "parent_incapable",
        "guardian_insufficient",
        "fair",
        "good",
        "active",
        "parents_returned",
        "graduated",
        "transferred",
        "dropped_out",
        "aged_out",
    ];
    KNOWN.iter().copied().find(|k| *k == s).unwrap_or("")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    /// Pinyin order of the name.
    #[default]
    Name,
    BirthDate,
    Grade,
    UpdatedAt,
}

/// A search request. Every filter is optional; `query` may be empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchParams {
    pub query: String,
    pub school_id: Option<Uuid>,
    pub township: Option<String>,
    pub left_behind_type: Option<LeftBehindType>,
    pub guardianship_type: Option<GuardianshipType>,
    pub status: Option<ChildStatus>,
    pub sort: SortBy,
    pub descending: bool,
    pub offset: usize,
    /// 0 means 50.
    pub limit: usize,
}

/// One row of a result list. ID numbers are masked (PIPL: lists never show
/// them whole); the full value is on the card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildSummary {
    pub id: Uuid,
    pub name: String,
    pub gender: Option<String>,
    pub birth_date: Option<String>,
    pub id_number_masked: Option<String>,
    pub school_id: Option<Uuid>,
    pub township: String,
    pub grade: String,
    pub class_name: String,
    pub left_behind_type: String,
    pub guardianship_type: String,
    pub status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchPage {
    pub total: usize,
    pub offset: usize,
    pub items: Vec<ChildSummary>,
    /// How the query was read: `empty`, `name`, `pinyin`, `id_prefix`,
    /// `unsupported` (then `items` is empty and the UI shows a hint).
    pub query_kind: String,
}

/// `520102199001011234` → `5201**********1234`.
pub fn mask_id(id: &str) -> String {
    if id.is_ascii() {
        // ID numbers are ASCII: one allocation (the search index masks
        // every child's at its load).
        if id.len() <= 8 {
            return "*".repeat(id.len());
        }
        let mut out = String::with_capacity(id.len());
        out.push_str(&id[..4]);
        out.extend(std::iter::repeat_n('*', id.len() - 8));
        out.push_str(&id[id.len() - 4..]);
        return out;
    }
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 8))
}

#[derive(Debug, Clone)]
struct Entry {
    id: Uuid,
    summary: ChildSummary,
    sort_key: String,
    search_keys: String,
    name_lower: String,
    id_number: String,
    student_number: String,
    birth_date: String,
    updated_at: String,
    /// The grade order's key, right-aligned grade and class.
    grade_key: String,
    deleted: bool,
}

impl Entry {
    fn name_order(&self, other: &Entry) -> std::cmp::Ordering {
        self.sort_key
            .cmp(&other.sort_key)
            .then(self.id.cmp(&other.id))
    }
}

#[derive(Debug, Default)]
pub(crate) struct SearchIndex {
    data_version: i64,
    entries: Vec<Entry>,
}

const ENTRY_SQL: &str = "SELECT id, name, sort_key, search_keys, id_number, student_number, gender, date, school_id, township, grade, class_name, left_behind_type, guardianship_type, status, updated_at, deleted_at FROM child";

/// The whole load: [`ENTRY_SQL`] through the covering index.
const LOAD_SQL: &str = "SELECT id, name, sort_key, search_keys, id_number, student_number, gender, date, school_id, township, grade, class_name, left_behind_type, guardianship_type, status, updated_at, deleted_at FROM child INDEXED BY child_search";

/// `format!("{grade:>8}{class_name:>8}")` without the formatting machinery
/// (it ran for every child at the index's load).
fn grade_key(grade: &str, class_name: &str) -> String {
    let mut out = String::with_capacity(16 + grade.len() + class_name.len());
    for part in [grade, class_name] {
        out.extend(std::iter::repeat_n(
            ' ',
            8usize.saturating_sub(part.chars().count()),
        ));
        out.push_str(part);
    }
    out
}

fn read_entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Entry>> {
    // Ids are parsed from the borrowed text: no String for them.
    let uuid = |i: usize| -> rusqlite::Result<Option<Uuid>> {
        Ok(r.get_ref(i)?
            .as_str_or_null()
            .map_err(rusqlite::Error::from)?
            .and_then(|s| Uuid::parse_str(s).ok()))
    };
    let Some(id) = uuid(0)? else {
        return Ok(None);
    };
    let name: String = r.get(1)?;
    let id_number: Option<String> = r.get(4)?;
    let school_id = uuid(8)?;
    let birth: Option<String> = r.get(7)?;
    let deleted: Option<String> = r.get(16)?;
    let grade: String = r.get(10)?;
    let class_name: String = r.get(11)?;
    Ok(Some(Entry {
        grade_key: grade_key(&grade, &class_name),
        id,
        name_lower: name.to_lowercase(),
        summary: ChildSummary {
            id,
            name,
            gender: r.get(6)?,
            birth_date: birth.clone(),
            id_number_masked: id_number.as_deref().map(mask_id),
            school_id,
            township: r.get(9)?,
            grade,
            class_name,
            left_behind_type: r.get(12)?,
            guardianship_type: r.get(13)?,
            status: r.get(14)?,
        },
        sort_key: r.get(2)?,
        search_keys: r.get(3)?,
        id_number: id_number.unwrap_or_default(),
        student_number: r.get(5)?,
        birth_date: birth.unwrap_or_default(),
        updated_at: r.get(15)?,
        deleted: deleted.is_some(),
    }))
}

impl Store {
    fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// Make sure the in-memory index reflects the database.
    fn ensure_index(&self) -> Result<()> {
        let dv = self.data_version()?;
        let fresh = matches!(&*self.search.borrow(), Some(ix) if ix.data_version == dv);
        if fresh {
            return Ok(());
        }
        // From the covering index `child_search` (migration 0006), not the
        // rows with their JSON, in id order (sorted below).
        let mut st = self.conn.prepare(LOAD_SQL)?;
        let rows = st.query_map([], read_entry)?;
        // Sized once (rowids only grow; rows go only in a purge): growing a
        // vector of 40,000 entries by doubling copied it over and over.
        let rows_max: i64 =
            self.conn
                .query_row("SELECT COALESCE(MAX(rowid), 0) FROM child", [], |r| {
                    r.get(0)
                })?;
        let mut read = Vec::with_capacity(usize::try_from(rows_max).unwrap_or(0).min(1 << 20));
        for r in rows {
            if let Some(e) = r? {
                read.push(e);
            }
        }
        // Into name order, moving each (large) entry once.
        let mut order: Vec<usize> = (0..read.len()).collect();
        order.sort_unstable_by(|&a, &b| read[a].name_order(&read[b]));
        let mut slots: Vec<Option<Entry>> = read.into_iter().map(Some).collect();
        let mut entries: Vec<Entry> = Vec::with_capacity(order.len());
        entries.extend(order.iter().filter_map(|&i| slots[i].take()));
        *self.search.borrow_mut() = Some(SearchIndex {
            data_version: dv,
            entries,
        });
        Ok(())
    }

    /// After this store's own commit: patch the entries of the children it
    /// wrote (if the index is loaded at all).
    pub(crate) fn refresh_search(&self, touched: &[Uuid]) -> Result<()> {
        if touched.is_empty() || self.search.borrow().is_none() {
            return Ok(());
        }
        let dv = self.data_version()?;
        let mut guard = self.search.borrow_mut();
        let Some(ix) = guard.as_mut() else {
            return Ok(());
        };
        if touched.len() > 1000 {
            // A bulk write: reloading is cheaper than patching.
            *guard = None;
            return Ok(());
        }
        let sql = format!("{ENTRY_SQL} WHERE id = ?1");
        let mut st = self.conn.prepare_cached(&sql)?;
        for id in touched {
            let fresh = st
                .query_row([id.to_string()], read_entry)
                .map_err(crate::StoreError::from)?;
            if let Some(i) = ix.entries.iter().position(|e| e.id == *id) {
                ix.entries.remove(i);
            }
            if let Some(e) = fresh {
                // Keep the name order.
                let at = ix
                    .entries
                    .partition_point(|x| x.name_order(&e) == std::cmp::Ordering::Less);
                ix.entries.insert(at, e);
            }
        }
        // Our own commits do not move data_version; another connection's do,
        // and then the next search reloads.
        let _ = dv;
        Ok(())
    }

    /// Search children. Deleted children are never listed.
    pub fn search_children(&self, p: &SearchParams) -> Result<SearchPage> {
        self.ensure_index()?;
        let guard = self.search.borrow();
        let Some(ix) = guard.as_ref() else {
            return Ok(SearchPage {
                total: 0,
                offset: p.offset,
                items: vec![],
                query_kind: "empty".into(),
            });
        };
        let query = classify_query(&p.query);
        let (kind, needle) = match &query {
            Query::Empty => ("empty", String::new()),
            Query::Name(s) => ("name", s.to_lowercase()),
            Query::Pinyin(s) => ("pinyin", format!(" {s}")),
            Query::IdPrefix(s) => ("id_prefix", s.clone()),
            Query::Unsupported(s) => ("unsupported", s.clone()),
        };
        let text_match = |e: &Entry| match &query {
            Query::Empty => true,
            Query::Name(_) => e.name_lower.contains(&needle),
            Query::Pinyin(_) => e.search_keys.contains(&needle),
            Query::IdPrefix(_) => {
                e.id_number.starts_with(&needle) || e.student_number.starts_with(&needle)
            }
            Query::Unsupported(_) => false,
        };
        let lbt = p.left_behind_type.as_ref().map(enum_str);
        let gt = p.guardianship_type.as_ref().map(enum_str);
        let status = p.status.as_ref().map(enum_str);
        let matches = |e: &&Entry| {
            !e.deleted
                && p.school_id.is_none_or(|s| e.summary.school_id == Some(s))
                && p.township
                    .as_deref()
                    .is_none_or(|t| e.summary.township == t)
                && lbt.is_none_or(|v| e.summary.left_behind_type == v)
                && gt.is_none_or(|v| e.summary.guardianship_type == v)
                && status.is_none_or(|v| e.summary.status == v)
                && text_match(e)
        };
        let limit = if p.limit == 0 { 50 } else { p.limit.min(1000) };
        let (total, page): (usize, Vec<&Entry>) = if p.sort == SortBy::Name {
            // The entries are in name order already: count the hits and keep
            // the requested page's, no sort.
            let mut total = 0;
            let mut page = Vec::with_capacity(limit);
            let ordered: Box<dyn Iterator<Item = &Entry>> = if p.descending {
                Box::new(ix.entries.iter().rev())
            } else {
                Box::new(ix.entries.iter())
            };
            for e in ordered.filter(matches) {
                if total >= p.offset && total < p.offset + limit {
                    page.push(e);
                }
                total += 1;
            }
            (total, page)
        } else {
            let mut hits: Vec<&Entry> = ix.entries.iter().filter(matches).collect();
            let total = hits.len();
            fn primary(sort: SortBy, e: &Entry) -> &str {
                match sort {
                    SortBy::Name => &e.sort_key,
                    SortBy::BirthDate => &e.birth_date,
                    SortBy::Grade => &e.grade_key,
                    SortBy::UpdatedAt => &e.updated_at,
                }
            }
            let end = (p.offset + limit).min(total);
            // Only the requested page needs ordering: select, then sort the page.
            let cmp = |a: &&Entry, b: &&Entry| {
                let o = primary(p.sort, a)
                    .cmp(primary(p.sort, b))
                    .then_with(|| a.name_order(b));
                if p.descending {
                    o.reverse()
                } else {
                    o
                }
            };
            if p.offset < total {
                if end < total {
                    hits.select_nth_unstable_by(end, cmp);
                    hits.truncate(end);
                }
                hits.sort_by(cmp);
            }
            let page = hits.into_iter().skip(p.offset).take(limit).collect();
            (total, page)
        };
        let items = page.iter().map(|e| e.summary.clone()).collect();
        Ok(SearchPage {
            total,
            offset: p.offset,
            items,
            query_kind: kind.to_string(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn grade_keys_right_align_like_format() {
        for (g, c) in [
            ("四年级", "2班"),
            ("", ""),
            ("一二三四五六七八九", "10"),
            ("6", ""),
        ] {
            assert_eq!(grade_key(g, c), format!("{g:>8}{c:>8}"));
        }
    }

    #[test]
    fn masks_ids() {
        assert_eq!(mask_id("520102199001011234"), "5201**********1234");
        assert_eq!(mask_id("52010219900101123X"), "5201**********123X");
        assert_eq!(mask_id("12345678"), "********");
        assert_eq!(mask_id("123456789"), "1234*6789");
        assert_eq!(mask_id("港澳台居民居住证号码"), "港澳台居**住证号码");
    }

    /// The load reads the covering index, never a row.
    #[test]
    fn the_load_reads_the_covering_index() {
        assert!(LOAD_SQL.starts_with(ENTRY_SQL), "the same columns");
        let s = Store::open_in_memory().unwrap();
        let mut st = s
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {LOAD_SQL}"))
            .unwrap();
        let plan: Vec<String> = st
            .query_map([], |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(plan, ["SCAN child USING COVERING INDEX child_search"]);
    }
}
