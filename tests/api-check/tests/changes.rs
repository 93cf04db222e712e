//! The checker on real rustdoc output: one small crate before and after a set of changes,
//! each in a module of its own, documented by the toolchain's own rustdoc.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use voicehost_api_check::{Report, Surface, compare, surface};

const OLD: &str = r#"
pub mod same { pub fn f(x: u32) -> u32 { x } pub struct S { pub a: u8 } }
pub mod removed { pub fn gone() {} pub fn kept() {} }
pub mod changed { pub fn f(x: u32) -> u32 { x } }
pub mod fields {
    pub struct Open { pub a: u8 }
    #[non_exhaustive] pub struct Closed { pub a: u8 }
    pub struct Hidden { pub a: u8 }
    pub struct Literal { pub a: u8 }
}
pub mod variants {
    pub enum Open { A }
    #[non_exhaustive] pub enum Closed { A }
}
pub mod traits {
    pub trait Required { fn a(&self); }
    pub trait Provided { fn a(&self); }
}
pub mod auto { pub struct Sendable { pub a: u8 } }
mod inner { pub struct Moved; }
pub use inner::Moved;
pub mod methods { pub struct S; impl S { pub fn new() -> S { S } } }
"#;

const NEW: &str = r#"
pub mod same { pub fn f(x: u32) -> u32 { x + 1 } pub struct S { pub a: u8 } pub fn added() {} }
pub mod removed { pub fn kept() {} }
pub mod changed { pub fn f(x: u64) -> u32 { x as u32 } }
pub mod fields {
    pub struct Open { pub a: u8, pub b: u8 }
    #[non_exhaustive] pub struct Closed { pub a: u8, pub b: u8 }
    pub struct Hidden { pub a: u8, b: u8 }
    #[non_exhaustive] pub struct Literal { pub a: u8 }
}
pub mod variants {
    pub enum Open { A, B }
    #[non_exhaustive] pub enum Closed { A, B }
}
pub mod traits {
    pub trait Required { fn a(&self); fn b(&self); }
    pub trait Provided { fn a(&self); fn b(&self) {} }
}
pub mod auto { pub struct Sendable { pub a: u8, pub b: std::rc::Rc<u8> } }
mod inner { pub struct Moved; }
pub mod methods { pub struct S; impl S { pub fn new() -> S { S } pub fn more(&self) {} } }
"#;

fn doc(dir: &Path, name: &str, source: &str) -> Surface {
    let src = dir.join(format!("{name}.rs"));
    std::fs::write(&src, source).unwrap();
    let rustdoc = std::env::var("RUSTDOC").unwrap_or_else(|_| "rustdoc".to_owned());
    let out = Command::new(rustdoc)
        .env("RUSTC_BOOTSTRAP", "1")
        .args([
            "--edition",
            "2024",
            "--crate-type",
            "lib",
            "--crate-name",
            "demo",
        ])
        .args(["-Z", "unstable-options", "--output-format", "json", "-o"])
        .arg(dir.join(name))
        .arg(&src)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join(name).join("demo.json")).unwrap();
    surface(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn report() -> (Report, Surface) {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (doc(dir.path(), "old", OLD), doc(dir.path(), "new", NEW));
    (compare(&old, &new), old)
}

fn breaks(report: &Report, needle: &str) -> bool {
    report.breaking.iter().any(|b| b.contains(needle))
}

#[test]
fn each_kind_of_change_is_judged() {
    let (r, old) = report();
    for b in &r.breaking {
        eprintln!("breaking: {b}");
    }
    for a in &r.added {
        eprintln!("added: {a}");
    }
    assert!(old.contains_key("demo::same::f"), "{:?}", old.keys());
    // A body change and a new function break nobody.
    assert!(!breaks(&r, "demo::same::"), "{:?}", r.breaking);
    assert!(r.added.contains(&"demo::same::added".to_owned()));
    assert!(breaks(&r, "removed: demo::removed::gone"));
    assert!(!breaks(&r, "demo::removed::kept"));
    assert!(breaks(&r, "changed: demo::changed::f"));
    assert!(breaks(
        &r,
        "a field added to a struct users can build with a literal: demo::fields::Open.b"
    ));
    assert!(r.added.contains(&"demo::fields::Closed.b".to_owned()));
    assert!(breaks(&r, "no longer exhaustive: demo::fields::Hidden"));
    assert!(breaks(&r, "no longer exhaustive: demo::fields::Literal"));
    assert!(breaks(
        &r,
        "a variant added to an enum users can match exhaustively: demo::variants::Open::B"
    ));
    assert!(r.added.contains(&"demo::variants::Closed::B".to_owned()));
    assert!(breaks(
        &r,
        "an item without a default added to a trait users implement: demo::traits::Required::b"
    ));
    assert!(r.added.contains(&"demo::traits::Provided::b".to_owned()));
    assert!(
        breaks(&r, "removed: demo::auto::Sendable: impl"),
        "losing Send: {:?}",
        r.breaking
    );
    assert!(breaks(&r, "removed: demo::Moved"), "a re-export taken away");
    assert!(r.added.contains(&"demo::methods::S::more".to_owned()));
    assert!(!breaks(&r, "demo::methods"), "{:?}", r.breaking);
}

#[test]
fn a_crate_compared_with_itself_has_no_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (doc(dir.path(), "a", OLD), doc(dir.path(), "b", OLD));
    let r = compare(&a, &b);
    assert!(r.breaking.is_empty() && r.added.is_empty(), "{r:?}");
}

#[test]
fn the_text_form_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let s = doc(dir.path(), "a", NEW);
    let text = voicehost_api_check::to_text(&s);
    assert_eq!(voicehost_api_check::from_text(&text).unwrap(), s);
    assert!(voicehost_api_check::from_text("demo::x\tnot-a-kind\topen\t-\tsig\n").is_err());
}
