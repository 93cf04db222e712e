//! From the parsed INI to a [`Config`]: every entry checked against [`schema`] and kept with
//! its line, absent keys filled in with their defaults, the host's additions to the plugin
//! sections, and the checks across keys (unique ports, loopback address).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::schema::{self, SECTIONS, SectionDef};
use super::{
    Config, ConfigError, DialogConfig, GpuMode, Isolation, LoaderConfig, PluginSlot, StartupMode,
    SystemConfig, default_plugin_dir, ini,
};
use crate::service::Service;

impl Config {
    /// [`Self::parse`], always with a config: a bad value is reported and its default
    /// used, so that what depends on the config (plugin sections, model files) can still be
    /// checked and every problem reported at once.
    pub(super) fn parse_all(text: &str, path: &Path) -> (Self, Vec<ConfigError>) {
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
            skills: v.text("dialog", "skills") == "true",
            timer_alarm_phrase: v.text("dialog", "timer_alarm_phrase"),
            timer_alarm_repeat: v.ms("dialog", "timer_alarm_repeat_ms"),
            timer_alarm_timeout: v.ms("dialog", "timer_alarm_timeout_ms"),
        };
        // A slot is enabled by its `enabled` key; without one, only sections present in the
        // file are.
        let enabled = |name: &str| {
            v.get(name, "enabled")
                .map_or(sections.iter().any(|s| s.name == name), |(value, _)| {
                    value == "true"
                })
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
                // The Wyoming server calls the kwd, stt and tts slots that are enabled.
                for (to, key) in service.bridges() {
                    if section.iter().any(|(k, _)| k == key) {
                        continue;
                    }
                    let address = if enabled(to.name()) {
                        let port = v.int(to.name(), "port") as u16;
                        std::net::SocketAddr::new(loader.bind_addr, port).to_string()
                    } else {
                        String::new()
                    };
                    section.push(((*key).to_owned(), address));
                }
                PluginSlot {
                    service,
                    enabled: enabled(name),
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
            section_lines: sections
                .iter()
                .rev()
                .map(|s| (s.name.clone(), s.line))
                .collect(),
        }
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
