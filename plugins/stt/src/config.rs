//! Whisper's keys of the `[stt]` section (the SDK reads the input, AEC and VAD keys).

use std::path::PathBuf;

use voicehost_stt_sdk::{PluginConfig, PluginError};

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
        let s = Settings {
            whisper_model: c.parse_or("whisper_model", PathBuf::from("models/ggml-tiny.en.bin"))?,
            threads: c.parse_or("threads", 2)?,
            language: c.parse_or("language", "en".to_owned())?,
            no_speech_threshold: c.parse_or("no_speech_threshold", 0.6)?,
        };
        PluginConfig::check(
            (1..=64).contains(&s.threads),
            format!("[stt] threads = {} is out of range; use 1 to 64", s.threads),
        )?;
        PluginConfig::check(
            (0.0..=1.0).contains(&s.no_speech_threshold),
            format!(
                "[stt] no_speech_threshold = {} is out of range; use 0.0 to 1.0",
                s.no_speech_threshold
            ),
        )?;
        Ok(s)
    }
}
