//! The stt SDK (feature `stt`): write a [`Transcriber`] — a 16 kHz utterance in, text out —
//! and [`export_stt!`] turns it into a complete `voicehost.stt.v1` plugin.
//!
//! The SDK provides everything around the recogniser, the same for the built-in Whisper
//! plugin and any other:
//!
//! - capture: sound card, a WAV file read in real time, `null`, or `auto` (microphone, else
//!   silence); `SetInput` switches it at run time;
//! - WebRTC AEC3 with tts's `RenderReference` as far end, and a simulated speaker →
//!   microphone path (`input_echo`) for machines without both;
//! - Silero VAD endpointing (`vad_threshold`, `vad_silence_ms`, `min_speech_ms`,
//!   `max_utterance_ms`, `preroll_ms`; Silero v4 or v5/v6, told apart by the model's
//!   inputs), smart endpointing (`endpoint = smart`: after `smart_silence_ms` the
//!   recogniser transcribes the audio so far, off the capture thread, and a transcript that
//!   reads as a complete request, or likely one, ends the utterance at once) and
//!   turn-model endpointing (`endpoint = turn_model`: after `turn_silence_ms` Pipecat's
//!   Smart Turn v3 model ([`SmartTurn`], on [`LogMel`] features) judges the last 8 s of
//!   audio, and a turn it hears finished is transcribed and ends the utterance when the
//!   transcript reads complete as well; a transcript that reads complete while the model
//!   disagrees, or likely complete, ends it at `smart_silence_ms`; `vad_silence_ms` stays
//!   the fallback);
//! - the gRPC service: `Start`/`Stop(dialog)`, `Results` (a `speech_started` result at
//!   onset, one final per utterance), `AudioFrames` (the echo-cancelled audio kwd listens
//!   to), `SetInput`, `Transcribe` (audio a caller sends, such as the Wyoming server's, at
//!   most `max_transcribe_ms`: one utterance, between the dialog's, with the engine's
//!   [`Transcriber::transcribe_in`]) and `GetInfo` (the engine's name and version, its
//!   [`Transcriber::model_name`] and [`Transcriber::languages`]);
//! - a recognition thread (the engine never runs on the gRPC executor or the capture
//!   thread), and health: NOT_SERVING with the reason until everything loaded.
//!
//! The VAD needs ONNX Runtime (`onnxruntime_library`) and the Silero model
//! (`vad_model`). Echo cancellation is the default feature `aec`: building it needs meson,
//! ninja and abseil (`scripts/aec-deps.sh`); a plugin without it sets
//! `default-features = false` and builds with cargo alone (`aec_enabled` is then false).

mod aec;
mod capture;
mod complete;
mod config;
mod echo;
mod guard;
mod input;
mod mel;
mod played;
mod recognize;
mod reference;
mod service;
mod shared;
mod silero;
mod transcribe;
mod turn;
mod vad;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use voicehost_proto::stt::v1::stt_service_server::SttServiceServer;

pub use aec::{EchoCanceller, EchoStats};
pub use capture::{FRAME, RATE};
pub use complete::reads_complete;
pub use config::{Endpoint, KEYS, Settings};
pub use mel::{FRAMES, LogMel, N_MELS, TURN_SAMPLES};
pub use turn::{SmartTurn, TurnCheck};

use voicehost_plugin_runtime::keys::Key;
use voicehost_plugin_runtime::{
    GrpcServer, HealthHandle, HealthReport, Plugin, PluginContext, PluginMeta,
};

/// The runtime this SDK is built on, and what an engine's code names from it.
pub use voicehost_plugin_runtime::{self, BoxError, EngineMeta, PluginConfig, PluginError};

/// What every stt plugin on this SDK serves; `voicehost plugin info` lists these after the
/// engine's own features.
pub const SDK_FEATURES: &[&str] = &[
    #[cfg(feature = "aec")]
    "webrtc_aec3",
    "silero_vad",
    "audio_frames",
    "set_input",
    "smart_endpointing",
    "turn_model_endpointing",
    "barge_in",
    "transcribe",
];

/// What a [`Transcriber`] made of one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    pub text: String,
    /// How sure the recogniser is that there was no speech (0 when it cannot tell).
    pub no_speech_prob: f32,
}

/// A speech recogniser: what an alternative stt plugin writes.
///
/// The SDK calls [`configure`](Self::configure) in `start()` (so a bad key fails the start
/// with its message), [`model_name`](Self::model_name) and [`languages`](Self::languages)
/// there too, [`load`](Self::load) on a loader thread, then
/// [`transcribe`](Self::transcribe) (the dialog's utterances) and
/// [`transcribe_in`](Self::transcribe_in) (a caller's audio) on its recognition thread, one
/// at a time. None of these run on the gRPC executor or the capture thread, so they may
/// block.
pub trait Transcriber: Send + Sized + 'static {
    /// The engine's settings, parsed from its config section.
    type Config: Send + Sync + 'static;

    /// Name, version and features: what `voicehost plugin info` shows.
    const META: EngineMeta;

    /// The engine's keys of the `[stt]` section, declared beside the SDK's ([`KEYS`]):
    /// the host validates a config file against them and [`PluginConfig::value`] reads
    /// their defaults. A key the engine reads must be declared, or the plugin refuses to
    /// start with it (undeclared `x_` keys are let through for other plugins).
    const CONFIG_KEYS: &'static [Key] = &[];

    /// Reads the engine's keys from the `[stt]` section. Third-party keys start with `x_`
    /// (the host passes them through unchecked).
    fn configure(section: &PluginConfig) -> Result<Self::Config, PluginError>;

    /// Loads the model. The error is what health reports (NOT_SERVING).
    fn load(config: &Self::Config) -> Result<Self, BoxError>;

    /// Text of one utterance ([`RATE`] Hz mono, -1.0..=1.0, as the VAD cut it, with
    /// `preroll_ms` before the speech); `Ok(None)` when it holds no words.
    fn transcribe(&mut self, samples: &[f32]) -> Result<Option<Transcript>, BoxError>;

    /// Text of audio a caller sent (`Transcribe`: the whole audio is one utterance, with no
    /// VAD cut and no echo cancellation), in `language`: one of
    /// [`languages`](Self::languages), or empty for the configured one. The default
    /// ignores `language` and calls [`transcribe`](Self::transcribe): enough for an engine
    /// of one language; one that lists more overrides this.
    fn transcribe_in(
        &mut self,
        samples: &[f32],
        language: &str,
    ) -> Result<Option<Transcript>, BoxError> {
        let _ = language;
        self.transcribe(samples)
    }

    /// The model, as `GetInfo` names it (e.g. the file stem `ggml-tiny.en-q8_0`); the
    /// default, empty, says nothing.
    fn model_name(config: &Self::Config) -> String {
        let _ = config;
        String::new()
    }

    /// The language codes the engine recognises (e.g. `en`), the one it uses unless asked
    /// first: `GetInfo` lists them and `Transcribe` refuses any other. The default, empty,
    /// means the engine cannot tell: `Transcribe` then accepts any language.
    fn languages(config: &Self::Config) -> Vec<String> {
        let _ = config;
        Vec::new()
    }
}

/// An stt plugin around the recogniser `T`: the type [`export_stt!`] exports.
pub struct SttPlugin<T: Transcriber> {
    server: GrpcServer,
    shared: Arc<shared::Shared>,
    _engine: std::marker::PhantomData<fn() -> T>,
}

impl<T: Transcriber> std::fmt::Debug for SttPlugin<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SttPlugin")
            .field("engine", &T::META.name)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

fn load<T: Transcriber>(
    s: &Settings,
    margin_db: f32,
    engine: &T::Config,
    shared: Arc<shared::Shared>,
    health: HealthHandle,
) -> Result<(), String> {
    let started = Instant::now();
    let recognizer = T::load(engine).map_err(|e| e.to_string())?;
    let vad = silero::Silero::load(&s.vad_model, &s.onnxruntime)?;
    let judge = match s.endpoint {
        Endpoint::TurnModel => recognize::Judge::Turn {
            model: Box::new(SmartTurn::load(&s.turn_model, &s.onnxruntime)?),
            threshold: s.turn_threshold,
        },
        _ => recognize::Judge::Text,
    };
    let endpointer = vad::Endpointer::new(
        s.vad_threshold,
        s.vad_silence_ms,
        s.min_speech_ms,
        s.max_utterance_ms,
        s.preroll_ms,
        s.pause_ms(),
        s.late_ms(),
    );
    let aec = if s.aec_enabled {
        Some(Arc::new(EchoCanceller::new()?))
    } else {
        None
    };
    let source =
        voicehost_audio::open_input(&s.input, RATE, s.input_pacing).map_err(|e| e.to_string())?;
    let input = source.describe();
    if s.input == voicehost_audio::InputSpec::Auto && input.starts_with("silence") {
        tracing::warn!(event = "input_fallback", input = %input, "No microphone: stt hears silence");
    }
    // The render reference feeds the echo canceller, the simulated echo path and the
    // echo guard (which needs it even without echo cancellation).
    let (addr, reference_shared) = (s.render_reference.clone(), Arc::clone(&shared));
    std::thread::Builder::new()
        .name("vh-stt-reference".to_owned())
        .spawn(move || reference::render_reference(addr, reference_shared))
        .map_err(|e| format!("cannot start the render-reference thread: {e}"))?;
    let guard = guard::EchoGuard::new(margin_db);
    let vad_version = vad.version();
    let capture_health = health.clone();
    let aec_for_capture = aec.clone();
    std::thread::Builder::new()
        .name("vh-stt-capture".to_owned())
        .spawn(move || {
            capture::capture(
                source,
                aec_for_capture,
                capture::Detection {
                    vad,
                    guard,
                    endpointer,
                    judge,
                },
                recognizer,
                shared,
                capture_health,
            )
        })
        .map_err(|e| format!("cannot start the capture thread: {e}"))?;
    tracing::info!(
        event = "stt_ready",
        engine = T::META.name,
        input = %input,
        echo = ?s.input_echo,
        aec = if aec.is_some() { "webrtc_aec3" } else { "off" },
        endpoint = ?s.endpoint,
        vad = ?vad_version,
        ms = started.elapsed().as_millis() as u64,
        "stt ready"
    );
    health.set_serving();
    Ok(())
}

impl<T: Transcriber> Plugin for SttPlugin<T> {
    fn meta() -> PluginMeta {
        T::META.plugin("stt", "voicehost.stt.v1")
    }

    fn sdk_features() -> &'static [&'static str] {
        SDK_FEATURES
    }

    fn config_keys() -> Option<Vec<Key>> {
        Some(KEYS.iter().chain(T::CONFIG_KEYS).copied().collect())
    }

    fn start(ctx: PluginContext) -> Result<Self, PluginError> {
        let settings = Settings::from_config(&ctx.config)?;
        let margin_db = config::echo_guard_margin_db(&ctx.config)?;
        let engine = T::configure(&ctx.config)?;
        let echo = settings
            .input_echo
            .map(|path| echo::EchoLine::new(path, RATE));
        let shared = Arc::new(shared::Shared::new(settings.input_pacing, echo));
        let transcribe = transcribe::Transcribe::new::<T>(&engine, settings.max_transcribe_ms);
        let max_message = transcribe.max_message_bytes();
        let svc = service::Stt {
            shared: Arc::clone(&shared),
            transcribe,
        };
        let server = GrpcServer::builder(&ctx)
            .descriptors(voicehost_proto::FILE_DESCRIPTOR_SET)
            .start(move |services, _health| {
                services.add(SttServiceServer::new(svc).max_decoding_message_size(max_message));
                Ok(())
            })?;
        let health = server.health().clone();
        let loader_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("vh-stt-load".to_owned())
            .spawn(move || {
                if let Err(e) =
                    load::<T>(&settings, margin_db, &engine, loader_shared, health.clone())
                {
                    tracing::error!(error = %e, "stt cannot serve");
                    health.set_not_serving(e);
                }
            })
            .map_err(|e| PluginError::internal(format!("cannot start the loader thread: {e}")))?;
        Ok(Self {
            server,
            shared,
            _engine: std::marker::PhantomData,
        })
    }

    fn health(&self) -> HealthReport {
        self.server.report()
    }

    fn stop(&mut self, timeout: Duration) -> Result<(), PluginError> {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.close_requests();
        self.server.stop(timeout)
    }
}

/// Exports a [`Transcriber`] as this library's stt plugin.
///
/// ```ignore
/// voicehost_stt_sdk::export_stt!(MyRecognizer);
/// ```
#[macro_export]
macro_rules! export_stt {
    ($engine:ty) => {
        $crate::voicehost_plugin_runtime::export_plugin!($crate::SttPlugin<$engine>);
    };
}
