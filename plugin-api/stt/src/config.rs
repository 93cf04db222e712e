//! The `[stt]` keys the SDK reads for every stt plugin: input, echo cancellation, VAD and
//! endpointing. Recogniser keys (model, threads, language, …) are the engine's
//! ([`super::Transcriber::configure`]).

use std::path::PathBuf;

use super::echo::EchoPath;
use voicehost_audio::{InputSpec, Pacing, ProbeMode};
use voicehost_plugin_runtime::keys::{Key, Kind};
use voicehost_plugin_runtime::{PluginConfig, PluginError};

const MS_10S: Kind = Kind::Int {
    min: 100,
    max: 10_000,
};

/// The SDK's keys, declared for every stt plugin on it (the engine adds its own).
pub const KEYS: &[Key] = &[
    Key::new(
        "input",
        Kind::Text { max_len: 4096 },
        "auto",
        "Where audio comes from: auto, device, device:NAME, wav:PATH[:loop] or null",
    ),
    Key::new(
        "input_pacing",
        Kind::Choice(&["realtime", "fast"]),
        "realtime",
        "How a WAV input is timed",
    ),
    Key::new(
        "input_echo",
        Kind::Text { max_len: 32 },
        "off",
        "A simulated speaker → microphone path, GAIN@DELAY_MS (e.g. 0.5@80), or off",
    ),
    Key::new(
        "audio_device_probe",
        Kind::Choice(&["strict", "lenient", "off"]),
        "strict",
        "How hard the capture device is checked at start ([loader]'s value when unset)",
    ),
    Key::new(
        "aec_enabled",
        Kind::Bool,
        if super::aec::AVAILABLE {
            "true"
        } else {
            "false"
        },
        "WebRTC AEC3 echo cancellation with tts's render reference as far end",
    ),
    Key::new(
        "aec_backend",
        Kind::Choice(&["webrtc_aec3"]),
        "webrtc_aec3",
        "The echo canceller",
    ),
    Key::new(
        "render_reference",
        Kind::SocketAddr,
        "127.0.0.1:5006",
        "host:port of tts (the host fills in the [tts] port when unset)",
    ),
    Key::new(
        "echo_guard_margin_db",
        Kind::Float {
            min: 0.0,
            max: 40.0,
        },
        "10",
        "While the assistant speaks, how far speech must be above its residual echo",
    ),
    Key::new(
        "vad_model",
        Kind::ModelFile,
        "models/openwakeword/silero_vad.onnx",
        "Silero VAD model",
    ),
    Key::new(
        "onnxruntime_library",
        Kind::ModelFile,
        "models/onnxruntime/libonnxruntime.so",
        "ONNX Runtime library",
    ),
    Key::new(
        "vad_threshold",
        Kind::Float {
            min: 0.05,
            max: 0.95,
        },
        "0.5",
        "Speech probability above which a 32 ms window is speech",
    ),
    Key::new(
        "vad_silence_ms",
        MS_10S,
        "2000",
        "Silence that ends an utterance",
    ),
    Key::new(
        "endpoint",
        Kind::Choice(&["silence", "smart"]),
        "silence",
        "silence, or smart: end early when the transcript so far reads complete",
    ),
    Key::new(
        "smart_silence_ms",
        MS_10S,
        "600",
        "Smart endpointing: the pause after which the transcript so far is judged",
    ),
    Key::new(
        "min_speech_ms",
        Kind::Int {
            min: 0,
            max: 10_000,
        },
        "250",
        "Shorter speech is ignored",
    ),
    Key::new(
        "max_utterance_ms",
        Kind::Int {
            min: 1000,
            max: 120_000,
        },
        "30000",
        "An utterance is cut after this long",
    ),
    Key::new(
        "preroll_ms",
        Kind::Int { min: 0, max: 2000 },
        "300",
        "Audio kept from before the speech began",
    ),
];

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
        let input: String = c.value("input")?;
        let input =
            InputSpec::parse(&input).map_err(|e| PluginError::config(format!("[stt] {e}")))?;
        let s = Settings {
            input,
            input_pacing: c.value::<Pacing>("input_pacing")?,
            probe: c.value::<ProbeMode>("audio_device_probe")?,
            aec_enabled: c.value("aec_enabled")?,
            render_reference: c.value("render_reference")?,
            vad_model: c.value::<PathBuf>("vad_model")?,
            onnxruntime: c.value::<PathBuf>("onnxruntime_library")?,
            vad_threshold: c.value("vad_threshold")?,
            vad_silence_ms: c.value("vad_silence_ms")?,
            endpoint: c.value::<Endpoint>("endpoint")?,
            smart_silence_ms: c.value("smart_silence_ms")?,
            min_speech_ms: c.value("min_speech_ms")?,
            max_utterance_ms: c.value("max_utterance_ms")?,
            preroll_ms: c.value("preroll_ms")?,
            input_echo: match c.value::<String>("input_echo")?.as_str() {
                "off" => None,
                path => Some(path.parse().map_err(|e| {
                    PluginError::config(format!("[stt] input_echo = {path:?}: {e}"))
                })?),
            },
        };
        // Ranges are the keys' (checked before start); what they cannot say:
        PluginConfig::check(
            s.smart_silence_ms < s.vad_silence_ms,
            format!(
                "[stt] smart_silence_ms = {} must be below vad_silence_ms ({})",
                s.smart_silence_ms, s.vad_silence_ms
            ),
        )?;
        PluginConfig::check(
            s.min_speech_ms < s.max_utterance_ms,
            "[stt] need min_speech_ms < max_utterance_ms".to_owned(),
        )?;
        PluginConfig::check(
            !s.aec_enabled || super::aec::AVAILABLE,
            super::aec::NOT_BUILT,
        )?;
        Ok(s)
    }
}

/// `echo_guard_margin_db`: while the assistant speaks, how far (dB) speech must be above the
/// residual echo of its voice to count (the echo guard's margin).
pub(super) fn echo_guard_margin_db(c: &PluginConfig) -> Result<f32, PluginError> {
    c.value("echo_guard_margin_db")
}
