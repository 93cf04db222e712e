//! `api-check surface DOC.json`: prints the public API surface of the crate documented in
//! DOC.json (rustdoc `--output-format json`) as text.
//!
//! `api-check compare OLD NEW --old-version X.Y.Z --new-version X.Y.Z`: OLD and NEW are
//! rustdoc JSON files or surfaces as text; exits 1 when NEW breaks users of OLD and the
//! versions do not say so (see the crate docs). With `--moved RULES SURFACE...`, an item
//! missing from NEW counts as moved when RULES (see `Moves`) map it to a path one of the
//! SURFACEs (the crates it moved to) has.
//!
//! Exit code 2 on bad input, with the reason.

use std::process::ExitCode;

use voicehost_api_check::{
    Moves, Surface, Version, compare_moved, from_text, needs_major, surface, to_text,
};

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("api-check: {e}");
            ExitCode::from(2)
        }
    }
}

const USAGE: &str = "usage: api-check surface DOC.json\n       \
    api-check compare OLD NEW --old-version X.Y.Z --new-version X.Y.Z [--moved RULES SURFACE...]";

/// A rustdoc JSON file or a surface written by `api-check surface`.
fn read(path: &str) -> Result<Surface, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    if text.trim_start().starts_with('{') {
        let doc =
            serde_json::from_str(&text).map_err(|e| format!("{path} is not rustdoc JSON: {e}"))?;
        surface(&doc).map_err(|e| format!("{path}: {e}"))
    } else {
        from_text(&text).map_err(|e| format!("{path}: {e}"))
    }
}

fn run(args: Vec<String>) -> Result<bool, String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args[..] {
        ["surface", doc] => {
            print!("{}", to_text(&read(doc)?));
            Ok(true)
        }
        [
            "compare",
            old,
            new,
            "--old-version",
            old_version,
            "--new-version",
            new_version,
            ref moved @ ..,
        ] => {
            let (moves, family) = match moved {
                [] => (Moves::default(), Surface::new()),
                ["--moved", rules, surfaces @ ..] if !surfaces.is_empty() => {
                    let text = std::fs::read_to_string(rules)
                        .map_err(|e| format!("cannot read {rules}: {e}"))?;
                    let moves = Moves::parse(&text).map_err(|e| format!("{rules}: {e}"))?;
                    let mut family = Surface::new();
                    for s in surfaces {
                        family.extend(read(s)?);
                    }
                    (moves, family)
                }
                _ => return Err(USAGE.to_owned()),
            };
            check(
                &read(old)?,
                &read(new)?,
                old_version.parse()?,
                new_version.parse()?,
                &moves,
                &family,
            )
        }
        _ => Err(USAGE.to_owned()),
    }
}

fn check(
    old: &Surface,
    new: &Surface,
    old_version: Version,
    new_version: Version,
    moves: &Moves,
    family: &Surface,
) -> Result<bool, String> {
    let report = compare_moved(old, new, moves, family);
    println!(
        "api-check: {} public items at {old_version}, {} now ({new_version}): {} added, {} moved, {} breaking",
        old.len(),
        new.len(),
        report.added.len(),
        report.moved.len(),
        report.breaking.len()
    );
    for path in &report.added {
        println!("  added: {path}");
    }
    for path in &report.moved {
        println!("  moved: {path}");
    }
    for change in &report.breaking {
        println!("  BREAKING {change}");
    }
    if !report.breaking.is_empty() && needs_major(old_version, new_version) {
        println!(
            "api-check: FAILED: {new_version} breaks users of {old_version}; a breaking change \
             needs a new major version (0.y → 0.(y+1)): bump it in the crate's Cargo.toml and \
             say so in COMPATIBILITY.md, or keep the old items"
        );
        return Ok(false);
    }
    println!("api-check: ok");
    Ok(true)
}
