//! The `[tts]` section.

use std::path::PathBuf;

use voicehost_audio::{OutputSpec, Pacing, ProbeMode};
use voicehost_plugin_api::{PluginConfig, PluginError};

/// The phrases synthesised at start so they play at once: the wake acknowledgements, the
/// warm-up greeting and the error prompts of the dialog loop.
pub const DEFAULT_PHRASES: &str = "Yes?;Yes, Master?;Sup?;Yo;Hi, Master!;\
Sorry, I didn't catch that.;Sorry, I had a problem.;Audio error.";

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda,
}

impl std::str::FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda),
            _ => Err("expected cpu or cuda".to_owned()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub model: PathBuf,
    pub vocab: PathBuf,
    pub voices_dir: PathBuf,
    pub voice: String,
    pub onnxruntime: PathBuf,
    pub speed: f32,
    pub device: Device,
    pub threads: usize,
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
    pub phrases: Vec<String>,
}

impl Settings {
    pub fn from_config(c: &PluginConfig, log_dir: &std::path::Path) -> Result<Self, PluginError> {
        let path = |key: &str, default: &str| -> Result<PathBuf, PluginError> {
            c.parse_or(key, PathBuf::from(default))
        };
        let output_text: String = c.parse_or("output", "auto".to_owned())?;
        let output = OutputSpec::parse(&output_text, log_dir.join("tts-output.wav"))
            .map_err(|e| PluginError::config(format!("[tts] {e}")))?;
        let phrases_text: String = c.parse_or("cache_phrases", DEFAULT_PHRASES.to_owned())?;
        let s = Settings {
            model: path("model", "models/kokoro/kokoro-v1.0.int8.onnx")?,
            vocab: path("vocab", "models/kokoro/vocab.json")?,
            voices_dir: path("voices_dir", "models/kokoro/voices")?,
            voice: c.parse_or("voice", "af_heart".to_owned())?,
            onnxruntime: path(
                "onnxruntime_library",
                "models/onnxruntime/libonnxruntime.so",
            )?,
            speed: c.parse_or("speed", 1.0)?,
            device: c.parse_or("device", Device::Cpu)?,
            threads: c.parse_or("threads", 2)?,
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
            (0.5..=2.0).contains(&s.speed),
            format!("[tts] speed = {} is out of range; use 0.5 to 2.0", s.speed),
        )?;
        PluginConfig::check(
            (1..=64).contains(&s.threads),
            format!("[tts] threads = {} is out of range; use 1 to 64", s.threads),
        )?;
        PluginConfig::check(
            s.voice
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                && !s.voice.is_empty(),
            format!(
                "[tts] voice = {:?} is not a voice name (letters, digits, _), e.g. af_heart",
                s.voice
            ),
        )?;
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
