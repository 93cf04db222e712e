//! Whisper's keys of the `[stt]` section (the SDK reads the input, AEC and VAD keys).

use std::path::PathBuf;

use voicehost_stt_sdk::voicehost_plugin_runtime::keys::{Key, Kind};
use voicehost_stt_sdk::{PluginConfig, PluginError};

/// Whisper's keys (beside the SDK's).
pub const KEYS: &[Key] = &[
    Key::new(
        "whisper_model",
        Kind::ModelFile,
        "models/ggml-tiny.en-q8_0.bin",
        "Whisper model (ggml)",
    ),
    Key::new(
        "threads",
        Kind::Int { min: 1, max: 64 },
        "1",
        "CPU threads of one transcription (more than 1 stalls while other work holds a core)",
    ),
    Key::new(
        "language",
        Kind::Text { max_len: 8 },
        "en",
        "Spoken language (a Whisper language code)",
    ),
    Key::new(
        "no_speech_threshold",
        Kind::Float { min: 0.0, max: 1.0 },
        "0.6",
        "A result more likely than this to hold no speech is dropped",
    ),
];

#[derive(Debug, Clone)]
pub struct Settings {
    pub whisper_model: PathBuf,
    pub threads: usize,
    pub language: String,
    /// A result whose no-speech probability is above this is dropped.
    pub no_speech_threshold: f32,
}

impl Settings {
    pub fn from_config(c: &PluginConfig) -> Result<Self, PluginError> {
        Ok(Settings {
            whisper_model: c.value::<PathBuf>("whisper_model")?,
            threads: c.value("threads")?,
            language: c.value("language")?,
            no_speech_threshold: c.value("no_speech_threshold")?,
        })
    }
}
