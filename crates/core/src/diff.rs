//! Field-level diffs of record bodies. A body's *fields* are the dotted paths to its
//! leaves: objects are descended into (`father.phone`), while arrays and scalars
//! are leaves (a list of measures is one field). Two people editing different
//! leaves of one card never touch the same field, which is what lets sync merge
//! them; a change-log entry carries exactly the leaves that changed.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub type Fields = BTreeMap<String, Value>;

/// The leaves of a JSON object, keyed by dotted path.
pub fn flatten(v: &Value) -> Fields {
    let mut out = Fields::new();
    if let Value::Object(m) = v {
        walk(m, &mut String::new(), &mut out);
    }
    out
}

fn walk(m: &Map<String, Value>, prefix: &mut String, out: &mut Fields) {
    for (k, v) in m {
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(k);
        match v {
            Value::Object(inner) if !inner.is_empty() => walk(inner, prefix, out),
            _ => {
                out.insert(prefix.clone(), v.clone());
            }
        }
        prefix.truncate(len);
    }
}

/// The leaves whose value differs from `old` to `new`. A leaf that disappeared
/// (an object replaced by `null`) is reported as the new value at its nearest
/// path in `new`.
pub fn diff(old: &Value, new: &Value) -> Fields {
    let a = flatten(old);
    let b = flatten(new);
    let mut out = Fields::new();
    for (k, v) in &b {
        if a.get(k) != Some(v) {
            out.insert(k.clone(), v.clone());
        }
    }
    for k in a.keys() {
        if !b.contains_key(k) && !out.keys().any(|nk| is_prefix_path(nk, k)) {
            // The leaf vanished without a replacement leaf above it: set null.
            out.insert(k.clone(), Value::Null);
        }
    }
    out
}

fn is_prefix_path(prefix: &str, path: &str) -> bool {
    path.len() > prefix.len()
        && path.starts_with(prefix)
        && path.as_bytes().get(prefix.len()) == Some(&b'.')
}

/// Set `path` in `target` to `value`, creating objects on the way. Applying the
/// fields of a diff of `old → new` to `old` gives `new`.
pub fn set_path(target: &mut Value, path: &str, value: Value) {
    let mut cur = target;
    let mut parts = path.split('.').peekable();
    while let Some(p) = parts.next() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(m) = cur else { return };
        if parts.peek().is_none() {
            m.insert(p.to_string(), value);
            return;
        }
        cur = m.entry(p.to_string()).or_insert(Value::Null);
    }
}

/// The value at `path`, if any.
pub fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, p| cur.get(p))
}

/// Apply fields (shortest paths first, so a replaced parent does not erase a
/// child set in the same patch).
pub fn apply(target: &mut Value, fields: &Fields) {
    let mut keys: Vec<&String> = fields.keys().collect();
    keys.sort_by_key(|k| k.matches('.').count());
    for k in keys {
        if let Some(v) = fields.get(k) {
            set_path(target, k, v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_then_apply_round_trips() {
        let old =
            json!({"name":"张三","father":{"name":"张大","phone":null},"list":[1,2],"x":{"a":1}});
        let new = json!({"name":"张三","father":{"name":"张大","phone":"13812345678"},"list":[1,2,3],"x":null});
        let d = diff(&old, &new);
        assert_eq!(d.get("father.phone"), Some(&json!("13812345678")));
        assert_eq!(d.get("list"), Some(&json!([1, 2, 3])));
        assert_eq!(d.get("x"), Some(&Value::Null));
        assert!(!d.contains_key("name"));
        let mut t = old.clone();
        apply(&mut t, &d);
        assert_eq!(t, new);
    }

    #[test]
    fn object_appearing_from_null() {
        let old = json!({"x":null});
        let new = json!({"x":{"a":1,"b":2}});
        let d = diff(&old, &new);
        let mut t = old.clone();
        apply(&mut t, &d);
        assert_eq!(t, new);
    }
}
