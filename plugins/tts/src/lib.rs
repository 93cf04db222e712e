//! The voicehost tts service (port 5006): Kokoro-82M v1.0 (int8 ONNX through ONNX
//! Runtime), phonemes from espeak-ng (`en-us`), voice `af_heart` by default, 24 kHz.
//!
//! - `Speak` plays text and returns when it is queued or when it finished (`wait`).
//! - `SpeakStream` speaks an LLM reply while it streams: the first clause is synthesised as
//!   soon as it is complete (or after `first_chunk_words` words), so audio starts early.
//! - `PlaybackEvents` reports started / chunk_played / finished / interrupted / underrun.
//! - `RenderReference` streams exactly what was played, for stt's echo canceller.
//! - `StopSpeaking` drops the current speech (barge-in).
//!
//! Short fixed phrases (`cache_phrases`: acknowledgements, greeting, error prompts) are
//! synthesised at start, so they play within milliseconds. Model files come from
//! `voicehost models fetch` (models `kokoro`, `kokoro-voices`, `onnxruntime`). CUDA: build
//! with the `cuda` feature and set `device = cuda`. The service reports SERVING once the
//! model, voice, phonemiser, output and phrase cache are ready, NOT_SERVING with the reason
//! otherwise.

mod config;
mod engine;
mod g2p;
mod playback;
mod service;
mod synth;
mod text;

use std::sync::Arc;
use std::time::{Duration, Instant};

use voicehost_plugin_api::{
    GrpcServer, HealthHandle, HealthReport, Plugin, PluginContext, PluginError, PluginMeta,
    export_plugin,
};
use voicehost_proto::tts::v1::tts_service_server::TtsServiceServer;

pub use config::Settings;
pub use engine::{Kokoro, SAMPLE_RATE};
pub use g2p::G2p;
pub use synth::Synth;

/// The tts plugin.
#[derive(Debug)]
pub struct TtsPlugin {
    server: GrpcServer,
    inner: Arc<service::Inner>,
}

/// Loads everything the service needs; the error is what health reports.
fn load(inner: &service::Inner) -> Result<service::Ready, String> {
    let s = &inner.settings;
    let started = Instant::now();
    let g2p = G2p::new("en-us")?;
    let kokoro = engine::Kokoro::load(s).map_err(|e| e.to_string())?;
    let mut synth = Synth {
        kokoro,
        g2p,
        speed: s.speed,
    };
    let cache = synth.phrase_cache(s)?;
    let sink = voicehost_audio::open_output(&s.output, SAMPLE_RATE, s.pacing, s.probe)
        .map_err(|e| e.to_string())?;
    let output = sink.describe();
    let player = playback::Player::start(sink, s.low_watermark_ms);
    let (jobs_tx, jobs_rx) = std::sync::mpsc::channel();
    let high = SAMPLE_RATE as usize * s.high_watermark_ms as usize / 1000;
    let synth_player = player.clone();
    std::thread::Builder::new()
        .name("vh-tts-synth".to_owned())
        .spawn(move || synth::run(synth, jobs_rx, synth_player, high))
        .map_err(|e| format!("cannot start the synthesis thread: {e}"))?;
    tracing::info!(
        event = "tts_ready",
        voice = %s.voice,
        output = %output,
        phrases = cache.len(),
        ms = started.elapsed().as_millis() as u64,
        "Kokoro ready"
    );
    Ok(service::Ready {
        player,
        jobs: std::sync::Mutex::new(jobs_tx),
        cache,
    })
}

fn spawn_loader(inner: Arc<service::Inner>, health: HealthHandle) {
    let spawned = std::thread::Builder::new()
        .name("vh-tts-load".to_owned())
        .spawn(move || match load(&inner) {
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

impl Plugin for TtsPlugin {
    fn meta() -> PluginMeta {
        PluginMeta {
            name: env!("CARGO_PKG_NAME"),
            kind: "tts",
            version: env!("CARGO_PKG_VERSION"),
            proto_package: "voicehost.tts.v1",
            features: &["kokoro", "speak_stream", "render_reference", "phrase_cache"],
        }
    }

    fn start(ctx: PluginContext) -> Result<Self, PluginError> {
        let settings = Settings::from_config(&ctx.config, &ctx.log_dir)?;
        let inner = Arc::new(service::Inner::new(settings));
        let svc = service::Tts {
            inner: Arc::clone(&inner),
        };
        let server =
            GrpcServer::builder(&ctx)
                .descriptors(voicehost_proto::FILE_DESCRIPTOR_SET)
                .start(move |services, _health| {
                    services.add(TtsServiceServer::new(svc).max_decoding_message_size(
                        voicehost_plugin_api::MAX_DECODING_MESSAGE_BYTES,
                    ));
                    Ok(())
                })?;
        spawn_loader(Arc::clone(&inner), server.health().clone());
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

export_plugin!(TtsPlugin);
