//! The host's keys: `[system]`, `[loader]`, `[dialog]`, and the keys every plugin slot has
//! (`enabled`, `library`, `port`, `log_level`, `start_timeout_ms`, `isolation`). A plugin's
//! own keys are the plugin's: it declares them (`voicehost_plugin_runtime::keys`) and the
//! host checks a section against the library that will be loaded (`super::plugins`).
//!
//! `config/config.txt` documents each key; a test checks that file mentions every key here.

/// The expected form of a value: the same kinds plugins declare their keys with.
pub use voicehost_plugin_runtime::keys::Kind as Ty;
pub use voicehost_plugin_runtime::keys::{EXTENSION_PREFIX, HOST_KEYS as PLUGIN_KEYS};

use crate::service::Service;

#[derive(Debug, Clone, Copy)]
pub struct KeyDef {
    pub name: &'static str,
    pub ty: Ty,
    /// Default used when the key is absent; `None` = required.
    pub default: Option<&'static str>,
}

#[derive(Debug, Clone, Copy)]
pub struct SectionDef {
    pub name: &'static str,
    /// A plugin slot: its keys are [`PLUGIN_KEYS`] and what the plugin declares.
    pub plugin: Option<Service>,
    pub keys: &'static [KeyDef],
}

const fn key(name: &'static str, ty: Ty, default: &'static str) -> KeyDef {
    KeyDef {
        name,
        ty,
        default: Some(default),
    }
}

const MS: Ty = Ty::Int {
    min: 0,
    max: 3_600_000,
};
const TIMEOUT_MS: Ty = Ty::Int {
    min: 100,
    max: 600_000,
};
const LOG_LEVELS: Ty = Ty::Choice(&["trace", "debug", "info", "warn", "error"]);

/// Type of a common plugin key.
pub fn plugin_key_ty(name: &str) -> Option<Ty> {
    Some(match name {
        "enabled" => Ty::Bool,
        "library" => Ty::Path,
        "port" => Ty::Port,
        "log_level" => LOG_LEVELS,
        "start_timeout_ms" => TIMEOUT_MS,
        "isolation" => Ty::Choice(&["process", "in_process"]),
        _ => return None,
    })
}

pub const SECTIONS: &[SectionDef] = &[
    SectionDef {
        name: "system",
        plugin: None,
        keys: &[
            key(
                "min_vram_mb",
                Ty::Int {
                    min: 0,
                    max: 1_000_000,
                },
                "8000",
            ),
            key(
                "phase_vram_mb",
                Ty::Int {
                    min: 0,
                    max: 1_000_000,
                },
                "1000",
            ),
            key("gpu", Ty::Choice(&["auto", "required", "off"]), "auto"),
            key("log_dir", Ty::Path, "logs"),
            key("models_dir", Ty::Path, "models"),
        ],
    },
    SectionDef {
        name: "loader",
        plugin: None,
        keys: &[
            key(
                "startup_mode",
                Ty::Choice(&["phased_parallel", "sequential"]),
                "phased_parallel",
            ),
            key("parallel_phase_timeout_ms", TIMEOUT_MS, "30000"),
            key(
                "stagger_below_vram_mb",
                Ty::Int {
                    min: 0,
                    max: 1_000_000,
                },
                "0",
            ),
            key(
                "restart_backoff_ms",
                Ty::IntList {
                    min: 0,
                    max: 600_000,
                },
                "1000,3000,5000",
            ),
            key(
                "health_interval_ms",
                Ty::Int {
                    min: 50,
                    max: 60_000,
                },
                "2000",
            ),
            key("stop_timeout_ms", TIMEOUT_MS, "3000"),
            key(
                "audio_device_probe",
                Ty::Choice(&["strict", "lenient", "off"]),
                "strict",
            ),
            key("plugin_dir", Ty::Path, "auto"),
            key("watch_plugins", Ty::Bool, "true"),
            key("bind_addr", Ty::Ip, "127.0.0.1"),
            key("admin_port", Ty::Port, "5002"),
        ],
    },
    SectionDef {
        name: Service::Logger.name(),
        plugin: Some(Service::Logger),
        keys: &[],
    },
    SectionDef {
        name: Service::Kwd.name(),
        plugin: Some(Service::Kwd),
        keys: &[],
    },
    SectionDef {
        name: Service::Stt.name(),
        plugin: Some(Service::Stt),
        keys: &[],
    },
    SectionDef {
        name: Service::Llm.name(),
        plugin: Some(Service::Llm),
        keys: &[],
    },
    SectionDef {
        name: Service::Tts.name(),
        plugin: Some(Service::Tts),
        keys: &[],
    },
    SectionDef {
        name: Service::Wyoming.name(),
        plugin: Some(Service::Wyoming),
        keys: &[],
    },
    SectionDef {
        name: "dialog",
        plugin: None,
        keys: &[
            key("warmup_greeting", Ty::Text { max_len: 200 }, "Hi, Master!"),
            key("followup_ms", MS, "4000"),
            key("barge_in", Ty::Bool, "true"),
            key("barge_in_min_ms", Ty::Int { min: 60, max: 2000 }, "100"),
            key("yes_phrases", Ty::Phrases, "Yes?;Yes, Master?;Sup?;Yo"),
            key(
                "stt_error_prompt",
                Ty::Text { max_len: 200 },
                "Sorry, I didn't catch that.",
            ),
            key(
                "llm_error_prompt",
                Ty::Text { max_len: 200 },
                "Sorry, I had a problem.",
            ),
            key(
                "tts_error_prompt",
                Ty::Text { max_len: 200 },
                "Audio error.",
            ),
            key("metrics_interval_ms", MS, "60000"),
            key("skills", Ty::Bool, "true"),
            key(
                "timer_alarm_phrase",
                Ty::Text { max_len: 200 },
                "Your timer is done.",
            ),
            key(
                "timer_alarm_repeat_ms",
                Ty::Int {
                    min: 1000,
                    max: 60_000,
                },
                "3000",
            ),
            key(
                "timer_alarm_timeout_ms",
                Ty::Int {
                    min: 1000,
                    max: 3_600_000,
                },
                "60000",
            ),
        ],
    },
];

/// The definition of section `name`.
pub fn section(name: &str) -> Option<&'static SectionDef> {
    SECTIONS.iter().find(|s| s.name == name)
}

impl SectionDef {
    /// Type and default of `key` in this section.
    pub fn key(&self, key: &str) -> Option<(Ty, Option<&'static str>)> {
        if let Some(def) = self.keys.iter().find(|k| k.name == key) {
            return Some((def.ty, def.default));
        }
        self.plugin?;
        plugin_key_ty(key).map(|ty| (ty, None))
    }

    /// Every key name this section accepts.
    pub fn key_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = Vec::new();
        if self.plugin.is_some() {
            names.extend_from_slice(PLUGIN_KEYS);
        }
        names.extend(self.keys.iter().map(|k| k.name));
        names
    }
}
