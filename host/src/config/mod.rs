//! `config/config.txt`: INI, validated once against [`schema`], every error reported
//! together with file, line and key.

pub mod ini;
pub mod plugins;
pub mod schema;

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::service::Service;
use schema::{SECTIONS, SectionDef};

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    /// `[section] key` or `[section]` the problem is about, if any.
    pub place: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.file.display(), self.line)?;
        if !self.place.is_empty() {
            write!(f, " {}:", self.place)?;
        }
        write!(f, " {}", self.message)
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuMode {
    Auto,
    Required,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupMode {
    PhasedParallel,
    Sequential,
}

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
        all.retain(|p| !p.is_empty());
        all
    }
}

/// The phrases of a `;`-separated list, trimmed, empty ones left out.
fn phrase_list(text: &str) -> Vec<String> {
    text.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A plugin slot (`logger`, `tts`, `llm`, `stt`, `kwd`) and its section.
#[derive(Debug, Clone)]
pub struct PluginSlot {
    /// Which slot (its phase, default port and section name come with it).
    pub service: Service,
    pub enabled: bool,
    pub library: PathBuf,
    /// Line of the `library` key (0 when the default is used), for error messages.
    pub library_line: usize,
    pub port: u16,
    pub start_timeout: Duration,
    pub isolation: Isolation,
    /// The section as written, in file order, then what the host adds (upstream addresses,
    /// `audio_device_probe`, `cache_phrases`): what the plugin receives.
    pub section: Vec<(String, String)>,
    /// Config file lines of the written entries, in the same order (the host's additions
    /// come after them and have none).
    pub lines: Vec<usize>,
}

/// Where a plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// In a `voicehost worker` child process: a crash in model code cannot take the host
    /// down.
    Process,
    /// Loaded into the host process.
    InProcess,
}

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

    /// [`Self::parse`], always with a config: a bad value is reported and its default
    /// used, so that what depends on the config (plugin sections, model files) can still be
    /// checked and every problem reported at once.
    fn parse_all(text: &str, path: &Path) -> (Self, Vec<ConfigError>) {
        let err = |line: usize, place: String, message: String| ConfigError {
            file: path.to_owned(),
            line,
            place,
            message,
        };
        let (sections, syntax) = ini::parse(text);
        let mut errors: Vec<ConfigError> = syntax
            .into_iter()
            .map(|e| err(e.line, String::new(), e.message))
            .collect();

        let mut values = Values::default();
        for section in &sections {
            let Some(def) = schema::section(&section.name) else {
                let known: Vec<&str> = SECTIONS.iter().map(|s| s.name).collect();
                errors.push(err(
                    section.line,
                    format!("[{}]", section.name),
                    format!("unknown section; valid sections: {}", known.join(", ")),
                ));
                continue;
            };
            for entry in &section.entries {
                let place = format!("[{}] {}", section.name, entry.key);
                let slot_key = schema::PLUGIN_KEYS.contains(&entry.key.as_str());
                if def.plugin.is_some() && !slot_key {
                    // The plugin's own key: checked against what its library declares
                    // (`plugins::check_plugin_keys`), once the library is known.
                    continue;
                }
                match def.key(&entry.key) {
                    None => errors.push(err(
                        entry.line,
                        place,
                        format!(
                            "unknown key; valid keys in [{}]: {}",
                            section.name,
                            def.key_names().join(", ")
                        ),
                    )),
                    Some((ty, _)) => match ty.check(&entry.value) {
                        Err(why) => errors.push(err(
                            entry.line,
                            place,
                            format!("invalid value {:?}: {why}", entry.value),
                        )),
                        Ok(()) => {
                            values.set(&section.name, &entry.key, &entry.value, entry.line);
                        }
                    },
                }
            }
        }

        let config = Self::build(path, &values, &sections);
        // Ports must be unique among the enabled services and the admin API.
        let mut ports: HashMap<u16, &str> = HashMap::new();
        ports.insert(config.loader.admin_port, "loader");
        for slot in config.plugins.iter().filter(|p| p.enabled) {
            let name = slot.service.name();
            if let Some(other) = ports.insert(slot.port, name) {
                errors.push(err(
                    values.line(name, "port"),
                    format!("[{name}] port"),
                    format!(
                        "port {} is also used by [{other}]; give each service its own port",
                        slot.port
                    ),
                ));
            }
        }
        if !config.loader.bind_addr.is_loopback() {
            errors.push(err(
                values.line("loader", "bind_addr"),
                "[loader] bind_addr".to_owned(),
                format!(
                    "{} is not a loopback address; services listen on 127.0.0.1 or ::1 only",
                    config.loader.bind_addr
                ),
            ));
        }
        (config, errors)
    }

    fn build(path: &Path, v: &Values, sections: &[ini::Section]) -> Self {
        let system = SystemConfig {
            min_vram_mb: v.int("system", "min_vram_mb") as u64,
            phase_vram_mb: v.int("system", "phase_vram_mb") as u64,
            gpu: match v.text("system", "gpu").as_str() {
                "required" => GpuMode::Required,
                "off" => GpuMode::Off,
                _ => GpuMode::Auto,
            },
            log_dir: PathBuf::from(v.text("system", "log_dir")),
            models_dir: PathBuf::from(v.text("system", "models_dir")),
        };
        let plugin_dir = match v.text("loader", "plugin_dir").as_str() {
            "auto" => default_plugin_dir(),
            dir => PathBuf::from(dir),
        };
        let loader = LoaderConfig {
            startup_mode: match v.text("loader", "startup_mode").as_str() {
                "sequential" => StartupMode::Sequential,
                _ => StartupMode::PhasedParallel,
            },
            parallel_phase_timeout: v.ms("loader", "parallel_phase_timeout_ms"),
            stagger_below_vram_mb: v.int("loader", "stagger_below_vram_mb") as u64,
            restart_backoff: v
                .text("loader", "restart_backoff_ms")
                .split(',')
                .filter_map(|p| p.trim().parse().ok())
                .map(Duration::from_millis)
                .collect(),
            health_interval: v.ms("loader", "health_interval_ms"),
            stop_timeout: v.ms("loader", "stop_timeout_ms"),
            audio_device_probe: v.text("loader", "audio_device_probe"),
            bind_addr: v
                .text("loader", "bind_addr")
                .parse()
                .unwrap_or(IpAddr::from([127, 0, 0, 1])),
            admin_port: v.int("loader", "admin_port") as u16,
            plugin_dir,
            watch_plugins: v.text("loader", "watch_plugins") == "true",
        };
        let dialog = DialogConfig {
            warmup_greeting: v.text("dialog", "warmup_greeting"),
            followup: v.ms("dialog", "followup_ms"),
            barge_in: v.text("dialog", "barge_in") == "true",
            barge_in_min_ms: v.int("dialog", "barge_in_min_ms").clamp(0, 2000) as u32,
            yes_phrases: phrase_list(&v.text("dialog", "yes_phrases")),
            stt_error_prompt: v.text("dialog", "stt_error_prompt"),
            llm_error_prompt: v.text("dialog", "llm_error_prompt"),
            tts_error_prompt: v.text("dialog", "tts_error_prompt"),
            metrics_interval: v.ms("dialog", "metrics_interval_ms"),
        };
        let plugins = Service::ALL
            .into_iter()
            .map(|service| {
                let name = service.name();
                let written: Vec<&ini::Entry> = sections
                    .iter()
                    .filter(|s| s.name == name)
                    .flat_map(|s| &s.entries)
                    .collect();
                let section: Vec<(String, String)> = written
                    .iter()
                    .map(|e| (e.key.clone(), e.value.clone()))
                    .collect();
                let lines: Vec<usize> = written.iter().map(|e| e.line).collect();
                let library = PathBuf::from(v.text(name, "library"));
                let library = if library.components().count() == 1 {
                    loader.plugin_dir.join(library)
                } else {
                    library
                };
                // tts and stt take [loader] audio_device_probe unless their section says.
                let mut section: Vec<(String, String)> = section;
                if service.uses_audio_device()
                    && !section.iter().any(|(k, _)| k == "audio_device_probe")
                {
                    section.push((
                        "audio_device_probe".to_owned(),
                        v.text("loader", "audio_device_probe"),
                    ));
                }
                // tts keeps every phrase the dialog speaks verbatim synthesised.
                if service == Service::Tts {
                    let mut phrases = phrase_list(
                        &section
                            .iter()
                            .find(|(k, _)| k == "cache_phrases")
                            .map_or_else(String::new, |(_, value)| value.clone()),
                    );
                    for p in dialog.phrases() {
                        if !phrases.contains(&p) {
                            phrases.push(p);
                        }
                    }
                    section.retain(|(k, _)| k != "cache_phrases");
                    section.push(("cache_phrases".to_owned(), phrases.join(";")));
                }
                // kwd listens to the stt slot and stt's echo canceller to the tts slot,
                // wherever their ports are, unless the section names another address.
                if let Some((from, key)) = service.upstream()
                    && !section.iter().any(|(k, _)| k == key)
                {
                    let port = v.int(from.name(), "port") as u16;
                    section.push((
                        key.to_owned(),
                        std::net::SocketAddr::new(loader.bind_addr, port).to_string(),
                    ));
                }
                PluginSlot {
                    service,
                    // Only sections present in the file are enabled by default.
                    enabled: v
                        .get(name, "enabled")
                        .map_or(sections.iter().any(|s| s.name == name), |(value, _)| {
                            value == "true"
                        }),
                    library,
                    library_line: v.line(name, "library"),
                    port: v.int(name, "port") as u16,
                    start_timeout: v.ms(name, "start_timeout_ms"),
                    isolation: match v.text(name, "isolation").as_str() {
                        "in_process" => Isolation::InProcess,
                        _ => Isolation::Process,
                    },
                    section,
                    lines,
                }
            })
            .collect();
        Self {
            path: path.to_owned(),
            system,
            loader,
            dialog,
            plugins,
            model_files: Vec::new(),
        }
    }

    /// Sets `key` in plugin `slot`'s section (command-line overrides such as `--output`).
    pub fn set_plugin_key(&mut self, slot: Service, key: &str, value: &str) {
        if let Some(p) = self.plugins.iter_mut().find(|p| p.service == slot) {
            p.section.retain(|(k, _)| k != key);
            p.section.push((key.to_owned(), value.to_owned()));
        }
    }

    /// Enabled plugins' libraries must exist; the error says how to build them.
    fn check_libraries(&self) -> Vec<ConfigError> {
        self.plugins
            .iter()
            .filter(|p| p.enabled && !p.library.is_file())
            .map(|p| ConfigError {
                file: self.path.clone(),
                line: p.library_line,
                place: format!("[{}] library", p.service),
                message: format!(
                    "plugin library {} does not exist; build it with `cargo build --release -p {}` \
                     (or set [loader] plugin_dir / [{}] library to where it is)",
                    p.library.display(),
                    crate_name_of(&p.library),
                    p.service
                ),
            })
            .collect()
    }

    /// Enabled plugins' model files must exist; the error names the fetch command.
    pub fn check_model_files(&self) -> Vec<ConfigError> {
        let manifest = voicehost_models::manifest::Manifest::builtin().ok();
        self.model_files
            .iter()
            .filter(|m| !m.path.is_file())
            .map(|m| {
                let known = m
                    .path
                    .strip_prefix(&self.system.models_dir)
                    .ok()
                    .and_then(|rel| manifest.as_ref()?.file_by_path(rel.to_str()?))
                    .map(|(model, _)| model.name.clone());
                let what_to_do = match known {
                    Some(name) => format!("fetch it with `voicehost models fetch --only {name}`"),
                    None => format!(
                        "point [{}] {} at an existing file (`voicehost models list` shows the fetched ones)",
                        m.section, m.key
                    ),
                };
                ConfigError {
                    file: self.path.clone(),
                    line: m.line,
                    place: format!("[{}] {}", m.section, m.key),
                    message: format!("model file {} not found; {what_to_do}", m.path.display()),
                }
            })
            .collect()
    }

    /// The slot of `service`.
    pub fn plugin(&self, service: Service) -> Option<&PluginSlot> {
        self.plugins.iter().find(|p| p.service == service)
    }
}

/// Directory of the running executable: where cargo puts the plugin libraries it builds.
pub fn default_plugin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_owned))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `libvoicehost_plugin_logger.so` → `voicehost-plugin-logger`.
pub fn crate_name_of(library: &Path) -> String {
    let stem = library
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    stem.strip_prefix("lib").unwrap_or(&stem).replace('_', "-")
}

/// Validated values with the line each came from; absent keys fall back to defaults.
#[derive(Debug, Default)]
struct Values(HashMap<(String, String), (String, usize)>);

impl Values {
    fn set(&mut self, section: &str, key: &str, value: &str, line: usize) {
        self.0.insert(
            (section.to_owned(), key.to_owned()),
            (value.to_owned(), line),
        );
    }

    fn get(&self, section: &str, key: &str) -> Option<&(String, usize)> {
        self.0.get(&(section.to_owned(), key.to_owned()))
    }

    fn line(&self, section: &str, key: &str) -> usize {
        self.get(section, key).map_or(0, |(_, line)| *line)
    }

    fn text(&self, section: &str, key: &str) -> String {
        if let Some((value, _)) = self.get(section, key) {
            return value.clone();
        }
        schema::section(section)
            .and_then(|def| default_of(def, key))
            .unwrap_or_default()
    }

    fn int(&self, section: &str, key: &str) -> i64 {
        self.text(section, key).parse().unwrap_or(0)
    }

    fn ms(&self, section: &str, key: &str) -> Duration {
        Duration::from_millis(self.int(section, key).max(0) as u64)
    }
}

/// Default of `key` in `def`, including the plugin keys' per-section defaults.
fn default_of(def: &SectionDef, key: &str) -> Option<String> {
    if let Some((_, Some(default))) = def.key(key) {
        return Some(default.to_owned());
    }
    let plugin = def.plugin?;
    Some(match key {
        "enabled" => "true".to_owned(),
        "library" => plugin.default_library().to_owned(),
        "port" => plugin.default_port().to_string(),
        "log_level" => "info".to_owned(),
        "start_timeout_ms" => "8000".to_owned(),
        "isolation" => "process".to_owned(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
