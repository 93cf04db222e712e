//! The `[logger]` section.

use voicehost_plugin_runtime::{PluginConfig, PluginError};

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
            app_log: config.parse_or("app_log", "app.log".to_owned())?,
            app_log_max_bytes: config.parse_or("app_log_max_bytes", 10 * 1024 * 1024)?,
            app_log_keep: config.parse_or("app_log_keep", 5)?,
            max_text_bytes: config.parse_or("max_text_bytes", 16 * 1024)?,
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
        if settings.app_log_max_bytes < 4096 {
            return Err(PluginError::config(format!(
                "[logger] app_log_max_bytes = {} is too small; use at least 4096",
                settings.app_log_max_bytes
            )));
        }
        Ok(settings)
    }
}
