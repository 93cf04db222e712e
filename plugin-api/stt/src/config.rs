//! The `[stt]` keys the SDK reads for every stt plugin: input, echo cancellation, VAD and
//! endpointing. Recogniser keys (model, threads, language, …) are the engine's
//! ([`super::Transcriber::configure`]).

use std::path::PathBuf;

use super::echo::EchoPath;
use voicehost_audio::{InputSpec, Pacing, ProbeMode};
use voicehost_plugin_runtime::{PluginConfig, PluginError};

/// How the end of an utterance is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `vad_silence_ms` of silence, always.
    Silence,
    /// After `smart_silence_ms` of silence when the transcript so far reads as a complete
    /// request; otherwise after `vad_silence_ms`.
    Smart,
}

impl std::str::FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "silence" => Ok(Endpoint::Silence),
            "smart" => Ok(Endpoint::Smart),
            _ => Err("expected silence or smart".to_owned()),
        }
    }
}

/// The SDK's part of the `[stt]` section.
#[derive(Debug, Clone)]
pub struct Settings {
    pub input: InputSpec,
    pub input_pacing: Pacing,
    pub probe: ProbeMode,
    pub aec_enabled: bool,
    /// `host:port` of tts, whose RenderReference is the echo canceller's far end.
    pub render_reference: String,
    pub vad_model: PathBuf,
    pub onnxruntime: PathBuf,
    pub vad_threshold: f32,
    pub vad_silence_ms: u32,
    pub endpoint: Endpoint,
    /// Smart endpointing: the pause after which the transcript so far is judged.
    pub smart_silence_ms: u32,
    pub min_speech_ms: u32,
    pub max_utterance_ms: u32,
    pub preroll_ms: u32,
    /// A simulated speaker → microphone path (`input_echo`), for machines without both.
    pub input_echo: Option<EchoPath>,
}

impl Settings {
    pub fn from_config(c: &PluginConfig) -> Result<Self, PluginError> {
        let input: String = c.parse_or("input", "auto".to_owned())?;
        let input =
            InputSpec::parse(&input).map_err(|e| PluginError::config(format!("[stt] {e}")))?;
        let s = Settings {
            input,
            input_pacing: c.parse_or("input_pacing", Pacing::Realtime)?,
            probe: c.parse_or("audio_device_probe", ProbeMode::Strict)?,
            aec_enabled: c.parse_or("aec_enabled", super::aec::AVAILABLE)?,
            render_reference: c.parse_or("render_reference", "127.0.0.1:5006".to_owned())?,
            vad_model: c.parse_or(
                "vad_model",
                PathBuf::from("models/openwakeword/silero_vad.onnx"),
            )?,
            onnxruntime: c.parse_or(
                "onnxruntime_library",
                PathBuf::from("models/onnxruntime/libonnxruntime.so"),
            )?,
            vad_threshold: c.parse_or("vad_threshold", 0.5)?,
            vad_silence_ms: c.parse_or("vad_silence_ms", 2000)?,
            endpoint: c.parse_or("endpoint", Endpoint::Silence)?,
            smart_silence_ms: c.parse_or("smart_silence_ms", 600)?,
            min_speech_ms: c.parse_or("min_speech_ms", 250)?,
            max_utterance_ms: c.parse_or("max_utterance_ms", 30_000)?,
            preroll_ms: c.parse_or("preroll_ms", 300)?,
            input_echo: match c.parse_or("input_echo", "off".to_owned())?.as_str() {
                "off" => None,
                path => Some(path.parse().map_err(|e| {
                    PluginError::config(format!("[stt] input_echo = {path:?}: {e}"))
                })?),
            },
        };
        PluginConfig::check(
            (0.05..=0.95).contains(&s.vad_threshold),
            format!(
                "[stt] vad_threshold = {} is out of range; use 0.05 to 0.95",
                s.vad_threshold
            ),
        )?;
        PluginConfig::check(
            (100..=10_000).contains(&s.vad_silence_ms),
            format!(
                "[stt] vad_silence_ms = {} is out of range; use 100 to 10000",
                s.vad_silence_ms
            ),
        )?;
        PluginConfig::check(
            (100..=10_000).contains(&s.smart_silence_ms) && s.smart_silence_ms < s.vad_silence_ms,
            format!(
                "[stt] smart_silence_ms = {} is out of range; use 100 to 10000, below vad_silence_ms ({})",
                s.smart_silence_ms, s.vad_silence_ms
            ),
        )?;
        PluginConfig::check(
            s.min_speech_ms < s.max_utterance_ms && (1000..=120_000).contains(&s.max_utterance_ms),
            "[stt] need min_speech_ms < max_utterance_ms, and max_utterance_ms from 1000 to 120000"
                .to_owned(),
        )?;
        PluginConfig::check(
            s.preroll_ms <= 2000,
            format!(
                "[stt] preroll_ms = {} is too long; use at most 2000",
                s.preroll_ms
            ),
        )?;
        PluginConfig::check(
            !s.aec_enabled || super::aec::AVAILABLE,
            super::aec::NOT_BUILT,
        )?;
        PluginConfig::check(
            s.render_reference.parse::<std::net::SocketAddr>().is_ok(),
            format!(
                "[stt] render_reference = {:?} is not host:port (e.g. 127.0.0.1:5006)",
                s.render_reference
            ),
        )?;
        Ok(s)
    }
}

/// `echo_guard_margin_db`: while the assistant speaks, how far (dB) speech must be above the
/// residual echo of its voice to count (the echo guard's margin).
pub(super) fn echo_guard_margin_db(c: &PluginConfig) -> Result<f32, PluginError> {
    let margin: f32 = c.parse_or("echo_guard_margin_db", 10.0)?;
    PluginConfig::check(
        (0.0..=40.0).contains(&margin),
        format!("[stt] echo_guard_margin_db = {margin} is out of range; use 0 to 40"),
    )?;
    Ok(margin)
}
