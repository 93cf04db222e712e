//! Items a crate moved to another crate of its family: not removed for their users, who
//! change a `use` line, but found at a new path.
//!
//! A rules file has one `OLD_PREFIX NEW_PREFIX` per line (`#` comments): module prefixes
//! ending in `::`, or whole macro paths ending in `!`. At each occurrence of a crate path in
//! an entry's key, the first rule whose prefix matches there rewrites it.
//! Identity rules (`a::abi:: a::abi::`) keep what stayed where it was.

/// Prefix rewrites, in the order they are tried.
#[derive(Debug, Clone, Default)]
pub struct Moves {
    rules: Vec<(String, String)>,
}

impl Moves {
    /// Reads a rules file's text.
    pub fn parse(text: &str) -> Result<Moves, String> {
        let mut rules = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_whitespace().collect::<Vec<_>>()[..] {
                [old, new]
                    if (old.ends_with("::") && new.ends_with("::"))
                        || (old.ends_with('!') && new.ends_with('!')) =>
                {
                    rules.push((old.to_owned(), new.to_owned()))
                }
                _ => {
                    return Err(format!(
                        "line {}: {line:?} is not `OLD_PREFIX:: NEW_PREFIX::` or `OLD_MACRO! NEW_MACRO!`",
                        n + 1
                    ));
                }
            }
        }
        Ok(Moves { rules })
    }

    /// `key` with every old path in it rewritten to where it moved; `None` when no rule
    /// applies anywhere in it.
    pub fn rewrite(&self, key: &str) -> Option<String> {
        let mut out = String::with_capacity(key.len());
        let mut rest = key;
        let mut changed = false;
        'scan: while !rest.is_empty() {
            for (old, new) in &self.rules {
                // A rule matches at the start of a path, not inside an identifier.
                if rest.starts_with(old.as_str()) && !out.ends_with(is_ident) {
                    out.push_str(new);
                    rest = &rest[old.len()..];
                    changed |= old != new;
                    continue 'scan;
                }
            }
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                out.push(c);
            }
            rest = chars.as_str();
        }
        changed.then_some(out)
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moves() -> Moves {
        Moves::parse(
            "# comment\na::abi:: a::abi::\na::tts:: tts::\na::speak! tts::speak!\na:: rt::\n",
        )
        .unwrap()
    }

    #[test]
    fn the_first_matching_rule_applies_at_each_path() {
        let m = moves();
        assert_eq!(m.rewrite("a::tts::Synth").as_deref(), Some("tts::Synth"));
        assert_eq!(m.rewrite("a::Plugin").as_deref(), Some("rt::Plugin"));
        assert_eq!(
            m.rewrite("a::tts::X: impl {\"path\":\"a::export::Plugin\"}")
                .as_deref(),
            Some("tts::X: impl {\"path\":\"rt::export::Plugin\"}")
        );
        assert_eq!(m.rewrite("a::speak!").as_deref(), Some("tts::speak!"));
        assert_eq!(m.rewrite("a::abi::Info"), None, "kept in place");
        assert_eq!(m.rewrite("ba::Plugin"), None, "not a path of crate a");
    }

    #[test]
    fn a_malformed_rule_is_named() {
        let err = Moves::parse("a:: \n").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }
}
