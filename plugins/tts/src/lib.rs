//! The voicehost tts plugin (port 5006): Kokoro-82M v1.0 (int8 ONNX through ONNX
//! Runtime), phonemes from espeak-ng (`en-us`), voice `af_heart` by default, 24 kHz.
//!
//! This crate is only the engine: a [`Synthesizer`] over Kokoro. The gRPC service
//! (`Speak`, `SpeakStream`, `PlaybackEvents`, `RenderReference`, `StopSpeaking`,
//! `Synthesize`, `ListVoices`), the playback queue, the output and the phrase cache are the
//! plugin SDK's (`voicehost_tts_sdk`), the same for every tts plugin. `ListVoices` lists the
//! English voices of `voices_dir` (`a…` American, `b…` British): the phonemiser is US
//! English, so the other languages' voices are not offered (a request may still name one).
//!
//! Model files come from `voicehost models fetch` (models `kokoro`, `kokoro-voices`,
//! `onnxruntime`). CUDA: build with the `cuda` feature and set `device = cuda`.

mod config;
mod engine;
mod voices;

use voicehost_tts_sdk::Synthesizer;
use voicehost_tts_sdk::voicehost_plugin_runtime::keys::Key;
use voicehost_tts_sdk::{BoxError, EngineMeta, PluginConfig, PluginError, Voice, export_tts};

pub use config::{Device, KEYS, Settings};
pub use engine::{Kokoro, SAMPLE_RATE, kokoro_symbol};
pub use voicehost_espeak::G2p;

/// Kokoro with its phonemiser: the built-in tts engine.
#[derive(Debug)]
pub struct KokoroTts {
    kokoro: Kokoro,
    g2p: G2p,
    speed: f32,
}

impl Synthesizer for KokoroTts {
    type Config = Settings;

    const CONFIG_KEYS: &'static [Key] = config::KEYS;

    const META: EngineMeta = EngineMeta {
        name: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        features: if cfg!(feature = "cuda") {
            &["kokoro", "cuda"]
        } else {
            &["kokoro"]
        },
    };

    fn configure(section: &PluginConfig) -> Result<Settings, PluginError> {
        Settings::from_config(section)
    }

    fn load(s: &Settings) -> Result<Self, BoxError> {
        Ok(KokoroTts {
            g2p: G2p::new("en-us")?,
            kokoro: Kokoro::load(s)?,
            speed: s.speed,
        })
    }

    fn sample_rate(&self) -> u32 {
        SAMPLE_RATE
    }

    fn default_voice(s: &Settings) -> String {
        s.voice.clone()
    }

    fn check_voice(s: &Settings, voice: &str) -> Result<(), String> {
        let path = s.voices_dir.join(format!("{voice}.bin"));
        if config::is_voice_name(voice) && path.is_file() {
            Ok(())
        } else {
            Err(format!(
                "unknown voice: no such file in {} (e.g. af_heart, am_adam, bf_emma)",
                s.voices_dir.display()
            ))
        }
    }

    fn voices(s: &Settings) -> Result<Vec<Voice>, BoxError> {
        voices::english_voices(s)
    }

    fn synthesize(&mut self, text: &str, voice: &str) -> Result<Vec<f32>, BoxError> {
        let phonemes = self.g2p.phonemize(text)?;
        Ok(self.kokoro.synthesize(&phonemes, voice, self.speed)?)
    }
}

export_tts!(KokoroTts);
