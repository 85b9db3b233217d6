//! Search keys: full pinyin and initials of a name and of each of its suffixes.

use std::cell::RefCell;

use crate::normalize::{ascii_spelling, push_ascii_syllable, unit, Unit};

/// At most this many reading combinations are indexed per name.
///
/// Every reading of the *first* character (the surname, where the rare
/// readings live: 单 shàn, 曾 zēng, 解 xiè, …) is always indexed; the budget
/// left is spent on rarer readings of the other characters, fewest rare
/// readings first. See [`KeyBuilder`] for the exact order.
pub const MAX_READING_COMBINATIONS: usize = 16;

/// Only the first this many syllables (Han characters or Latin words) of a
/// name are indexed. Real names have at most about 15; the limit keeps the
/// cost of a pathological "name" (a pasted paragraph) bounded, since keys
/// grow with the square of the length.
pub const MAX_SYLLABLES: usize = 24;

/// The lowercase ASCII search keys of `name`, sorted and deduplicated.
///
/// Keys are meant for **prefix** matching (`key LIKE 'q%'`, or a range scan
/// `q <= key < q || '~'` on an index): for every reading combination (see
/// [`MAX_READING_COMBINATIONS`]) and every suffix of the name starting at a
/// syllable boundary it yields
///
/// * the full pinyin: 张三 → `zhangsan`, `san`;
/// * the initials, one letter per syllable: `zs`, `s`;
/// * the initials with `zh`/`ch`/`sh` kept whole, when that differs: `zhs`.
///   Both habits are common, so `zs` and `zhs` both find 张三 (and `zhsh`
///   finds 张珊); mixtures such as `zsh` do not.
///
/// So `zhang`, `zhangs`, `san`, `sa`, `zs`, `s` all find 张三 by prefix.
/// Mixing full syllables and initials across syllables (`zhangs` works
/// because it is a prefix; `zsan` does not) is not supported.
///
/// Normalisation: full-width letters fold to ASCII; a run of Latin letters
/// (`Anna`, `ＡＮＮＡ`) is one lowercased syllable; whitespace, `·` and
/// punctuation only separate syllables; digits, Han characters missing from
/// the pinyin data and other scripts are skipped (a name that has them is
/// still found by substring search on the name itself). `ü` is spelt both
/// `v` (IME habit) and `u`: 吕 → `lv`, `lu`.
///
/// For bulk work use a [`KeyBuilder`], which reuses its buffers; this
/// function uses a thread-local one and allocates only the returned strings.
#[must_use]
pub fn name_keys(name: &str) -> Vec<String> {
    thread_local! {
        static BUILDER: RefCell<KeyBuilder> = RefCell::new(KeyBuilder::new());
    }
    BUILDER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut builder) => builder.keys(name).map(str::to_owned).collect(),
        // Unreachable (no re-entrancy), but never panic on it.
        Err(_) => KeyBuilder::new().keys(name).map(str::to_owned).collect(),
    })
}

/// One way of reading a syllable.
#[derive(Clone, Copy, Debug)]
enum Reading {
    /// A plain pinyin syllable from the `pinyin` crate; `u_for_umlaut`
    /// spells its `ü` as `u` instead of `v`.
    Han {
        plain: &'static str,
        u_for_umlaut: bool,
    },
    /// A lowercased Latin word: `start..end` in [`KeyBuilder::latin`].
    Latin { start: u32, end: u32 },
}

/// A reusable, allocation-free (once warm) generator of name keys.
///
/// ```
/// let mut builder = shouhu_namekeys::KeyBuilder::new();
/// let keys: Vec<&str> = builder.keys("张三").collect();
/// assert_eq!(keys, ["s", "san", "zhangsan", "zhs", "zs"]);
/// ```
///
/// # Reading combinations
///
/// Each character's readings come in the `pinyin` crate's order (its most
/// common reading first), toneless and deduplicated (解 jiě/jiè/xiè →
/// `jie`, `xie`), followed by the `u` spelling of any `ü` reading. A
/// combination picks one reading per syllable; its *rank* is the sum of the
/// reading indices of every syllable but the first. Combinations are taken
/// by increasing rank, then lexicographically by the indices of syllables
/// 2.., then by the first syllable's index, until
/// [`MAX_READING_COMBINATIONS`] are taken. Rank 0 holds every reading of
/// the first character, so surnames are always found under each reading.
///
/// # Cost
///
/// Measured on the 2-core dev machine (release build, warm builder; see
/// the ignored test `bench_name_keys`, numbers vary ±30% with load):
/// ~0.2 µs for 张三 (one reading per character); 0.5–1.5 µs for typical
/// names with a polyphonic character (most have one: even 王 has a rare
/// `yu`); ~5 µs for names dense in polyphones that hit the cap (买买提·艾力,
/// 朴那那那那). 40,000 mixed names take ~40–60 ms. [`name_keys`] adds about
/// 0.1–0.3 µs for the returned `String`s. Per name the work is one
/// pinyin-table lookup per character, `O(combinations × syllables)` bytes
/// written into a reused buffer, and a sort of the few dozen key spans,
/// which dominates.
#[derive(Debug, Default)]
pub struct KeyBuilder {
    /// Every reading of every syllable, syllable after syllable.
    readings: Vec<Reading>,
    /// `syllables[i]..syllables[i + 1]` indexes `readings` for syllable `i`.
    syllables: Vec<u32>,
    /// Lowercased ASCII letters of the Latin words of the current name.
    latin: String,
    /// Reading index per syllable of the combination being emitted.
    choice: Vec<u8>,
    /// `slack[i]`: the largest rank syllables `i..` can add.
    slack: Vec<u32>,
    /// Byte offset in `text` where each syllable starts, per emitted string.
    starts: Vec<u32>,
    /// All key text of the current name, back to back.
    text: String,
    /// Keys as `start..end` byte ranges of `text`.
    spans: Vec<(u32, u32)>,
}

/// The keys of one name, sorted and deduplicated, borrowed from a
/// [`KeyBuilder`].
#[derive(Clone, Debug)]
pub struct Keys<'a> {
    text: &'a str,
    spans: std::slice::Iter<'a, (u32, u32)>,
}

impl<'a> Iterator for Keys<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let &(start, end) = self.spans.next()?;
        self.text.get(start as usize..end as usize)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.spans.size_hint()
    }
}

impl ExactSizeIterator for Keys<'_> {}

impl KeyBuilder {
    /// An empty builder; its buffers grow to fit the longest name seen.
    pub fn new() -> Self {
        Self::default()
    }

    /// The search keys of `name`, as documented on [`name_keys`].
    #[must_use = "the keys are the only result"]
    pub fn keys(&mut self, name: &str) -> Keys<'_> {
        self.parse(name);
        self.text.clear();
        self.spans.clear();
        let n = self.syllable_count();
        if n > 0 {
            self.emit_combinations(n);
            let text = self.text.as_bytes();
            let key = |&(s, e): &(u32, u32)| &text[s as usize..e as usize];
            self.spans.sort_unstable_by(|a, b| key(a).cmp(key(b)));
            self.spans.dedup_by(|a, b| key(a) == key(b));
        }
        Keys {
            text: &self.text,
            spans: self.spans.iter(),
        }
    }

    fn syllable_count(&self) -> usize {
        self.syllables.len().saturating_sub(1)
    }

    fn readings_of(&self, syllable: usize) -> &[Reading] {
        let start = self.syllables[syllable] as usize;
        let end = self.syllables[syllable + 1] as usize;
        &self.readings[start..end]
    }

    /// Splits `name` into syllables and collects their readings.
    fn parse(&mut self, name: &str) {
        self.readings.clear();
        self.syllables.clear();
        self.latin.clear();
        self.syllables.push(0);
        let mut latin_start: Option<u32> = None;
        for c in name.chars() {
            let u = unit(c);
            if let Unit::Letter(b) = u {
                if latin_start.is_none() {
                    if self.syllable_count() == MAX_SYLLABLES {
                        return;
                    }
                    latin_start = Some(self.latin.len() as u32);
                }
                self.latin.push(char::from(b));
                continue;
            }
            if let Some(start) = latin_start.take() {
                self.push_latin(start);
            }
            if let Unit::Han(multi) = u {
                if self.syllable_count() == MAX_SYLLABLES {
                    return;
                }
                let first = self.readings.len();
                for pinyin in multi {
                    let plain = pinyin.plain();
                    self.push_reading(first, plain, false);
                }
                // The `u` spelling of `ü` readings goes after every real
                // reading: `lv` is the canonical input, `lu` a fallback.
                for i in first..self.readings.len() {
                    if let Reading::Han { plain, .. } = self.readings[i] {
                        if plain.contains('ü') {
                            self.push_reading(first, plain, true);
                        }
                    }
                }
                // A character whose every reading is empty is skipped.
                if self.readings.len() > first {
                    self.syllables.push(self.readings.len() as u32);
                }
            }
        }
        if let Some(start) = latin_start {
            self.push_latin(start);
        }
    }

    fn push_latin(&mut self, start: u32) {
        let end = self.latin.len() as u32;
        self.readings.push(Reading::Latin { start, end });
        self.syllables.push(self.readings.len() as u32);
    }

    /// Adds a reading to the syllable whose readings start at `first`,
    /// unless one already spells the same (tones are dropped, so 解 jiě and
    /// jiè are one key).
    fn push_reading(&mut self, first: usize, plain: &'static str, u_for_umlaut: bool) {
        let duplicate = self.readings[first..].iter().any(|r| match *r {
            Reading::Han {
                plain: p,
                u_for_umlaut: u,
            } => same_spelling(p, u, plain, u_for_umlaut),
            Reading::Latin { .. } => false,
        });
        if !duplicate && !plain.is_empty() {
            self.readings.push(Reading::Han {
                plain,
                u_for_umlaut,
            });
        }
    }

    /// Emits the keys of up to [`MAX_READING_COMBINATIONS`] combinations in
    /// the order documented on [`KeyBuilder`].
    fn emit_combinations(&mut self, n: usize) {
        self.choice.clear();
        self.choice.resize(n, 0);
        self.slack.clear();
        self.slack.resize(n + 1, 0);
        for i in (1..n).rev() {
            let extra = self.readings_of(i).len().saturating_sub(1) as u32;
            self.slack[i] = self.slack[i + 1] + extra;
        }
        let mut emitted = 0;
        for rank in 0..=self.slack[1.min(n)] {
            if self.emit_rank(1, rank, n, &mut emitted) {
                return;
            }
        }
    }

    /// Emits every combination whose syllables `pos..` add exactly `rank`,
    /// with `choice[1..pos]` fixed. Returns `true` once the cap is reached.
    fn emit_rank(&mut self, pos: usize, rank: u32, n: usize, emitted: &mut usize) -> bool {
        if pos >= n {
            let surname_readings = self.readings_of(0).len();
            for k in 0..surname_readings {
                self.choice[0] = k as u8;
                // Suffixes without the first syllable repeat those of k = 0.
                self.emit_choice(n, k > 0);
                *emitted += 1;
                if *emitted == MAX_READING_COMBINATIONS {
                    return true;
                }
            }
            return false;
        }
        let max_here = (self.readings_of(pos).len() as u32 - 1).min(rank);
        for v in 0..=max_here {
            if rank - v > self.slack[pos + 1] {
                continue;
            }
            self.choice[pos] = v as u8;
            if self.emit_rank(pos + 1, rank - v, n, emitted) {
                return true;
            }
        }
        false
    }

    /// Writes the full pinyin, initials and (if different) `zh`/`ch`/`sh`
    /// initials of the current choice, and records every suffix as a key
    /// (only the whole name if `whole_only`).
    fn emit_choice(&mut self, n: usize, whole_only: bool) {
        for pass in [Pass::Full, Pass::Initials, Pass::Digraphs] {
            self.starts.clear();
            let mut has_digraph = false;
            for i in 0..n {
                self.starts.push(self.text.len() as u32);
                let reading = self.readings_of(i)[usize::from(self.choice[i])];
                let mark = self.text.len();
                match reading {
                    Reading::Han {
                        plain,
                        u_for_umlaut,
                    } => push_ascii_syllable(&mut self.text, plain, u_for_umlaut),
                    Reading::Latin { start, end } => self
                        .text
                        .push_str(self.latin.get(start as usize..end as usize).unwrap_or("")),
                }
                match pass {
                    Pass::Full => {}
                    Pass::Initials => self.text.truncate((mark + 1).min(self.text.len())),
                    Pass::Digraphs => {
                        let digraph = matches!(reading, Reading::Han { .. })
                            && matches!(
                                self.text.as_bytes().get(mark..mark + 2),
                                Some([b'z' | b'c' | b's', b'h'])
                            );
                        has_digraph |= digraph;
                        let keep = if digraph { 2 } else { 1 };
                        self.text.truncate((mark + keep).min(self.text.len()));
                    }
                }
            }
            if pass == Pass::Digraphs && !has_digraph {
                // Identical to the initials: drop the text, record nothing.
                if let Some(&start) = self.starts.first() {
                    self.text.truncate(start as usize);
                }
                continue;
            }
            let end = self.text.len() as u32;
            let suffixes = if whole_only { 1 } else { n };
            for &start in &self.starts[..suffixes] {
                if start < end {
                    self.spans.push((start, end));
                }
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Full,
    Initials,
    Digraphs,
}

/// Whether two plain syllables have the same ASCII spelling.
fn same_spelling(a: &str, a_u: bool, b: &str, b_u: bool) -> bool {
    a == b && a_u == b_u || ascii_spelling(a, a_u).eq(ascii_spelling(b, b_u))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinyin::ToPinyinMulti;

    fn has(keys: &[String], wanted: &[&str]) -> Result<(), String> {
        let missing: Vec<&&str> = wanted
            .iter()
            .filter(|w| !keys.iter().any(|k| k == *w))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("missing {missing:?} in {keys:?}"))
        }
    }

    #[track_caller]
    fn assert_has(name: &str, wanted: &[&str]) {
        if let Err(e) = has(&name_keys(name), wanted) {
            panic!("{name}: {e}");
        }
    }

    #[test]
    fn zhang_san() {
        assert_eq!(name_keys("张三"), ["s", "san", "zhangsan", "zhs", "zs"]);
    }

    #[test]
    fn digraph_initials_only_when_different() {
        assert_eq!(name_keys("李四"), ["lisi", "ls", "s", "si"]);
        // 张珊: all-digraph initials `zhsh` (so `zhs` finds it by prefix).
        assert_has("张珊", &["zs", "zhsh", "shan", "sh", "s"]);
        assert_has("陈志", &["cz", "chzh", "zhi", "zh"]);
    }

    /// The surname readings the brief calls out (and a few more) are in the
    /// `pinyin` crate's data. If an update drops one, add a first-character
    /// supplement rather than silently losing those children.
    #[test]
    fn crate_data_has_surname_readings() {
        let surname_readings = [
            ('单', "shan"),
            ('单', "dan"),
            ('单', "chan"), // 单于
            ('曾', "zeng"),
            ('曾', "ceng"),
            ('解', "xie"),
            ('解', "jie"),
            ('区', "ou"),
            ('区', "qu"),
            ('仇', "qiu"),
            ('仇', "chou"),
            ('查', "zha"),
            ('查', "cha"),
            ('朴', "piao"),
            ('朴', "pu"),
            ('尉', "yu"), // 尉迟
            ('尉', "wei"),
            ('万', "mo"), // 万俟
            ('俟', "qi"),
            ('长', "zhang"), // 长孙
            ('乐', "yue"),
            ('覃', "qin"),
            ('缪', "miao"),
            ('翟', "zhai"),
            ('盖', "ge"),
            ('召', "shao"),
            ('秘', "bi"),
            ('种', "chong"),
            ('繁', "po"),
            ('员', "yun"),
            ('粘', "nian"),
            ('乜', "nie"),
            ('牟', "mou"),
        ];
        for (c, reading) in surname_readings {
            let found = c
                .to_pinyin_multi()
                .is_some_and(|m| m.into_iter().any(|p| p.plain() == reading));
            assert!(found, "pinyin data lacks {c} {reading}");
        }
    }

    #[test]
    fn polyphonic_surnames_found_under_every_reading() {
        let cases: &[(&str, &[&str])] = &[
            (
                "单田芳",
                &[
                    "shantianfang",
                    "dantianfang",
                    "stf",
                    "dtf",
                    "tianfang",
                    "tf",
                ],
            ),
            (
                "曾小贤",
                &["zengxiaoxian", "cengxiaoxian", "zxx", "cxx", "xiaoxian"],
            ),
            ("解晓东", &["xiexiaodong", "jiexiaodong", "xxd", "jxd"]),
            (
                "区志强",
                &["ouzhiqiang", "quzhiqiang", "ozq", "qzq", "zhiqiang"],
            ),
            ("仇晓", &["qiuxiao", "chouxiao", "qx", "cx", "chx"]),
            ("查良镛", &["zhaliangyong", "chaliangyong", "zly", "cly"]),
            ("朴树", &["piaoshu", "pushu", "ps", "psh", "shu"]),
            (
                "尉迟恭",
                &["yuchigong", "weichigong", "ycg", "wcg", "chigong", "gong"],
            ),
            ("万俟卨", &["moqixie", "wanqixie", "mqx", "wqx"]),
        ];
        for (name, wanted) in cases {
            assert_has(name, wanted);
        }
    }

    #[test]
    fn surname_readings_survive_the_cap() {
        // 那 has five distinct toneless readings; four of them would give
        // 3 × 5⁴ combinations, far over the cap. Every surname reading stays.
        let keys = name_keys("朴那那那那");
        has(
            &keys,
            &["punananana", "piaonananana", "ponananana", "pnnnn"],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        // Full-name keys start with the surname's `p`; suffixes with `n`.
        let full = keys.iter().filter(|k| k.starts_with('p') && k.len() > 5);
        assert_eq!(full.count(), MAX_READING_COMBINATIONS, "{keys:?}");
        // Rank 1 (one rarer given-name reading) comes before rank 2.
        assert_has(
            "朴那那那那",
            &["punanananuo", "piaonanuonana", "punanananei"],
        );
    }

    #[test]
    fn given_name_polyphones_within_the_cap() {
        // 乐 lè/yuè: both readings of a given-name character are indexed.
        assert_has(
            "单乐",
            &["danle", "danyue", "shanle", "shanyue", "le", "yue", "y"],
        );
    }

    #[test]
    fn suffix_keys_ouyang_nana() {
        assert_has(
            "欧阳娜娜",
            &[
                "ouyangnana",
                "yangnana",
                "nana",
                "na",
                "oynn",
                "ynn",
                "nn",
                "n",
                // 娜 is also nuó
                "ouyangnuonuo",
                "nuonuo",
                "nuo",
            ],
        );
        assert!(!name_keys("欧阳娜娜").iter().any(|k| k == "ouyang"));
    }

    #[test]
    fn mixed_script_and_interpunct() {
        assert_has(
            "买买提·艾力",
            &[
                "maimaitiaili",
                "maitiaili",
                "tiaili",
                "aili",
                "li",
                "mmtal",
                "al",
                "l",
            ],
        );
        assert!(!name_keys("买买提·艾力").iter().any(|k| k.contains('·')));
        assert_eq!(name_keys("李Anna"), ["a", "anna", "la", "lianna"]);
        assert_eq!(name_keys("ＬＩ　Ｎａ"), name_keys("li na"));
        assert_eq!(name_keys("Mary Jane"), ["j", "jane", "maryjane", "mj"]);
        assert_eq!(name_keys("王2号"), name_keys("王号"));
        assert_eq!(name_keys("阿卜杜拉•阿不都"), name_keys("阿卜杜拉·阿不都"));
    }

    #[test]
    fn umlaut_spelt_v_and_u() {
        assert_eq!(name_keys("吕"), ["l", "lu", "lv"]);
        assert_has("吕布", &["lvbu", "lubu", "lb"]);
    }

    #[test]
    fn nothing_to_index() {
        for name in ["", "   ", "·", "123", "김민준", "\u{E000}"] {
            assert!(name_keys(name).is_empty(), "{name:?}");
        }
    }

    #[test]
    fn keys_are_sorted_unique_lowercase_ascii() {
        for name in [
            "张三",
            "欧阳娜娜",
            "买买提·艾力",
            "朴那那那那",
            "Ｏ'Neil 吕",
            "单单单单单单",
        ] {
            let keys = name_keys(name);
            assert!(!keys.is_empty());
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "{name}: {keys:?}");
            assert!(
                keys.iter()
                    .all(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase())),
                "{name}: {keys:?}"
            );
        }
    }

    #[test]
    fn builder_reuse_matches_fresh_builder() {
        let mut builder = KeyBuilder::new();
        for name in ["欧阳娜娜", "张三", "", "买买提·艾力", "吕", "张三"] {
            let reused: Vec<String> = builder.keys(name).map(str::to_owned).collect();
            let fresh: Vec<String> = KeyBuilder::new().keys(name).map(str::to_owned).collect();
            assert_eq!(reused, fresh, "{name}");
            assert_eq!(builder.keys(name).len(), fresh.len());
        }
    }

    #[test]
    fn long_input_is_bounded() {
        let long = "张".repeat(10_000);
        let keys = name_keys(&long);
        assert!(keys
            .iter()
            .all(|k| k.len() <= MAX_SYLLABLES * "zhang".len()));
        assert!(keys.iter().any(|k| k == &"zhang".repeat(MAX_SYLLABLES)));
    }

    /// Rough cost: `cargo test --release -p shouhu-namekeys -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing, not a check"]
    fn bench_name_keys() {
        let surnames = [
            "张", "王", "李", "欧阳", "单", "曾", "解", "朴", "尉迟", "吕",
        ];
        let given = ["三", "娜娜", "小贤", "志强", "乐", "艾力", "晓东", "伟"];
        let names: Vec<String> = (0..40_000)
            .map(|i| {
                format!(
                    "{}{}",
                    surnames[i % surnames.len()],
                    given[(i / 7) % given.len()]
                )
            })
            .collect();
        let mut builder = KeyBuilder::new();
        let start = std::time::Instant::now();
        let mut total = 0;
        for name in &names {
            total += builder.keys(name).len();
        }
        let warm = start.elapsed();
        let start = std::time::Instant::now();
        for name in &names {
            total += name_keys(name).len();
        }
        let owned = start.elapsed();
        println!(
            "40k names: KeyBuilder {warm:?} ({:.2} µs/name), name_keys {owned:?} ({:.2} µs/name), {} keys/name",
            warm.as_secs_f64() * 1e6 / 40_000.0,
            owned.as_secs_f64() * 1e6 / 40_000.0,
            total / 80_000
        );
    }
}
