//! The demo county, offered (never forced) on an empty laptop's set-up
//! screen (`account::Account::use_demo`).

use serde::Serialize;
use shouhu_core::EntityKind;
use shouhu_demo::DemoSpec;

use crate::{Error, Result, Store};

fn is_empty(store: &Store) -> Result<bool> {
    Ok(store.count(EntityKind::Child)? == 0 && store.count(EntityKind::School)? == 0)
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct DemoProgress {
    pub children: usize,
    pub children_total: usize,
    pub records: usize,
    /// 0 to 1.
    pub fraction: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DemoDone {
    pub children: usize,
    pub records: usize,
}

/// Fill an empty store with the demo county, reporting progress per batch.
/// Its psychological notes stay plain: use [`generate_demo_sealed`] where
/// they may leave the laptop.
pub fn generate_demo(
    store: &mut Store,
    spec: &DemoSpec,
    progress: &mut dyn FnMut(DemoProgress),
) -> Result<DemoDone> {
    generate_demo_sealed(store, spec, progress, &[])
}

/// [`generate_demo`] with every psychological note sealed for `readers` as
/// it is generated (none is stored or logged in plain). No readers: plain.
pub fn generate_demo_sealed(
    store: &mut Store,
    spec: &DemoSpec,
    progress: &mut dyn FnMut(DemoProgress),
    readers: &[(uuid::Uuid, shouhu_auth::ReaderPublicKey)],
) -> Result<DemoDone> {
    if !is_empty(store)? {
        return Err(Error::NotEmpty);
    }
    let mut progress = |p: shouhu_demo::Progress| {
        progress(DemoProgress {
            children: p.children,
            children_total: p.children_total,
            records: p.records,
            fraction: p.fraction(),
        })
    };
    let mut seal =
        |id: uuid::Uuid, note: shouhu_core::PsychNote| -> Result<shouhu_core::PsychNote> {
            if readers.is_empty() {
                return Ok(note);
            }
            let sealed = shouhu_auth::note::seal_value(id, &note.content(), readers)?;
            Ok(note.into_sealed(sealed))
        };
    let report = shouhu_demo::generate_with(store, spec, &mut progress, &mut seal)?;
    Ok(DemoDone {
        children: report.count(EntityKind::Child),
        records: report.total,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testutil;

    #[test]
    fn offered_once_with_progress() {
        let mut s = testutil::store();
        let spec = DemoSpec::bench(60, 100, 7);
        let mut seen = vec![];
        let done = generate_demo(&mut s, &spec, &mut |p| seen.push(p.fraction)).unwrap();
        assert_eq!(done.children, 60);
        assert!(!seen.is_empty());
        assert!((seen.last().copied().unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(
            generate_demo(&mut s, &spec, &mut |_| {})
                .unwrap_err()
                .code(),
            "demo.store_not_empty"
        );
    }
}
