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
        Kind::Int { min: 0, max: 64 },
        "0",
        "CPU threads of one transcription; 0: one per core idle at that moment (a second thread stalls while other work holds its core)",
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

    /// The model as `GetInfo` names it: the file's stem (`ggml-tiny.en-q8_0`).
    pub fn model_name(&self) -> String {
        self.whisper_model
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Whether the model understands English only: whisper.cpp names those `*.en`
    /// (`ggml-tiny.en.bin`, `ggml-base.en-q5_1.bin`).
    pub fn english_only(&self) -> bool {
        self.model_name()
            .split('.')
            .skip(1)
            .any(|part| part == "en" || part.starts_with("en-") || part.starts_with("en_"))
    }

    /// The languages `Transcribe` takes: `en` for an English model; else the configured
    /// language first, then every other one Whisper knows.
    pub fn languages(&self) -> Vec<String> {
        if self.english_only() {
            return vec!["en".to_owned()];
        }
        let others = (0..=whisper_rs::get_lang_max_id())
            .filter_map(whisper_rs::get_lang_str)
            .filter(|code| *code != self.language)
            .map(str::to_owned);
        std::iter::once(self.language.clone())
            .chain(others)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(model: &str, language: &str) -> Settings {
        Settings {
            whisper_model: PathBuf::from(model),
            threads: 1,
            language: language.to_owned(),
            no_speech_threshold: 0.6,
        }
    }

    #[test]
    fn english_models_recognise_english_only() {
        let tiny = with("models/ggml-tiny.en-q8_0.bin", "en");
        assert_eq!(tiny.model_name(), "ggml-tiny.en-q8_0");
        assert_eq!(tiny.languages(), ["en"]);
        assert_eq!(with("ggml-small.en.bin", "en").languages(), ["en"]);
    }

    #[test]
    fn multilingual_models_list_the_configured_language_first() {
        let base = with("models/ggml-base-q8_0.bin", "de");
        assert_eq!(base.model_name(), "ggml-base-q8_0");
        let languages = base.languages();
        assert_eq!(languages[0], "de");
        assert!(languages.len() > 90, "{languages:?}");
        assert!(languages.contains(&"en".to_owned()) && languages.contains(&"fr".to_owned()));
        assert_eq!(languages.iter().filter(|l| *l == "de").count(), 1);
    }
}
