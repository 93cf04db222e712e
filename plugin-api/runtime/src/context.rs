//! What a plugin receives at start, in plain Rust types.

use std::fmt::Display;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use crate::keys::{self, Key, Problem};
use crate::{logging, net};
use voicehost_plugin_api::abi::{PluginError, StartContext};

/// The plugin's start context: its config section, where to listen, where to write.
#[derive(Debug, Clone)]
pub struct PluginContext {
    /// Service slot name (`logger`, `tts`, …).
    pub service: String,
    /// The plugin's own config section.
    pub config: PluginConfig,
    /// Loopback address to bind (checked).
    pub bind_addr: IpAddr,
    pub port: u16,
    pub log_dir: PathBuf,
    pub data_dir: PathBuf,
}

impl PluginContext {
    /// A context for a server that is not loaded through the ABI (the host's own admin API,
    /// tests). Refuses a non-loopback `bind_addr`.
    pub fn new(
        service: &str,
        config: PluginConfig,
        bind_addr: &str,
        port: u16,
        log_dir: PathBuf,
        data_dir: PathBuf,
    ) -> Result<Self, PluginError> {
        Ok(Self {
            service: service.to_owned(),
            config,
            bind_addr: net::loopback_addr(bind_addr)?,
            port,
            log_dir,
            data_dir,
        })
    }

    /// Converts the ABI context, checks the bind address, installs log forwarding to the
    /// host (so `tracing` events of the plugin reach the host's app.log) and, when the
    /// plugin declares its keys, checks its section against them.
    pub(crate) fn from_abi(ctx: StartContext, keys: Option<Vec<Key>>) -> Result<Self, PluginError> {
        let service = ctx.service.to_string();
        let mut config = PluginConfig::new(
            &service,
            ctx.config
                .into_iter()
                .map(|kv| (kv.0.into_string(), kv.1.into_string())),
        );
        let level = config.parse_or("log_level", logging::Level::Info)?;
        logging::install(ctx.host.log, &service, level);
        if let Some(keys) = keys {
            config = config.with_keys(keys);
            config.validate()?;
        }
        Ok(Self {
            bind_addr: net::loopback_addr(&ctx.bind_addr)?,
            port: ctx.port,
            log_dir: PathBuf::from(ctx.log_dir.as_str()),
            data_dir: PathBuf::from(ctx.data_dir.as_str()),
            service,
            config,
        })
    }
}

/// A plugin's config section: ordered key/value pairs with typed, error-reporting getters,
/// and the keys the plugin declares ([`crate::keys`]) with their defaults.
#[derive(Debug, Clone, Default)]
pub struct PluginConfig {
    section: String,
    entries: Vec<(String, String)>,
    keys: Vec<Key>,
}

impl PluginConfig {
    pub fn new(section: &str, entries: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            section: section.to_owned(),
            entries: entries.into_iter().collect(),
            keys: Vec::new(),
        }
    }

    /// The same section, read against the keys the plugin declares.
    pub fn with_keys(mut self, keys: Vec<Key>) -> Self {
        self.keys = keys;
        self
    }

    /// The declared keys.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// Value of the declared key `name` parsed as `T`: the section's, else the declared
    /// default. Checked against its kind by [`Self::validate`] first, so a bad value is
    /// reported with what was expected.
    pub fn value<T>(&self, name: &str) -> Result<T, PluginError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(name) {
            Some(raw) => self.parse(name, raw),
            None => {
                let key = self.keys.iter().find(|k| k.name == name).ok_or_else(|| {
                    PluginError::internal(format!(
                        "[{}] {name} is read but not declared by the plugin (a bug: add it to \
                         its keys)",
                        self.section
                    ))
                })?;
                self.parse(name, key.default)
            }
        }
    }

    /// Checks the entries against the declared keys: a declared key's value must fit its
    /// kind (all problems are reported together, one per line). Other keys are the host's
    /// slot keys, `x_` keys of other plugins, or — after a hot swap to this plugin — the
    /// previous plugin's keys (the host checked the section against the library it was
    /// configured with): they are logged and ignored.
    pub fn validate(&self) -> Result<(), PluginError> {
        for (name, _) in &self.entries {
            let known = self.keys.iter().any(|k| k.name == name)
                || keys::HOST_KEYS.contains(&name.as_str())
                || name.starts_with(keys::EXTENSION_PREFIX);
            if !known {
                tracing::warn!(
                    event = "config_key_ignored",
                    section = %self.section,
                    key = %name,
                    "Not a key of this plugin; ignored"
                );
            }
        }
        let problems = self.ill_typed();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PluginError::config(problems.join("\n")))
        }
    }

    /// Each entry of a declared key whose value does not fit its kind, as a message.
    pub(crate) fn ill_typed(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, value) in &self.entries {
            if let Some(key) = self.keys.iter().find(|k| k.name == name)
                && let Err(why) = key.check(value)
            {
                problems.push(format!(
                    "[{}] {name} = {value:?} is invalid: {why}",
                    self.section
                ));
            }
        }
        problems
    }

    /// A config error listing `problems` (what [`crate::Plugin::check_config`] found), one
    /// per line as `[section] key: message`; `Ok` when there are none.
    pub fn refuse(&self, problems: &[Problem]) -> Result<(), PluginError> {
        if problems.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = problems
            .iter()
            .map(|p| format!("[{}] {p}", self.section))
            .collect();
        Err(PluginError::config(lines.join("\n")))
    }

    /// The section name, e.g. `logger`.
    pub fn section(&self) -> &str {
        &self.section
    }

    /// Raw value of `key` (the last one wins if repeated).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All entries in file order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Value of `key` parsed as `T`, or `default` when absent.
    pub fn parse_or<T>(&self, key: &str, default: T) -> Result<T, PluginError>
    where
        T: FromStr,
        T::Err: Display,
    {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => self.parse(key, raw),
        }
    }

    /// A config error with `message` unless `ok`: for range and consistency checks after
    /// parsing (`PluginConfig::check(speed > 0.0, format!("[tts] speed = {speed} …"))?`).
    pub fn check(ok: bool, message: impl Into<String>) -> Result<(), PluginError> {
        if ok {
            Ok(())
        } else {
            Err(PluginError::config(message))
        }
    }

    /// Value of `key` parsed as `T`; an error naming the key when absent or invalid.
    pub fn require<T>(&self, key: &str) -> Result<T, PluginError>
    where
        T: FromStr,
        T::Err: Display,
    {
        let raw = self.get(key).ok_or_else(|| {
            PluginError::config(format!(
                "[{}] {key} is missing: add `{key} = …` to the [{}] section",
                self.section, self.section
            ))
        })?;
        self.parse(key, raw)
    }

    fn parse<T>(&self, key: &str, raw: &str) -> Result<T, PluginError>
    where
        T: FromStr,
        T::Err: Display,
    {
        raw.trim().parse().map_err(|e: T::Err| {
            PluginError::config(format!(
                "[{}] {key} = {raw:?} is invalid: {e}; fix it in the config file",
                self.section
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> PluginConfig {
        PluginConfig::new(
            "stt",
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn typed_getters_name_key_and_value() {
        let c = cfg(&[("threads", "4"), ("bad", "four")]);
        assert_eq!(c.parse_or("threads", 1u32).unwrap(), 4);
        assert_eq!(c.parse_or("missing", 7u32).unwrap(), 7);
        let err = c.parse_or("bad", 1u32).unwrap_err();
        assert!(err.message.contains("[stt] bad = \"four\""), "{err}");
        let err = c.require::<u32>("nope").unwrap_err();
        assert!(err.message.contains("[stt] nope is missing"), "{err}");
    }

    #[test]
    fn last_value_wins() {
        let c = cfg(&[("k", "1"), ("k", "2")]);
        assert_eq!(c.get("k"), Some("2"));
    }
}
