//! Two surfaces side by side: what was added, and what breaks.

use crate::surface::{Member, Surface};

/// The differences between an old and a new surface.
#[derive(Debug, Default)]
pub struct Report {
    /// One line per breaking change, saying what and where.
    pub breaking: Vec<String>,
    /// Paths of new items that break nobody.
    pub added: Vec<String>,
}

/// Compares the surface users built against (`old`) with the one they would get (`new`).
pub fn compare(old: &Surface, new: &Surface) -> Report {
    let mut report = Report::default();
    for (path, was) in old {
        match new.get(path) {
            None => report.breaking.push(format!("removed: {path}")),
            Some(now) if now.sig != was.sig => report.breaking.push(format!(
                "changed: {path}\n      was: {}\n      now: {}",
                was.sig, now.sig
            )),
            Some(now) if was.closed && !now.closed => report.breaking.push(format!(
                "no longer exhaustive: {path} (#[non_exhaustive], a private field or a hidden variant was added)"
            )),
            Some(_) => {}
        }
    }
    for (path, now) in new {
        if old.contains_key(path) {
            continue;
        }
        let closed_parent = now
            .parent
            .as_ref()
            .and_then(|p| old.get(p))
            .is_some_and(|p| p.closed);
        let what = match now.member {
            Member::Field => "a field added to a struct users can build with a literal",
            Member::Variant => "a variant added to an enum users can match exhaustively",
            Member::Required => "an item without a default added to a trait users implement",
            Member::Item | Member::Provided => "",
        };
        if closed_parent && !what.is_empty() {
            report.breaking.push(format!("{what}: {path}"));
        } else {
            report.added.push(path.clone());
        }
    }
    report
}
