//! A plugin's config keys: declared once (name, kind, default, one-line doc), read with
//! their defaults by [`crate::PluginConfig::value`], checked when the plugin starts and —
//! through the ABI's [`ConfigSchema`] — by the host when it validates a config file. What
//! depends on several keys a plugin checks in [`crate::Plugin::check_config`], returning a
//! [`Problem`] at each key.
//!
//! ```
//! use voicehost_plugin_runtime::keys::{Key, Kind};
//!
//! const KEYS: &[Key] = &[
//!     Key::new("speed", Kind::Float { min: 0.5, max: 2.0 }, "1.0", "Speaking rate"),
//!     Key::new("voice", Kind::Text { max_len: 64 }, "af_heart", "Voice name"),
//! ];
//! # assert!(KEYS[0].check("3").is_err());
//! ```

use abi_stable::std_types::{RString, RVec};
use voicehost_plugin_api::schema::{ConfigKey, ConfigSchema, KeyKind, KeyProblem};

/// Keys every slot's section has. The host owns them (it checks them and acts on them);
/// a plugin receives them with its section and never declares them.
pub const HOST_KEYS: &[&str] = &[
    "enabled",
    "library",
    "port",
    "log_level",
    "start_timeout_ms",
    "isolation",
];

/// Keys starting with this that the plugin does not declare are passed through unchecked:
/// a section may hold the settings of another plugin that is swapped in later.
pub const EXTENSION_PREFIX: &str = "x_";

/// The form of a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    Float {
        min: f64,
        max: f64,
    },
    Choice(&'static [&'static str]),
    /// At most `max_len` bytes, no control characters.
    Text {
        max_len: usize,
    },
    Path,
    /// A model file: the host checks it exists when the plugin is enabled.
    ModelFile,
    /// Comma-separated model files, at least one.
    ModelFiles,
    Port,
    Ip,
    /// `host:port`.
    SocketAddr,
    /// Comma-separated integers, each from `min` to `max`.
    IntList {
        min: i64,
        max: i64,
    },
    /// `;`-separated non-empty phrases.
    Phrases,
    /// Comma-separated `name:score` pairs, scores from 0 to 1; may be empty.
    NamedScores,
}

impl Kind {
    /// Checks `value`; the error says what was expected.
    pub fn check(self, value: &str) -> Result<(), String> {
        Key::new("", self, "", "").check(value)
    }

    /// What it expects, for messages: "an integer from 1 to 64".
    pub fn expected(self) -> String {
        expected(&Key::new("", self, "", "").to_abi())
    }
}

/// One declared key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
    /// The value when the key is absent, as a config file would write it.
    pub default: &'static str,
    /// One line: what it does.
    pub doc: &'static str,
}

impl Key {
    pub const fn new(
        name: &'static str,
        kind: Kind,
        default: &'static str,
        doc: &'static str,
    ) -> Key {
        Key {
            name,
            kind,
            default,
            doc,
        }
    }

    /// Checks `value`; the error says what was expected.
    pub fn check(&self, value: &str) -> Result<(), String> {
        check(&self.to_abi(), value)
    }

    /// The key as it crosses the ABI.
    pub fn to_abi(&self) -> ConfigKey {
        let (kind, min, max, choices): (KeyKind, f64, f64, &[&str]) = match self.kind {
            Kind::Bool => (KeyKind::Bool, 0.0, 0.0, &[]),
            Kind::Int { min, max } => (KeyKind::Int, min as f64, max as f64, &[]),
            Kind::Float { min, max } => (KeyKind::Float, min, max, &[]),
            Kind::Choice(options) => (KeyKind::Choice, 0.0, 0.0, options),
            Kind::Text { max_len } => (KeyKind::Text, 0.0, max_len as f64, &[]),
            Kind::Path => (KeyKind::Path, 0.0, 0.0, &[]),
            Kind::ModelFile => (KeyKind::ModelFile, 0.0, 0.0, &[]),
            Kind::ModelFiles => (KeyKind::ModelFiles, 0.0, 0.0, &[]),
            Kind::Port => (KeyKind::Port, 1.0, 65535.0, &[]),
            Kind::Ip => (KeyKind::Ip, 0.0, 0.0, &[]),
            Kind::SocketAddr => (KeyKind::SocketAddr, 0.0, 0.0, &[]),
            Kind::IntList { min, max } => (KeyKind::IntList, min as f64, max as f64, &[]),
            Kind::Phrases => (KeyKind::Phrases, 0.0, 0.0, &[]),
            Kind::NamedScores => (KeyKind::NamedScores, 0.0, 0.0, &[]),
        };
        ConfigKey {
            name: self.name.into(),
            kind,
            min,
            max,
            choices: choices.iter().map(|c| RString::from(*c)).collect(),
            default: self.default.into(),
            doc: self.doc.into(),
        }
    }
}

/// One thing wrong with a section as a whole, at the key it belongs to: what
/// [`crate::Plugin::check_config`] returns. The host reports it as `file:line: [section]
/// key: message` at the key's line (the section's header line when the key is not written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key; empty for the section as a whole.
    pub key: String,
    /// What is wrong and what to do, without the section and key (they are written before
    /// it), e.g. `"http://10.0.0.2/v1" is on another machine; set allow_remote = true …`.
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The problem as it crosses the ABI.
    pub fn to_abi(&self) -> KeyProblem {
        KeyProblem::new(self.key.as_str(), self.message.as_str())
    }
}

impl std::fmt::Display for Problem {
    /// `[section] key: message` is the host's form; this is `key: message`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

/// The schema of `keys`, as exported to the host.
pub fn schema(keys: &[Key]) -> ConfigSchema {
    ConfigSchema {
        keys: keys.iter().map(Key::to_abi).collect::<RVec<_>>(),
    }
}

/// What `key` expects, for messages: "an integer from 1 to 64".
pub fn expected(key: &ConfigKey) -> String {
    let (min, max) = (key.min, key.max);
    match key.kind {
        KeyKind::Bool => "true or false".to_owned(),
        KeyKind::Int => format!("an integer from {min} to {max}"),
        KeyKind::Float => format!("a number from {min} to {max}"),
        KeyKind::Choice => {
            let options: Vec<&str> = key.choices.iter().map(|c| c.as_str()).collect();
            format!("one of {}", options.join(", "))
        }
        KeyKind::Text => format!("text of at most {max} bytes"),
        KeyKind::Path => "a file or directory path".to_owned(),
        KeyKind::ModelFile => "the path of a model file".to_owned(),
        KeyKind::ModelFiles => "comma-separated model file paths".to_owned(),
        KeyKind::Port => "a TCP port from 1 to 65535".to_owned(),
        KeyKind::Ip => "an IP address such as 127.0.0.1".to_owned(),
        KeyKind::SocketAddr => "host:port, e.g. 127.0.0.1:5004".to_owned(),
        KeyKind::IntList => {
            format!("comma-separated integers from {min} to {max}, e.g. 1000,3000,5000")
        }
        KeyKind::Phrases => "phrases separated by `;`, e.g. Yes?;Yes, Master?".to_owned(),
        KeyKind::NamedScores => {
            "comma-separated name:score pairs, scores from 0 to 1, e.g. hey_jarvis_v0.1:0.5"
                .to_owned()
        }
    }
}

/// Checks `value` against `key`; the error says what was expected.
pub fn check(key: &ConfigKey, value: &str) -> Result<(), String> {
    if fits(key, value) {
        Ok(())
    } else {
        Err(format!("expected {}", expected(key)))
    }
}

fn fits(key: &ConfigKey, value: &str) -> bool {
    let in_range = |v: f64| v >= key.min && v <= key.max;
    let int = |s: &str| s.trim().parse::<i64>().is_ok_and(|v| in_range(v as f64));
    let text_ok = |s: &str| !s.chars().any(char::is_control);
    match key.kind {
        KeyKind::Bool => matches!(value, "true" | "false"),
        KeyKind::Int => int(value),
        KeyKind::Float => value
            .parse::<f64>()
            .is_ok_and(|v| v.is_finite() && in_range(v)),
        KeyKind::Choice => key.choices.iter().any(|c| c.as_str() == value),
        KeyKind::Text => value.len() as f64 <= key.max && text_ok(value),
        KeyKind::Path | KeyKind::ModelFile => !value.is_empty() && text_ok(value),
        KeyKind::ModelFiles => value.split(',').all(|p| {
            let p = p.trim();
            !p.is_empty() && text_ok(p)
        }),
        KeyKind::Port => value.parse::<u16>().is_ok_and(|p| p > 0),
        KeyKind::Ip => value.parse::<std::net::IpAddr>().is_ok(),
        KeyKind::SocketAddr => value.parse::<std::net::SocketAddr>().is_ok(),
        KeyKind::IntList => value.split(',').all(int),
        KeyKind::Phrases => value.split(';').all(|p| {
            let p = p.trim();
            !p.is_empty() && p.len() <= 200 && text_ok(p)
        }),
        KeyKind::NamedScores => value
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .all(|e| {
                e.split_once(':').is_some_and(|(name, score)| {
                    !name.trim().is_empty()
                        && score
                            .trim()
                            .parse::<f64>()
                            .is_ok_and(|v| (0.0..=1.0).contains(&v))
                })
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_takes_its_form_and_names_it_otherwise() {
        let cases: &[(Kind, &str, &str)] = &[
            (Kind::Bool, "true", "yes"),
            (Kind::Int { min: 1, max: 64 }, "64", "65"),
            (Kind::Float { min: 0.5, max: 2.0 }, "0.5", "nan"),
            (Kind::Choice(&["cpu", "cuda"]), "cuda", "gpu"),
            (Kind::Text { max_len: 3 }, "abc", "abcd"),
            (Kind::Path, "a/b", ""),
            (Kind::ModelFiles, "a.onnx, b.onnx", "a.onnx,,"),
            (Kind::Port, "5004", "0"),
            (Kind::Ip, "::1", "localhost"),
            (Kind::SocketAddr, "127.0.0.1:5004", "127.0.0.1"),
            (Kind::IntList { min: 0, max: 10 }, "1, 2,3", "1,x"),
            (Kind::Phrases, "Yes?;Sup?", "Yes?;"),
            (Kind::NamedScores, "alexa:0.5, b:1", "alexa:2"),
        ];
        for (kind, good, bad) in cases {
            let key = Key::new("k", *kind, good, "");
            assert_eq!(key.check(good), Ok(()), "{kind:?} {good:?}");
            let err = key.check(bad).unwrap_err();
            assert!(err.starts_with("expected "), "{kind:?} {bad:?}: {err}");
        }
        assert_eq!(
            Key::new("k", Kind::Int { min: 1, max: 64 }, "2", "")
                .check("0")
                .unwrap_err(),
            "expected an integer from 1 to 64"
        );
    }

    #[test]
    fn a_schema_carries_every_key() {
        let keys = [
            Key::new("device", Kind::Choice(&["cpu", "cuda"]), "cpu", "Where"),
            Key::new("speed", Kind::Float { min: 0.5, max: 2.0 }, "1.0", "Rate"),
        ];
        let s = schema(&keys);
        assert_eq!(s.keys.len(), 2);
        assert_eq!(s.keys[0].kind, KeyKind::Choice);
        assert_eq!(s.keys[0].choices.len(), 2);
        assert_eq!(s.keys[1].max, 2.0);
        assert_eq!(s.keys[1].doc.as_str(), "Rate");
    }
}
