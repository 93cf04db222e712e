//! The voicehost stt plugin (port 5004): Whisper through whisper-rs (whisper.cpp), ggml
//! tiny.en with Q8_0 weights by default (the `stt_wer` benchmark's choice), on as many
//! threads as cores are idle when it transcribes (`threads = 0`).
//!
//! This crate is only the recogniser: a [`Transcriber`] over Whisper. Capture, WebRTC AEC3,
//! Silero VAD endpointing and the gRPC service (`Start`/`Stop`, `Results`, `AudioFrames`,
//! `SetInput`, `Transcribe`, `GetInfo`) are the plugin SDK's (`voicehost_stt_sdk`), the
//! same for every stt plugin. `GetInfo` names the model by its file (`ggml-tiny.en-q8_0`)
//! and its languages: `en` for an English model (`*.en`), else the configured language
//! first, then the rest of Whisper's; `Transcribe` takes any of them.
//!
//! Models come from `voicehost models fetch` (`whisper-tiny-en-q8`, `silero-vad`,
//! `onnxruntime`; `smart-turn` for `endpoint = turn_model`, `silero-vad-v6` for Silero v6). CUDA for whisper.cpp: the `cuda` feature.

mod config;
mod cpu;
mod recognizer;
mod whisper_log;

use voicehost_stt_sdk::voicehost_plugin_runtime::keys::Key;
use voicehost_stt_sdk::{BoxError, EngineMeta, PluginConfig, PluginError, export_stt};
use voicehost_stt_sdk::{Transcriber, Transcript};

pub use config::Settings;
pub use recognizer::Recognizer;
pub use voicehost_stt_sdk::{EchoCanceller, EchoStats, FRAME, RATE};

impl Transcriber for Recognizer {
    type Config = Settings;

    const CONFIG_KEYS: &'static [Key] = config::KEYS;

    const META: EngineMeta = EngineMeta {
        name: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        features: if cfg!(feature = "cuda") {
            &["whisper", "cuda"]
        } else {
            &["whisper"]
        },
    };

    fn configure(section: &PluginConfig) -> Result<Settings, PluginError> {
        Settings::from_config(section)
    }

    fn load(s: &Settings) -> Result<Self, BoxError> {
        let recognizer = Recognizer::load(
            &s.whisper_model,
            s.threads,
            &s.language,
            s.no_speech_threshold,
        )?;
        tracing::info!(model = %s.whisper_model.display(), "Whisper loaded");
        Ok(recognizer)
    }

    fn transcribe(&mut self, samples: &[f32]) -> Result<Option<Transcript>, BoxError> {
        Ok(Recognizer::transcribe(self, samples)?)
    }

    fn transcribe_in(
        &mut self,
        samples: &[f32],
        language: &str,
    ) -> Result<Option<Transcript>, BoxError> {
        Ok(Recognizer::transcribe_in(self, samples, language)?)
    }

    fn model_name(s: &Settings) -> String {
        s.model_name()
    }

    fn languages(s: &Settings) -> Vec<String> {
        s.languages()
    }
}

export_stt!(Recognizer);
