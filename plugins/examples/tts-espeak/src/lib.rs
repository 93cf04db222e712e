//! An alternative voicehost tts plugin: espeak-ng's own voice instead of Kokoro.
//!
//! All of it is the engine — text in, samples out. The plugin SDK serves
//! `voicehost.tts.v1` around it (queueing, streaming, playback, events, health).
//!
//! Its config keys, declared below (the host checks a `[tts]` section against them; the
//! `x_` prefix keeps them out of the way of Kokoro's when this plugin is swapped in):
//! `x_espeak_voice` (an espeak-ng voice) and `x_espeak_wpm` (words per minute).

use std::process::Command;

use voicehost_tts_sdk::voicehost_plugin_runtime::keys::{Key, Kind};
use voicehost_tts_sdk::{BoxError, EngineMeta, PluginConfig, PluginError, export_tts};
use voicehost_tts_sdk::{Synthesizer, decode_wav};

/// The engine's settings.
#[derive(Debug, Clone)]
pub struct Config {
    voice: String,
    wpm: u32,
}

/// espeak-ng, run once per sentence.
#[derive(Debug)]
pub struct Espeak {
    config: Config,
    sample_rate: u32,
}

impl Espeak {
    /// Runs `espeak-ng` on `text`; returns its sample rate and samples.
    fn run(config: &Config, voice: &str, text: &str) -> Result<(u32, Vec<f32>), BoxError> {
        let out = Command::new("espeak-ng")
            .args([
                "-v",
                voice,
                "-s",
                &config.wpm.to_string(),
                "--stdout",
                "--",
                text,
            ])
            .output()
            .map_err(|e| {
                format!("cannot run espeak-ng ({e}); install it: apt-get install espeak-ng")
            })?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(format!("espeak-ng -v {voice} failed: {}", err.trim()).into());
        }
        Ok(decode_wav(&out.stdout)?)
    }
}

impl Synthesizer for Espeak {
    type Config = Config;

    const META: EngineMeta = EngineMeta {
        name: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        features: &["espeak-ng"],
    };

    const CONFIG_KEYS: &'static [Key] = &[
        Key::new(
            "x_espeak_voice",
            Kind::Text { max_len: 40 },
            "en-us",
            "An espeak-ng voice, e.g. en-us, en-gb, de",
        ),
        Key::new(
            "x_espeak_wpm",
            Kind::Int { min: 80, max: 450 },
            "165",
            "Speaking rate in words per minute",
        ),
    ];

    fn configure(section: &PluginConfig) -> Result<Config, PluginError> {
        let voice: String = section.value("x_espeak_voice")?;
        let wpm: u32 = section.value("x_espeak_wpm")?;
        let valid = |c: char| c.is_ascii_alphanumeric() || "-_+".contains(c);
        PluginConfig::check(
            !voice.is_empty() && voice.chars().all(valid),
            format!("[tts] x_espeak_voice = {voice:?} is not an espeak-ng voice name, e.g. en-us"),
        )?;
        Ok(Config { voice, wpm })
    }

    fn load(config: &Config) -> Result<Self, BoxError> {
        // One word tells whether espeak-ng and the voice work, and at which rate.
        let (sample_rate, _) = Self::run(config, &config.voice, "ready")?;
        Ok(Espeak {
            config: config.clone(),
            sample_rate,
        })
    }

    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn default_voice(config: &Config) -> String {
        config.voice.clone()
    }

    fn synthesize(&mut self, text: &str, voice: &str) -> Result<Vec<f32>, BoxError> {
        let (rate, samples) = Self::run(&self.config, voice, text)?;
        if rate != self.sample_rate {
            return Err(
                format!("espeak-ng switched to {rate} Hz from {}", self.sample_rate).into(),
            );
        }
        Ok(samples)
    }
}

export_tts!(Espeak);
