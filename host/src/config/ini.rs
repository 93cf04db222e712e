//! A small INI reader that keeps line numbers for error messages.
//!
//! Form: `[section]` headers, `key = value` lines, `#` or `;` comments on their own line.
//! Values are trimmed; there is no quoting and no inline comment (a `#` inside a value is
//! part of the value, e.g. `yes_phrases = Yes?;Yes, Master?`).

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

/// A syntax problem at a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Parses `text`, collecting every syntax error rather than stopping at the first.
pub fn parse(text: &str) -> (Vec<Section>, Vec<SyntaxError>) {
    let mut sections: Vec<Section> = Vec::new();
    let mut errors = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            match rest.strip_suffix(']') {
                Some(name) if is_name(name.trim()) => {
                    let name = name.trim().to_owned();
                    if sections.iter().any(|s| s.name == name) {
                        errors.push(SyntaxError {
                            line,
                            message: format!(
                                "section [{name}] appears twice; merge the two into one"
                            ),
                        });
                    }
                    sections.push(Section {
                        name,
                        line,
                        entries: Vec::new(),
                    });
                }
                _ => errors.push(SyntaxError {
                    line,
                    message: format!(
                        "malformed section header {trimmed:?}; expected `[name]` with letters, digits or _"
                    ),
                }),
            }
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            errors.push(SyntaxError {
                line,
                message: format!("expected `key = value`, found {trimmed:?}"),
            });
            continue;
        };
        let key = key.trim();
        if !is_name(key) {
            errors.push(SyntaxError {
                line,
                message: format!("malformed key {key:?}; keys use letters, digits and _"),
            });
            continue;
        }
        let Some(section) = sections.last_mut() else {
            errors.push(SyntaxError {
                line,
                message: format!("key {key:?} is outside any section; put it under a [section]"),
            });
            continue;
        };
        if let Some(previous) = section.entries.iter().find(|e| e.key == key) {
            errors.push(SyntaxError {
                line,
                message: format!(
                    "[{}] {key} is set twice (first at line {}); keep one",
                    section.name, previous.line
                ),
            });
            continue;
        }
        section.entries.push(Entry {
            key: key.to_owned(),
            value: value.trim().to_owned(),
            line,
        });
    }
    (sections, errors)
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_keys_and_lines() {
        let (sections, errors) = parse("# c\n[a]\nx = 1\n\n[b]\ny=Yes?;Yes, Master? # kept\n");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(sections.len(), 2);
        assert_eq!(sections[0].entries[0].line, 3);
        assert_eq!(sections[1].entries[0].value, "Yes?;Yes, Master? # kept");
    }

    #[test]
    fn reports_every_syntax_error() {
        let (_, errors) = parse("k = v\n[a\n[a]\nnovalue\nx = 1\nx = 2\n[a]\n");
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 2, 4, 6, 7]);
    }
}
