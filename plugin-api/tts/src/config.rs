//! The `[tts]` keys the SDK reads for every tts plugin: output, queueing, streaming and the
//! phrase cache. Engine keys (model paths, voice, speed, …) are the engine's
//! ([`super::Synthesizer::configure`]).

use std::path::Path;

use voicehost_audio::{OutputSpec, Pacing, ProbeMode};

use voicehost_plugin_runtime::keys::{Key, Kind};
use voicehost_plugin_runtime::{PluginConfig, PluginError};

/// The phrases synthesised at start so they play at once: the wake acknowledgements, the
/// warm-up greeting and the error prompts of the dialog loop.
pub const DEFAULT_PHRASES: &str = "Yes?;Yes, Master?;Sup?;Yo;Hi, Master!;\
Sorry, I didn't catch that.;Sorry, I had a problem.;Audio error.";

/// The SDK's keys, declared for every tts plugin on it (the engine adds its own).
pub const KEYS: &[Key] = &[
    Key::new(
        "output",
        Kind::Text { max_len: 4096 },
        "auto",
        "Where audio goes: auto, device, device:NAME, wav:PATH or null",
    ),
    Key::new(
        "output_pacing",
        Kind::Choice(&["realtime", "fast"]),
        "realtime",
        "How a file or null output is timed",
    ),
    Key::new(
        "audio_device_probe",
        Kind::Choice(&["strict", "lenient", "off"]),
        "strict",
        "How hard the sound card is checked at start ([loader]'s value when unset)",
    ),
    Key::new(
        "first_chunk_words",
        Kind::Int { min: 1, max: 50 },
        "4",
        "Words after which a stream's first clause is spoken without punctuation",
    ),
    Key::new(
        "low_watermark_ms",
        Kind::Int {
            min: 0,
            max: 10_000,
        },
        "300",
        "A stream starts playing once this much of it is synthesised",
    ),
    Key::new(
        "high_watermark_ms",
        Kind::Int {
            min: 1000,
            max: 600_000,
        },
        "20000",
        "Synthesis pauses while this much audio is queued",
    ),
    Key::new(
        "max_text_bytes",
        Kind::Int {
            min: 16,
            max: 1_000_000,
        },
        "8192",
        "Longest text of one Speak or Synthesize request",
    ),
    Key::new(
        "cache_phrases",
        Kind::Phrases,
        DEFAULT_PHRASES,
        "Phrases synthesised at load so they play at once (the host adds the dialog's)",
    ),
];

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
        let output_text: String = c.value("output")?;
        let output = OutputSpec::parse(&output_text, log_dir.join("tts-output.wav"))
            .map_err(|e| PluginError::config(format!("[{}] {e}", c.section())))?;
        let phrases_text: String = c.value("cache_phrases")?;
        let s = Settings {
            output,
            pacing: c.value::<Pacing>("output_pacing")?,
            probe: c.value::<ProbeMode>("audio_device_probe")?,
            first_chunk_words: c.value("first_chunk_words")?,
            low_watermark_ms: c.value("low_watermark_ms")?,
            high_watermark_ms: c.value("high_watermark_ms")?,
            max_text_bytes: c.value("max_text_bytes")?,
            phrases: phrases_text
                .split(';')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        // Ranges are the keys' (checked before start); what they cannot say:
        PluginConfig::check(
            s.low_watermark_ms < s.high_watermark_ms,
            "[tts] watermarks: need low_watermark_ms below high_watermark_ms".to_owned(),
        )?;
        Ok(s)
    }
}
