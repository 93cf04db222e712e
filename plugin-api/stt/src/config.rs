//! The `[stt]` keys the SDK reads for every stt plugin: input, echo cancellation, VAD,
//! endpointing and the limit of `Transcribe`. Recogniser keys (model, threads, language,
//! …) are the engine's ([`super::Transcriber::configure`]).

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
        Kind::Choice(&["silence", "smart", "turn_model"]),
        "silence",
        "silence; smart: end early when the transcript so far reads complete; turn_model: \
         end early when the Smart Turn model hears a finished turn and the transcript so \
         far reads complete",
    ),
    Key::new(
        "smart_silence_ms",
        MS_10S,
        "600",
        "endpoint = smart: the pause after which the transcript so far is judged; \
         turn_model: the pause after which a transcript that reads complete ends the \
         utterance though the model heard the turn go on",
    ),
    Key::new(
        "turn_model",
        Kind::ModelFile,
        "models/smart-turn/smart-turn-v3.2-cpu.onnx",
        "Smart Turn v3 end-of-turn model (endpoint = turn_model)",
    ),
    Key::new(
        "turn_silence_ms",
        Kind::Int {
            min: 32,
            max: 10_000,
        },
        "200",
        "endpoint = turn_model: the pause after which the turn model judges the utterance",
    ),
    Key::new(
        "turn_threshold",
        Kind::Float {
            min: 0.05,
            max: 0.95,
        },
        "0.5",
        "endpoint = turn_model: the turn model's probability from which a turn is complete",
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
    Key::new(
        "max_transcribe_ms",
        Kind::Int {
            min: 1000,
            max: 300_000,
        },
        "30000",
        "Longest audio a caller may send to Transcribe",
    ),
];

/// How the end of an utterance is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// `vad_silence_ms` of silence, always.
    Silence,
    /// After `smart_silence_ms` of silence when the transcript so far reads as a complete
    /// request; otherwise after `vad_silence_ms`.
    Smart,
    /// After `turn_silence_ms` of silence when the Smart Turn model (`turn_model`) hears
    /// a finished turn in the audio (probability ≥ `turn_threshold`) and then the
    /// transcript so far reads as a complete request (the test of [`Endpoint::Smart`]; the
    /// audio is transcribed only when the model heard a finished turn); otherwise both
    /// judge again at the next pause, and `vad_silence_ms` of silence ends the utterance
    /// anyway.
    TurnModel,
}

impl std::str::FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "silence" => Ok(Endpoint::Silence),
            "smart" => Ok(Endpoint::Smart),
            "turn_model" => Ok(Endpoint::TurnModel),
            _ => Err("expected silence, smart or turn_model".to_owned()),
        }
    }
}

/// The SDK's part of the `[stt]` section.
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// The Smart Turn model (`endpoint = turn_model`).
    pub turn_model: PathBuf,
    /// Turn-model endpointing: the pause after which the model judges the audio so far.
    pub turn_silence_ms: u32,
    /// Turn-model endpointing: the probability from which a turn is complete.
    pub turn_threshold: f32,
    pub min_speech_ms: u32,
    pub max_utterance_ms: u32,
    pub preroll_ms: u32,
    /// The longest audio a caller may send to `Transcribe`.
    pub max_transcribe_ms: u32,
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
            turn_model: c.value::<PathBuf>("turn_model")?,
            turn_silence_ms: c.value("turn_silence_ms")?,
            turn_threshold: c.value("turn_threshold")?,
            min_speech_ms: c.value("min_speech_ms")?,
            max_utterance_ms: c.value("max_utterance_ms")?,
            preroll_ms: c.value("preroll_ms")?,
            max_transcribe_ms: c.value("max_transcribe_ms")?,
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
            s.turn_silence_ms < s.vad_silence_ms,
            format!(
                "[stt] turn_silence_ms = {} must be below vad_silence_ms ({})",
                s.turn_silence_ms, s.vad_silence_ms
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

impl Settings {
    /// The pause after which the utterance so far is judged (`smart_silence_ms`,
    /// `turn_silence_ms`); `None` with `endpoint = silence`.
    pub fn pause_ms(&self) -> Option<u32> {
        match self.endpoint {
            Endpoint::Silence => None,
            Endpoint::Smart => Some(self.smart_silence_ms),
            Endpoint::TurnModel => Some(self.turn_silence_ms),
        }
    }

    /// `endpoint = turn_model`: the late check, `smart_silence_ms` into the same pause,
    /// where a transcript that read complete ends the utterance though the model heard it
    /// go on (the rule of `endpoint = smart`); `None` otherwise, or when it would not come
    /// after the turn model's pause.
    pub fn late_ms(&self) -> Option<u32> {
        (self.endpoint == Endpoint::TurnModel && self.smart_silence_ms > self.turn_silence_ms)
            .then_some(self.smart_silence_ms)
    }
}

/// `echo_guard_margin_db`: while the assistant speaks, how far (dB) speech must be above the
/// residual echo of its voice to count (the echo guard's margin).
pub(super) fn echo_guard_margin_db(c: &PluginConfig) -> Result<f32, PluginError> {
    c.value("echo_guard_margin_db")
}
