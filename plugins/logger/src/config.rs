//! The `[logger]` section.

use voicehost_plugin_runtime::keys::{Key, Kind};
use voicehost_plugin_runtime::{PluginConfig, PluginError};

/// The logger's keys.
pub const KEYS: &[Key] = &[
    Key::new(
        "app_log",
        Kind::Text { max_len: 255 },
        "app.log",
        "File name of the app log in the log directory",
    ),
    Key::new(
        "app_log_max_bytes",
        Kind::Int {
            min: 4096,
            max: 1 << 40,
        },
        "10485760",
        "The app log is rotated at this size",
    ),
    Key::new(
        "app_log_keep",
        Kind::Int { min: 0, max: 100 },
        "5",
        "Rotated app logs kept",
    ),
    Key::new(
        "max_text_bytes",
        Kind::Int {
            min: 1,
            max: 1 << 20,
        },
        "16384",
        "Longest dialog line",
    ),
];

#[derive(Debug, Clone)]
pub struct Settings {
    /// File name of the app log inside the log directory.
    pub app_log: String,
    pub app_log_max_bytes: u64,
    pub app_log_keep: u32,
    pub max_text_bytes: usize,
}

impl Settings {
    pub fn from_config(config: &PluginConfig) -> Result<Self, PluginError> {
        let settings = Self {
            app_log: config.value("app_log")?,
            app_log_max_bytes: config.value("app_log_max_bytes")?,
            app_log_keep: config.value("app_log_keep")?,
            max_text_bytes: config.value("max_text_bytes")?,
        };
        let name_ok = !settings.app_log.is_empty()
            && !settings.app_log.starts_with('.')
            && settings
                .app_log
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !name_ok {
            return Err(PluginError::config(format!(
                "[logger] app_log = {:?} must be a plain file name (letters, digits, . _ -), not a path",
                settings.app_log
            )));
        }
        Ok(settings)
    }
}
