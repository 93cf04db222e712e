//! The surface as a text file to commit and diff (`plugin-api/api.txt`).

use crate::surface::{Entry, Member, Surface};

impl Member {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Member::Item => "item",
            Member::Field => "field",
            Member::Variant => "variant",
            Member::Required => "required",
            Member::Provided => "provided",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Member> {
        [
            Member::Item,
            Member::Field,
            Member::Variant,
            Member::Required,
            Member::Provided,
        ]
        .into_iter()
        .find(|m| m.name() == s)
    }
}

/// The surface as text: one line per entry, `path`, member kind, `closed`, parent (`-` for
/// none) and signature, separated by tabs, in path order — a file to commit and diff.
pub fn to_text(surface: &Surface) -> String {
    let mut text = String::new();
    for (path, e) in surface {
        let parent = e.parent.as_deref().unwrap_or("-");
        text.push_str(&format!(
            "{path}\t{}\t{}\t{parent}\t{}\n",
            e.member.name(),
            if e.closed { "closed" } else { "open" },
            e.sig
        ));
    }
    text
}

/// Reads what [`to_text`] wrote (lines starting with `#` are comments).
pub fn from_text(text: &str) -> Result<Surface, String> {
    let mut surface = Surface::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let bad = || format!("line {}: not a surface entry: {line:?}", n + 1);
        let [path, member, closed, parent, sig] = line.splitn(5, '\t').collect::<Vec<_>>()[..]
        else {
            return Err(bad());
        };
        let member = Member::parse(member).ok_or_else(bad)?;
        surface.insert(
            path.to_owned(),
            Entry {
                sig: sig.to_owned(),
                member,
                parent: (parent != "-").then(|| parent.to_owned()),
                closed: closed == "closed",
            },
        );
    }
    Ok(surface)
}
