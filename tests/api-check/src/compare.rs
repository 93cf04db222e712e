//! Two surfaces side by side: what was added, and what breaks.

use crate::moved::Moves;
use crate::surface::{Member, Surface};

/// The differences between an old and a new surface.
#[derive(Debug, Default)]
pub struct Report {
    /// One line per breaking change, saying what and where.
    pub breaking: Vec<String>,
    /// Paths of new items that break nobody.
    pub added: Vec<String>,
    /// Items that moved to another crate of the family: `old → new`.
    pub moved: Vec<String>,
}

/// Compares the surface users built against (`old`) with the one they would get (`new`).
pub fn compare(old: &Surface, new: &Surface) -> Report {
    compare_moved(old, new, &Moves::default(), &Surface::new())
}

/// [`compare`], where an item missing from `new` is not removed if `moves` says where it
/// went and `family` (the surfaces of the crates it may move to) has it there.
pub fn compare_moved(old: &Surface, new: &Surface, moves: &Moves, family: &Surface) -> Report {
    let mut report = Report::default();
    for (path, was) in old {
        match new.get(path) {
            None => match moves.rewrite(path) {
                Some(to) if family.contains_key(&to) => {
                    report.moved.push(format!("{path} → {to}"))
                }
                Some(to) => report
                    .breaking
                    .push(format!("removed: {path} (not found where it moved: {to})")),
                None => report.breaking.push(format!("removed: {path}")),
            },
            Some(now) if comparable(&now.sig) != comparable(&was.sig) => report.breaking.push(format!(
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

/// What of a signature users depend on: all of it, except a constant's value (its type is
/// the contract; `PLUGIN_API_VERSION` changes with every release).
fn comparable(sig: &str) -> String {
    if let Some(body) = sig.strip_prefix("constant ")
        && let Ok(serde_json::Value::Object(mut item)) = serde_json::from_str(body)
    {
        item.remove("const");
        return format!("constant {}", serde_json::Value::Object(item));
    }
    sig.to_owned()
}
