//! The keys every config section accepts, their types and defaults.
//!
//! `config/config.txt` documents each key; a test checks that file mentions every key here.

/// The expected form of a value.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
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
    /// Free text, at most this many bytes, no control characters.
    Text {
        max_len: usize,
    },
    Path,
    /// A model file; when its plugin is enabled, `voicehost validate` and `run` check it
    /// exists and name the `voicehost models fetch` command that makes it.
    ModelFile,
    /// Comma-separated model files, at least one.
    ModelFiles,
    Port,
    /// An IP address (loopback is checked separately).
    Addr,
    /// Comma-separated integers, each within the bounds, at least one.
    IntList {
        min: i64,
        max: i64,
    },
    /// `;`-separated non-empty phrases.
    Phrases,
    /// Comma-separated `name:score` pairs, each score from 0 to 1; may be empty.
    NamedScores,
}

impl Ty {
    /// The expected form, for error messages.
    pub fn expected(&self) -> String {
        match self {
            Ty::Bool => "true or false".to_owned(),
            Ty::Int { min, max } => format!("an integer from {min} to {max}"),
            Ty::Float { min, max } => format!("a number from {min} to {max}"),
            Ty::Choice(options) => format!("one of {}", options.join(", ")),
            Ty::Text { max_len } => format!("text of at most {max_len} bytes"),
            Ty::Path => "a file or directory path".to_owned(),
            Ty::ModelFile => "the path of a model file".to_owned(),
            Ty::ModelFiles => "comma-separated model file paths".to_owned(),
            Ty::Port => "a TCP port from 1 to 65535".to_owned(),
            Ty::Addr => "an IP address such as 127.0.0.1".to_owned(),
            Ty::IntList { min, max } => {
                format!("comma-separated integers from {min} to {max}, e.g. 1000,3000,5000")
            }
            Ty::Phrases => "phrases separated by `;`, e.g. Yes?;Yes, Master?".to_owned(),
            Ty::NamedScores => {
                "comma-separated name:score pairs, scores from 0 to 1, e.g. hey_jarvis_v0.1:0.5"
                    .to_owned()
            }
        }
    }

    /// Checks `value`, returning why it does not fit.
    pub fn check(&self, value: &str) -> Result<(), String> {
        let bad = || Err(format!("expected {}", self.expected()));
        match *self {
            Ty::Bool => match value {
                "true" | "false" => Ok(()),
                _ => bad(),
            },
            Ty::Int { min, max } => match value.parse::<i64>() {
                Ok(v) if (min..=max).contains(&v) => Ok(()),
                _ => bad(),
            },
            Ty::Float { min, max } => match value.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= min && v <= max => Ok(()),
                _ => bad(),
            },
            Ty::Choice(options) => {
                if options.contains(&value) {
                    Ok(())
                } else {
                    bad()
                }
            }
            Ty::Text { max_len } => {
                if value.len() <= max_len && !value.chars().any(char::is_control) {
                    Ok(())
                } else {
                    bad()
                }
            }
            Ty::ModelFiles => {
                if value
                    .split(',')
                    .all(|p| Ty::ModelFile.check(p.trim()).is_ok())
                {
                    Ok(())
                } else {
                    bad()
                }
            }
            Ty::Path | Ty::ModelFile => {
                if value.is_empty() || value.chars().any(char::is_control) {
                    bad()
                } else {
                    Ok(())
                }
            }
            Ty::Port => match value.parse::<u16>() {
                Ok(p) if p > 0 => Ok(()),
                _ => bad(),
            },
            Ty::Addr => value
                .parse::<std::net::IpAddr>()
                .map(|_| ())
                .or_else(|_| bad()),
            Ty::IntList { min, max } => {
                let ok = value.split(',').all(|part| {
                    part.trim()
                        .parse::<i64>()
                        .is_ok_and(|v| (min..=max).contains(&v))
                });
                if ok { Ok(()) } else { bad() }
            }
            Ty::Phrases => {
                let ok = value.split(';').all(|p| {
                    let p = p.trim();
                    !p.is_empty() && p.len() <= 200 && !p.chars().any(char::is_control)
                });
                if ok { Ok(()) } else { bad() }
            }
            Ty::NamedScores => {
                let ok = value
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
                    });
                if ok { Ok(()) } else { bad() }
            }
        }
    }
}

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
    /// A plugin slot: also accepts [`PLUGIN_KEYS`].
    pub plugin: Option<PluginDefaults>,
    pub keys: &'static [KeyDef],
}

/// Defaults of the common keys of a plugin slot.
#[derive(Debug, Clone, Copy)]
pub struct PluginDefaults {
    pub port: u16,
    pub library: &'static str,
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
/// ONNX Runtime library of the plugins that use ort (kwd, stt, tts).
const ONNXRUNTIME: KeyDef = key(
    "onnxruntime_library",
    Ty::ModelFile,
    "models/onnxruntime/libonnxruntime.so",
);
/// How hard tts/stt check their sound card at start; defaults to `[loader]`'s value.
const AUDIO_PROBE: KeyDef = key(
    "audio_device_probe",
    Ty::Choice(&["strict", "lenient", "off"]),
    "strict",
);
const LOG_LEVELS: Ty = Ty::Choice(&["trace", "debug", "info", "warn", "error"]);

/// Keys of plugin sections starting with this are passed to the plugin unchecked: they are
/// for third-party plugins' own settings (the plugin validates them at start).
pub const EXTENSION_PREFIX: &str = "x_";

/// Keys every plugin section accepts. `port` and `library` defaults come from the section.
pub const PLUGIN_KEYS: &[&str] = &[
    "enabled",
    "library",
    "port",
    "log_level",
    "start_timeout_ms",
    "isolation",
];

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
            key("bind_addr", Ty::Addr, "127.0.0.1"),
            key("admin_port", Ty::Port, "5002"),
        ],
    },
    SectionDef {
        name: "logger",
        plugin: Some(PluginDefaults {
            port: 5001,
            library: "libvoicehost_plugin_logger.so",
        }),
        keys: &[
            key("app_log", Ty::Text { max_len: 255 }, "app.log"),
            key(
                "app_log_max_bytes",
                Ty::Int {
                    min: 4096,
                    max: 1 << 40,
                },
                "10485760",
            ),
            key("app_log_keep", Ty::Int { min: 0, max: 100 }, "5"),
            key(
                "max_text_bytes",
                Ty::Int {
                    min: 1,
                    max: 1 << 20,
                },
                "16384",
            ),
        ],
    },
    SectionDef {
        name: "kwd",
        plugin: Some(PluginDefaults {
            port: 5003,
            library: "libvoicehost_plugin_kwd.so",
        }),
        keys: &[
            key(
                "confidence_threshold",
                Ty::Float { min: 0.0, max: 1.0 },
                "0.6",
            ),
            key("model_thresholds", Ty::NamedScores, ""),
            key("cooldown_ms", MS, "1000"),
            key("audio_source", Ty::Text { max_len: 64 }, "127.0.0.1:5004"),
            key(
                "wake_models",
                Ty::ModelFiles,
                "models/openwakeword/alexa_v0.1.onnx",
            ),
            key(
                "melspectrogram_model",
                Ty::ModelFile,
                "models/openwakeword/melspectrogram.onnx",
            ),
            key(
                "embedding_model",
                Ty::ModelFile,
                "models/openwakeword/embedding_model.onnx",
            ),
            ONNXRUNTIME,
        ],
    },
    SectionDef {
        name: "stt",
        plugin: Some(PluginDefaults {
            port: 5004,
            library: "libvoicehost_plugin_stt.so",
        }),
        keys: &[
            key("aec_enabled", Ty::Bool, "true"),
            key("aec_backend", Ty::Choice(&["webrtc_aec3"]), "webrtc_aec3"),
            key(
                "vad_silence_ms",
                Ty::Int {
                    min: 100,
                    max: 10_000,
                },
                "2000",
            ),
            key("endpoint", Ty::Choice(&["silence", "smart"]), "silence"),
            key(
                "echo_guard_margin_db",
                Ty::Float {
                    min: 0.0,
                    max: 40.0,
                },
                "10",
            ),
            key(
                "smart_silence_ms",
                Ty::Int {
                    min: 100,
                    max: 10_000,
                },
                "600",
            ),
            key("input", Ty::Text { max_len: 4096 }, "auto"),
            key("input_echo", Ty::Text { max_len: 32 }, "off"),
            key(
                "input_pacing",
                Ty::Choice(&["realtime", "fast"]),
                "realtime",
            ),
            AUDIO_PROBE,
            key(
                "render_reference",
                Ty::Text { max_len: 64 },
                "127.0.0.1:5006",
            ),
            key("threads", Ty::Int { min: 1, max: 64 }, "2"),
            key("language", Ty::Text { max_len: 8 }, "en"),
            key(
                "vad_threshold",
                Ty::Float {
                    min: 0.05,
                    max: 0.95,
                },
                "0.5",
            ),
            key(
                "min_speech_ms",
                Ty::Int {
                    min: 0,
                    max: 10_000,
                },
                "250",
            ),
            key(
                "max_utterance_ms",
                Ty::Int {
                    min: 1000,
                    max: 120_000,
                },
                "30000",
            ),
            key("preroll_ms", Ty::Int { min: 0, max: 2000 }, "300"),
            key(
                "no_speech_threshold",
                Ty::Float { min: 0.0, max: 1.0 },
                "0.6",
            ),
            key("whisper_model", Ty::ModelFile, "models/ggml-tiny.en.bin"),
            key(
                "vad_model",
                Ty::ModelFile,
                "models/openwakeword/silero_vad.onnx",
            ),
            ONNXRUNTIME,
        ],
    },
    SectionDef {
        name: "llm",
        plugin: Some(PluginDefaults {
            port: 5005,
            library: "libvoicehost_plugin_llm.so",
        }),
        keys: &[
            key("backend", Ty::Choice(&["llama", "ollama"]), "llama"),
            key("modelfile", Ty::Path, "config/Modelfile"),
            key("threads", Ty::Int { min: 1, max: 64 }, "2"),
            key("gpu_layers", Ty::Int { min: 0, max: 1000 }, "0"),
            key(
                "ollama_url",
                Ty::Text { max_len: 256 },
                "http://127.0.0.1:11434",
            ),
            key(
                "ollama_model",
                Ty::Text { max_len: 256 },
                "llama3.1:8b-instruct-q4_K_M",
            ),
            key(
                "keep_alive_s",
                Ty::Int {
                    min: 0,
                    max: 604_800,
                },
                "1800",
            ),
            key(
                "max_dialogs",
                Ty::Int {
                    min: 1,
                    max: 10_000,
                },
                "64",
            ),
        ],
    },
    SectionDef {
        name: "tts",
        plugin: Some(PluginDefaults {
            port: 5006,
            library: "libvoicehost_plugin_tts.so",
        }),
        keys: &[
            key("voice", Ty::Text { max_len: 64 }, "af_heart"),
            key("voices_dir", Ty::Path, "models/kokoro/voices"),
            key(
                "model",
                Ty::ModelFile,
                "models/kokoro/kokoro-v1.0.int8.onnx",
            ),
            key("vocab", Ty::ModelFile, "models/kokoro/vocab.json"),
            ONNXRUNTIME,
            key("speed", Ty::Float { min: 0.5, max: 2.0 }, "1.0"),
            key("device", Ty::Choice(&["cpu", "cuda"]), "cpu"),
            key("threads", Ty::Int { min: 1, max: 64 }, "2"),
            key("output", Ty::Text { max_len: 4096 }, "auto"),
            key(
                "output_pacing",
                Ty::Choice(&["realtime", "fast"]),
                "realtime",
            ),
            AUDIO_PROBE,
            key("first_chunk_words", Ty::Int { min: 1, max: 50 }, "4"),
            key(
                "low_watermark_ms",
                Ty::Int {
                    min: 0,
                    max: 10_000,
                },
                "300",
            ),
            key(
                "high_watermark_ms",
                Ty::Int {
                    min: 1000,
                    max: 600_000,
                },
                "20000",
            ),
            key(
                "max_text_bytes",
                Ty::Int {
                    min: 16,
                    max: 1_000_000,
                },
                "8192",
            ),
            key(
                "cache_phrases",
                Ty::Phrases,
                "Yes?;Yes, Master?;Sup?;Yo;Hi, Master!;Sorry, I didn't catch that.;Sorry, I had a problem.;Audio error.",
            ),
        ],
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
