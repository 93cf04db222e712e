//! The `[tts]` keys the SDK reads for every tts plugin: output, queueing, streaming and the
//! phrase cache. Engine keys (model paths, voice, speed, …) are the engine's
//! ([`super::Synthesizer::configure`]).

use std::path::Path;

use voicehost_audio::{OutputSpec, Pacing, ProbeMode};

use voicehost_plugin_runtime::{PluginConfig, PluginError};

/// The phrases synthesised at start so they play at once: the wake acknowledgements, the
/// warm-up greeting and the error prompts of the dialog loop.
pub const DEFAULT_PHRASES: &str = "Yes?;Yes, Master?;Sup?;Yo;Hi, Master!;\
Sorry, I didn't catch that.;Sorry, I had a problem.;Audio error.";

/// The SDK's part of the `[tts]` section.
#[derive(Debug, Clone)]
pub struct Settings {
    pub output: OutputSpec,
    pub pacing: Pacing,
    pub probe: ProbeMode,
    /// Words after which the first clause of a stream is spoken even without punctuation.
    pub first_chunk_words: usize,
    /// A stream's playback starts once this much of it is synthesised (or it is complete).
    pub low_watermark_ms: u32,
    /// Synthesis pauses while this much audio is queued.
    pub high_watermark_ms: u32,
    pub max_text_bytes: usize,
    /// Synthesised at load with the default voice (`cache_phrases`, `;`-separated).
    pub phrases: Vec<String>,
}

impl Settings {
    pub fn from_config(c: &PluginConfig, log_dir: &Path) -> Result<Self, PluginError> {
        let output_text: String = c.parse_or("output", "auto".to_owned())?;
        let output = OutputSpec::parse(&output_text, log_dir.join("tts-output.wav"))
            .map_err(|e| PluginError::config(format!("[{}] {e}", c.section())))?;
        let phrases_text: String = c.parse_or("cache_phrases", DEFAULT_PHRASES.to_owned())?;
        let s = Settings {
            output,
            pacing: c.parse_or("output_pacing", Pacing::Realtime)?,
            probe: c.parse_or("audio_device_probe", ProbeMode::Strict)?,
            first_chunk_words: c.parse_or("first_chunk_words", 4)?,
            low_watermark_ms: c.parse_or("low_watermark_ms", 300)?,
            high_watermark_ms: c.parse_or("high_watermark_ms", 20_000)?,
            max_text_bytes: c.parse_or("max_text_bytes", 8192)?,
            phrases: phrases_text
                .split(';')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        PluginConfig::check(
            (1..=50).contains(&s.first_chunk_words),
            format!(
                "[tts] first_chunk_words = {} is out of range; use 1 to 50",
                s.first_chunk_words
            ),
        )?;
        PluginConfig::check(
            s.high_watermark_ms >= 1000 && s.low_watermark_ms < s.high_watermark_ms,
            "[tts] watermarks: need high_watermark_ms >= 1000 and low_watermark_ms below it"
                .to_owned(),
        )?;
        PluginConfig::check(
            (16..=1_000_000).contains(&s.max_text_bytes),
            format!(
                "[tts] max_text_bytes = {} is out of range; use 16 to 1000000",
                s.max_text_bytes
            ),
        )?;
        Ok(s)
    }
}
