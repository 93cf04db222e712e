//! The voicehost stt service (port 5004): capture (sound card, or a WAV file read in real
//! time), WebRTC AEC3 with tts's render reference as far end, Silero VAD endpointing and
//! Whisper (whisper.cpp through whisper-rs, ggml tiny.en by default).
//!
//! - `Start(dialog)` / `Stop(dialog)`: listen for one dialog at a time.
//! - `Results(dialog)`: one final `SttResult` per utterance, when `vad_silence_ms` of
//!   silence ended it.
//! - `AudioFrames`: the echo-cancelled 16 kHz mono audio in 10 ms frames, for kwd; a
//!   subscriber that falls behind is dropped, capture never waits.
//!
//! Models come from `voicehost models fetch` (`whisper-tiny.en`, `silero-vad`,
//! `onnxruntime`). The AEC3 build needs `scripts/aec-deps.sh` (setup.sh runs it). CUDA for
//! whisper.cpp: the `cuda` feature. SERVING once the input is open, AEC3 is running (when
//! enabled) and both models are loaded; NOT_SERVING with the reason otherwise.

mod aec;
mod config;
mod echo;
mod pipeline;
mod recognizer;
mod service;
mod vad;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub use aec::{EchoCanceller, EchoStats};
pub use config::Settings;
pub use pipeline::{FRAME, RATE};
pub use recognizer::Recognizer;
use voicehost_plugin_api::{
    GrpcServer, HealthHandle, HealthReport, Plugin, PluginContext, PluginError, PluginMeta,
    export_plugin,
};
use voicehost_proto::stt::v1::stt_service_server::SttServiceServer;

/// The stt plugin.
#[derive(Debug)]
pub struct SttPlugin {
    server: GrpcServer,
    shared: Arc<pipeline::Shared>,
}

fn load(s: &Settings, shared: Arc<pipeline::Shared>, health: HealthHandle) -> Result<(), String> {
    let started = Instant::now();
    let recognizer = Recognizer::load(
        &s.whisper_model,
        s.threads,
        &s.language,
        s.no_speech_threshold,
    )?;
    let vad = vad::Silero::load(&s.vad_model, &s.onnxruntime)?;
    let endpointer = vad::Endpointer::new(
        s.vad_threshold,
        s.vad_silence_ms,
        s.min_speech_ms,
        s.max_utterance_ms,
        s.preroll_ms,
    );
    let aec = if s.aec_enabled {
        Some(Arc::new(EchoCanceller::new()?))
    } else {
        None
    };
    let source = voicehost_audio::open_input(&s.input, pipeline::RATE, s.input_pacing)
        .map_err(|e| e.to_string())?;
    let input = source.describe();
    if s.input == voicehost_audio::InputSpec::Auto && input.starts_with("silence") {
        tracing::warn!(event = "input_fallback", input = %input, "No microphone: stt hears silence");
    }
    if aec.is_some() || shared.echo.is_some() {
        let (addr, ap, shared) = (s.render_reference.clone(), aec.clone(), Arc::clone(&shared));
        std::thread::Builder::new()
            .name("vh-stt-reference".to_owned())
            .spawn(move || pipeline::render_reference(addr, ap, shared))
            .map_err(|e| format!("cannot start the render-reference thread: {e}"))?;
    }
    let capture_health = health.clone();
    let aec_for_capture = aec.clone();
    std::thread::Builder::new()
        .name("vh-stt-capture".to_owned())
        .spawn(move || {
            pipeline::capture(
                source,
                aec_for_capture,
                vad,
                endpointer,
                recognizer,
                shared,
                capture_health,
            )
        })
        .map_err(|e| format!("cannot start the capture thread: {e}"))?;
    tracing::info!(
        event = "stt_ready",
        input = %input,
        echo = ?s.input_echo,
        aec = if aec.is_some() { "webrtc_aec3" } else { "off" },
        model = %s.whisper_model.display(),
        ms = started.elapsed().as_millis() as u64,
        "stt ready"
    );
    health.set_serving();
    Ok(())
}

impl Plugin for SttPlugin {
    fn meta() -> PluginMeta {
        PluginMeta {
            name: env!("CARGO_PKG_NAME"),
            kind: "stt",
            version: env!("CARGO_PKG_VERSION"),
            proto_package: "voicehost.stt.v1",
            features: &["webrtc_aec3", "silero_vad", "whisper", "audio_frames"],
        }
    }

    fn start(ctx: PluginContext) -> Result<Self, PluginError> {
        let settings = Settings::from_config(&ctx.config)?;
        let echo = settings
            .input_echo
            .map(|path| echo::EchoLine::new(path, pipeline::RATE));
        let shared = Arc::new(pipeline::Shared::new(settings.input_pacing, echo));
        let svc = service::Stt {
            shared: Arc::clone(&shared),
        };
        let server = GrpcServer::builder(&ctx)
            .descriptors(voicehost_proto::FILE_DESCRIPTOR_SET)
            .start(move |services, _health| {
                services.add(SttServiceServer::new(svc));
                Ok(())
            })?;
        let health = server.health().clone();
        let loader_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("vh-stt-load".to_owned())
            .spawn(move || {
                if let Err(e) = load(&settings, loader_shared, health.clone()) {
                    tracing::error!(error = %e, "stt cannot serve");
                    health.set_not_serving(e);
                }
            })
            .map_err(|e| PluginError::internal(format!("cannot start the loader thread: {e}")))?;
        Ok(Self { server, shared })
    }

    fn health(&self) -> HealthReport {
        self.server.report()
    }

    fn stop(&mut self, timeout: Duration) -> Result<(), PluginError> {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.server.stop(timeout)
    }
}

export_plugin!(SttPlugin);
