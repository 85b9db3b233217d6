//! Search keys and sort keys for Chinese personal names.
//!
//! Staff look children up by what they can type fastest: part of the name
//! (`三`), its full pinyin (`zhangsan`), or its initials (`zs`), and often
//! on a phone without a Chinese IME at hand. This crate turns a name into
//! the ASCII keys it should be found under, classifies what was typed, and
//! gives a pinyin sort key for lists.
//!
//! * [`name_keys`] / [`KeyBuilder`]: the keys of a name, for prefix search.
//! * [`classify_query`] → [`Query`]: empty, Han substring, pinyin, or
//!   ID-number prefix.
//! * [`sort_key`]: byte-wise comparable key in pinyin order.
//!
//! # Layout
//!
//! * `normalize.rs`: character classes shared by the rest: full-width →
//!   ASCII folding, Han detection, and the split of a name into units (Han
//!   character with readings, Latin letter, other, separator).
//! * `keys.rs`: [`name_keys`] and the reusable [`KeyBuilder`].
//! * `query.rs`: [`classify_query`] and [`Query`].
//! * `sort.rs`: [`sort_key`].
//!
//! # Design
//!
//! * **Readings come from the `pinyin` crate** (its `heteronym` data, from
//!   the pinyin-data project), not from a hand table, so rare characters
//!   are covered and fixes arrive with crate updates. Its data has every
//!   surname reading we checked (单 shàn, 曾 zēng, 解 xiè, 区 ōu, 仇 qiú,
//!   查 zhā, 朴 piáo, 尉 yù, 万俟 mòqí, 长孙 zhǎngsūn, 乐 yuè, 覃 qín, 缪 miào,
//!   翟 zhái, 盖 gě, …), so there is no surname supplement; the tests pin
//!   those readings so a data change that drops one fails loudly.
//! * **Polyphones are indexed under several readings, not guessed.** A
//!   name's reading cannot be known from its characters (a surname often
//!   takes the rare one), so every reading of the first character and the
//!   most common combinations of the others are indexed, capped at
//!   [`MAX_READING_COMBINATIONS`]. Extra keys cost little; a child who
//!   cannot be found costs a lot.
//! * **Suffix keys instead of substring search on pinyin.** Keys for every
//!   suffix (`san` for 张三) let the given name be found with an ordinary
//!   prefix index, without scanning all rows.
//! * **Sort keys are plain strings** that order correctly under byte-wise
//!   comparison, so SQLite can `ORDER BY` them with its default collation.
//! * **No panics on input**: every function is total over `&str`.
//! * **Cheap enough to run on every insert**: about 1 µs for a typical
//!   name, ~5 µs at worst (cap reached); see the cost notes on
//!   [`KeyBuilder`]. Bulk loads should reuse one [`KeyBuilder`].

mod keys;
mod normalize;
mod query;
mod sort;

pub use keys::{name_keys, KeyBuilder, Keys, MAX_READING_COMBINATIONS, MAX_SYLLABLES};
pub use query::{classify_query, Query, ID_LEN, MIN_ID_PREFIX_LEN};
pub use sort::sort_key;
