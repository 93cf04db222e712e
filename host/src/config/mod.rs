//! `config/config.txt`: INI, validated once against [`schema`], every error reported
//! together with file, line and key.
//!
//! This module holds the types and the two ways in: [`Config::load`] (with the checks that
//! need the file system and the plugin libraries) and [`Config::parse`] (the text alone).
//! `build` turns the parsed INI into a `Config`, `files` checks libraries and model files,
//! `errors` holds what both report.

mod build;
mod errors;
mod files;
pub mod ini;
pub mod plugins;
pub mod schema;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::service::Service;

pub use errors::{ConfigError, ConfigErrors};
pub use files::{crate_name_of, default_plugin_dir};
pub use voicehost_loader::settings::{GpuMode, LoaderSettings, StartupMode};

#[derive(Debug, Clone)]
pub struct SystemConfig {
    pub min_vram_mb: u64,
    pub phase_vram_mb: u64,
    pub gpu: GpuMode,
    pub log_dir: PathBuf,
    pub models_dir: PathBuf,
}

#[derive(Debug, Clone)]
pub struct LoaderConfig {
    pub startup_mode: StartupMode,
    pub parallel_phase_timeout: Duration,
    pub stagger_below_vram_mb: u64,
    pub restart_backoff: Vec<Duration>,
    pub health_interval: Duration,
    pub stop_timeout: Duration,
    pub audio_device_probe: String,
    pub plugin_dir: PathBuf,
    pub watch_plugins: bool,
    pub bind_addr: IpAddr,
    pub admin_port: u16,
}

#[derive(Debug, Clone)]
pub struct DialogConfig {
    pub warmup_greeting: String,
    pub followup: Duration,
    /// The user may interrupt a reply by speaking (stt listens while it plays).
    pub barge_in: bool,
    /// Speech while the assistant speaks must be voiced this long to interrupt it, ms.
    pub barge_in_min_ms: u32,
    /// Acknowledgements after the wake word, one picked at random.
    pub yes_phrases: Vec<String>,
    pub stt_error_prompt: String,
    pub llm_error_prompt: String,
    pub tts_error_prompt: String,
    pub metrics_interval: Duration,
    /// Built-in skills (time, date, arithmetic, timers, stop) answer before the model.
    pub skills: bool,
    /// What a ringing timer says after its first ring (which names the timer).
    pub timer_alarm_phrase: String,
    /// Pause between two rings of a timer's alarm (kwd listens meanwhile).
    pub timer_alarm_repeat: Duration,
    /// A timer's alarm stops by itself after ringing this long.
    pub timer_alarm_timeout: Duration,
}

impl DialogConfig {
    /// Every phrase the dialog speaks verbatim: tts keeps them synthesised.
    pub fn phrases(&self) -> Vec<String> {
        let mut all = self.yes_phrases.clone();
        all.extend([
            self.warmup_greeting.clone(),
            self.stt_error_prompt.clone(),
            self.llm_error_prompt.clone(),
            self.tts_error_prompt.clone(),
        ]);
        if self.skills {
            all.push(self.timer_alarm_phrase.clone());
        }
        all.retain(|p| !p.is_empty());
        all
    }
}

pub use voicehost_loader::slot::{Isolation, PluginSlot};

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub system: SystemConfig,
    pub loader: LoaderConfig,
    pub dialog: DialogConfig,
    /// Plugin slots in startup order.
    pub plugins: Vec<PluginSlot>,
    /// Model files the enabled plugins will load.
    pub model_files: Vec<ModelFileRef>,
    /// Line of each section header written in the file, by section name (the first, if
    /// one is written twice): where a problem of a section as a whole is reported.
    pub section_lines: HashMap<String, usize>,
}

/// A model file named by an enabled plugin's config.
#[derive(Debug, Clone)]
pub struct ModelFileRef {
    pub section: String,
    pub key: String,
    pub path: PathBuf,
    /// Line of the key in the config file.
    pub line: usize,
}

impl Config {
    /// Reads and validates `path`, also checking that enabled plugins' libraries exist.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError {
                file: path.to_owned(),
                line: 0,
                place: String::new(),
                message: format!(
                    "cannot read the config file: {e}; pass --config PATH (the default is config/config.txt, relative to the current directory)"
                ),
            }])
        })?;
        let (mut config, mut errors) = Self::parse_all(&text, path);
        errors.extend(config.check_libraries());
        let (declared, unloadable) = config.declared_keys();
        errors.extend(unloadable);
        errors.extend(config.check_plugin_keys(&declared));
        errors.extend(config.check_model_files());
        if errors.is_empty() {
            Ok(config)
        } else {
            errors.sort_by_key(|e| e.line);
            Err(ConfigErrors(errors))
        }
    }

    /// Validates `text` (read from `path`) without touching the file system.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigErrors> {
        let (config, mut errors) = Self::parse_all(text, path);
        if errors.is_empty() {
            Ok(config)
        } else {
            errors.sort_by_key(|e| e.line);
            Err(ConfigErrors(errors))
        }
    }

    /// Sets `key` in plugin `slot`'s section (command-line overrides such as `--output`).
    pub fn set_plugin_key(&mut self, slot: Service, key: &str, value: &str) {
        if let Some(p) = self.plugins.iter_mut().find(|p| p.service == slot) {
            p.section.retain(|(k, _)| k != key);
            p.section.push((key.to_owned(), value.to_owned()));
        }
    }

    /// The slot of `service`.
    pub fn plugin(&self, service: Service) -> Option<&PluginSlot> {
        self.plugins.iter().find(|p| p.service == service)
    }

    /// What the user should know about a valid config: a Wyoming server bound beyond
    /// loopback (the one port that may be) exposes the assistant's voice services to the
    /// network.
    pub fn notices(&self) -> Vec<String> {
        let Some(slot) = self.plugin(Service::Wyoming).filter(|p| p.enabled) else {
            return Vec::new();
        };
        let key = |name: &str| {
            slot.section
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_owned())
        };
        let bind = key("bind").unwrap_or_else(|| "127.0.0.1".to_owned());
        let port = key("wyoming_port").unwrap_or_else(|| "10700".to_owned());
        match bind.parse::<std::net::IpAddr>() {
            Ok(ip) if !ip.is_loopback() => vec![format!(
                "[wyoming] bind = {bind}: wake word, speech to text and text to speech are \
                 served on {bind}:{port} to every machine that can reach it, without \
                 authentication (audio sent there leaves no trace here but is heard); every \
                 other voicehost port stays on loopback. Use bind = 127.0.0.1 to keep it local."
            )],
            _ => Vec::new(),
        }
    }

    /// What the loader's `Host` reads of `[loader]` and `[system]`.
    pub fn loader_settings(&self) -> LoaderSettings {
        LoaderSettings {
            startup_mode: self.loader.startup_mode,
            parallel_phase_timeout: self.loader.parallel_phase_timeout,
            stagger_below_vram_mb: self.loader.stagger_below_vram_mb,
            restart_backoff: self.loader.restart_backoff.clone(),
            health_interval: self.loader.health_interval,
            stop_timeout: self.loader.stop_timeout,
            watch_plugins: self.loader.watch_plugins,
            bind_addr: self.loader.bind_addr,
            gpu: self.system.gpu,
            min_vram_mb: self.system.min_vram_mb,
            phase_vram_mb: self.system.phase_vram_mb,
            log_dir: self.system.log_dir.clone(),
            models_dir: self.system.models_dir.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
