//! What a plugin receives at start, in plain Rust types.

use std::fmt::Display;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

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

    /// Converts the ABI context, checks the bind address and installs log forwarding to the
    /// host (so `tracing` events of the plugin reach the host's app.log).
    pub(crate) fn from_abi(ctx: StartContext) -> Result<Self, PluginError> {
        let service = ctx.service.to_string();
        let config = PluginConfig::new(
            &service,
            ctx.config
                .into_iter()
                .map(|kv| (kv.0.into_string(), kv.1.into_string())),
        );
        let level = config.parse_or("log_level", logging::Level::Info)?;
        logging::install(ctx.host.log, &service, level);
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

/// A plugin's config section: ordered key/value pairs with typed, error-reporting getters.
#[derive(Debug, Clone, Default)]
pub struct PluginConfig {
    section: String,
    entries: Vec<(String, String)>,
}

impl PluginConfig {
    pub fn new(section: &str, entries: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            section: section.to_owned(),
            entries: entries.into_iter().collect(),
        }
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
