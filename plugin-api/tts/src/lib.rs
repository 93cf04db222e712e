//! The tts SDK: write a [`Synthesizer`] — text in, PCM out — and
//! [`export_tts!`] turns it into a complete `voicehost.tts.v1` plugin.
//!
//! The SDK provides everything around the engine, the same for the built-in Kokoro plugin
//! and any other:
//!
//! - the gRPC service: `Speak` (validated text, split into sentences), `SpeakStream`
//!   (LLM chunks spoken clause by clause as they stream in), `PlaybackEvents`,
//!   `RenderReference` (what was played, for stt's echo canceller), `StopSpeaking`,
//!   `Synthesize` (audio streamed back to the caller clause by clause, played nowhere: for
//!   another program's speech, such as the Wyoming server's) and `ListVoices` (the engine's
//!   [`Synthesizer::voices`]);
//! - a synthesis thread (the engine never runs on the gRPC executor), which holds the
//!   speech gate closed while it synthesises (the embedded llm waits at it between tokens:
//!   `voicehost_plugin_runtime::gate`), and a playback queue with low/high watermarks and
//!   underrun reports;
//! - the output (`output = auto | default | null | wav:FILE | <device name>`), paced in
//!   real time;
//! - the phrase cache (`cache_phrases`, synthesised at load so acknowledgements play at
//!   once), leading-silence trimming and punctuation pauses;
//! - health: NOT_SERVING with the reason until [`Synthesizer::load`] succeeded, SERVING
//!   after, and the `[tts]` keys `output`, `output_pacing`, `audio_device_probe`,
//!   `first_chunk_words`, `low_watermark_ms`, `high_watermark_ms`, `max_text_bytes` and
//!   `cache_phrases`.
//!
//! The plugin guide below (`plugin-api/README.md`) builds a whole plugin on it.
//!
#![doc = include_str!("../../README.md")]

mod config;
mod playback;
mod service;
mod synth;
mod synthesize;
mod text;
mod voices;
mod wav;

use std::sync::Arc;
use std::time::{Duration, Instant};

use voicehost_proto::tts::v1::tts_service_server::TtsServiceServer;

pub use config::{DEFAULT_PHRASES, KEYS, Settings};
pub use synth::trim_silence;
pub use text::{ClauseBuffer, sanitize, sentences, validate};
pub use voices::Voice;
pub use wav::decode_wav;

use voicehost_plugin_runtime::keys::Key;
use voicehost_plugin_runtime::{
    GrpcServer, HealthHandle, HealthReport, Plugin, PluginContext, PluginMeta, SpeechGate,
};

/// The runtime this SDK is built on, and what an engine's code names from it.
pub use voicehost_plugin_runtime::{self, BoxError, EngineMeta, PluginConfig, PluginError};

/// What every tts plugin on this SDK serves; `voicehost plugin info` lists these after the
/// engine's own features.
pub const SDK_FEATURES: &[&str] = &[
    "speak_stream",
    "render_reference",
    "phrase_cache",
    "synthesize",
    "list_voices",
];

/// A text-to-speech engine: what an alternative tts plugin writes.
///
/// The SDK calls [`configure`](Self::configure) in `start()` (so a bad key fails the start
/// with its message), then [`load`](Self::load) on a loader thread, then
/// [`synthesize`](Self::synthesize) on its synthesis thread, one sentence or clause at a
/// time, in order. None of these run on the gRPC executor, so they may block.
pub trait Synthesizer: Send + Sized + 'static {
    /// The engine's settings, parsed from its config section.
    type Config: Send + Sync + 'static;

    /// Name, version and features: what `voicehost plugin info` shows.
    const META: EngineMeta;

    /// The engine's keys of the `[tts]` section, declared beside the SDK's ([`KEYS`]):
    /// the host validates a config file against them and [`PluginConfig::value`] reads
    /// their defaults. A key the engine reads must be declared, or the plugin refuses to
    /// start with it (undeclared `x_` keys are let through for other plugins).
    const CONFIG_KEYS: &'static [Key] = &[];

    /// Reads the engine's keys from the `[tts]` section, e.g. with
    /// [`PluginConfig::value`] for declared keys ([`Self::CONFIG_KEYS`]); name the key and
    /// value in errors of checks the key's kind cannot express.
    fn configure(section: &PluginConfig) -> Result<Self::Config, PluginError>;

    /// Loads the model. The error is what health reports (NOT_SERVING), so say which file
    /// or setting is wrong and how to fix it.
    fn load(config: &Self::Config) -> Result<Self, BoxError>;

    /// Sample rate of the audio [`synthesize`](Self::synthesize) returns, in Hz.
    fn sample_rate(&self) -> u32;

    /// The voice used when a request names none.
    fn default_voice(config: &Self::Config) -> String;

    /// Whether a request may use `voice`; the error tells the client which voices exist.
    /// By default only the default voice is accepted.
    fn check_voice(config: &Self::Config, voice: &str) -> Result<(), String> {
        let default = Self::default_voice(config);
        if voice == default {
            Ok(())
        } else {
            Err(format!("{} has one voice, {default:?}", Self::META.name))
        }
    }

    /// The voices a request may name, for `ListVoices` (a client such as the Wyoming server
    /// offers them to its users): each with the languages it speaks (`en_US`, `en_GB`) and a
    /// line for people. Called on a blocking thread for each `ListVoices`, so it may read
    /// files; an error is what the call fails with (say what is wrong and how to fix it).
    /// Where the default voice is missing, the SDK lists it first, speaking `en_US`.
    ///
    /// By default: the default voice alone, speaking `en_US`.
    fn voices(config: &Self::Config) -> Result<Vec<Voice>, BoxError> {
        Ok(vec![Voice::new(
            Self::default_voice(config),
            [voices::DEFAULT_LANGUAGE],
        )])
    }

    /// Audio of one sentence or clause: mono samples in -1.0..=1.0 at
    /// [`sample_rate`](Self::sample_rate). Leading silence is trimmed by the SDK.
    fn synthesize(&mut self, text: &str, voice: &str) -> Result<Vec<f32>, BoxError>;
}

/// A tts plugin around the engine `S`: the type [`export_tts!`] exports.
pub struct TtsPlugin<S: Synthesizer> {
    server: GrpcServer,
    inner: Arc<service::Inner<S>>,
}

impl<S: Synthesizer> std::fmt::Debug for TtsPlugin<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtsPlugin")
            .field("engine", &S::META.name)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// Loads the engine and everything around it; the error is what health reports.
fn load<S: Synthesizer>(
    inner: &service::Inner<S>,
    gate: Option<SpeechGate>,
) -> Result<service::Ready, String> {
    let s = &inner.settings;
    let started = Instant::now();
    let mut engine = S::load(&inner.engine).map_err(|e| e.to_string())?;
    let rate = engine.sample_rate();
    if !(8_000..=192_000).contains(&rate) {
        return Err(format!(
            "{} reports a sample rate of {rate} Hz; use 8000 to 192000",
            S::META.name
        ));
    }
    let cache = synth::phrase_cache(&mut engine, &s.phrases, &inner.default_voice)?;
    let sink = voicehost_audio::open_output(&s.output, rate, s.pacing, s.probe)
        .map_err(|e| e.to_string())?;
    let output = sink.describe();
    let player = playback::Player::start(sink, rate, s.low_watermark_ms);
    let (jobs_tx, jobs_rx) = std::sync::mpsc::channel();
    let high = rate as usize * s.high_watermark_ms as usize / 1000;
    let synth_player = player.clone();
    std::thread::Builder::new()
        .name("vh-tts-synth".to_owned())
        .spawn(move || synth::run(engine, jobs_rx, synth_player, high, gate))
        .map_err(|e| format!("cannot start the synthesis thread: {e}"))?;
    tracing::info!(
        event = "tts_ready",
        engine = S::META.name,
        voice = %inner.default_voice,
        sample_rate = rate,
        output = %output,
        phrases = cache.len(),
        ms = started.elapsed().as_millis() as u64,
        "tts ready"
    );
    Ok(service::Ready {
        sample_rate: rate,
        player,
        jobs: std::sync::Mutex::new(jobs_tx),
        cache,
    })
}

fn spawn_loader<S: Synthesizer>(
    inner: Arc<service::Inner<S>>,
    health: HealthHandle,
    gate: Option<SpeechGate>,
) {
    let spawned = std::thread::Builder::new()
        .name("vh-tts-load".to_owned())
        .spawn(move || match load(&inner, gate) {
            Ok(ready) => {
                let _ = inner.ready.set(ready);
                health.set_serving();
            }
            Err(e) => {
                tracing::error!(error = %e, "tts cannot serve");
                health.set_not_serving(e);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "Cannot start the tts loader thread");
    }
}

impl<S: Synthesizer> Plugin for TtsPlugin<S> {
    fn meta() -> PluginMeta {
        S::META.plugin("tts", "voicehost.tts.v1")
    }

    fn sdk_features() -> &'static [&'static str] {
        SDK_FEATURES
    }

    fn config_keys() -> Option<Vec<Key>> {
        Some(KEYS.iter().chain(S::CONFIG_KEYS).copied().collect())
    }

    fn start(ctx: PluginContext) -> Result<Self, PluginError> {
        let settings = Settings::from_config(&ctx.config, &ctx.log_dir)?;
        let engine = S::configure(&ctx.config)?;
        let inner = Arc::new(service::Inner::<S>::new(settings, engine));
        let svc = service::Tts {
            inner: Arc::clone(&inner),
        };
        let server = GrpcServer::builder(&ctx)
            .descriptors(voicehost_proto::FILE_DESCRIPTOR_SET)
            .start(move |services, _health| {
                services.add(TtsServiceServer::new(svc).max_decoding_message_size(
                    voicehost_plugin_runtime::MAX_DECODING_MESSAGE_BYTES,
                ));
                Ok(())
            })?;
        let gate = SpeechGate::open(&ctx.log_dir)
            .map_err(|e| tracing::warn!(event = "speech_gate_unavailable", error = %e, "The llm will not wait while speech is synthesised"))
            .ok();
        spawn_loader(Arc::clone(&inner), server.health().clone(), gate);
        Ok(Self { server, inner })
    }

    fn health(&self) -> HealthReport {
        self.server.report()
    }

    fn stop(&mut self, timeout: Duration) -> Result<(), PluginError> {
        if let Some(ready) = self.inner.ready.get() {
            ready.player.shutdown();
        }
        self.server.stop(timeout)
    }
}

/// Exports a [`Synthesizer`] as this library's tts plugin.
///
/// ```ignore
/// voicehost_tts_sdk::export_tts!(MyEngine);
/// ```
#[macro_export]
macro_rules! export_tts {
    ($engine:ty) => {
        $crate::voicehost_plugin_runtime::export_plugin!($crate::TtsPlugin<$engine>);
    };
}
