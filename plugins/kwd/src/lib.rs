//! The voicehost kwd service (port 5003): wake-word detection (openWakeWord or
//! microWakeWord) on stt's echo-cancelled audio.
//!
//! - Audio: stt's `AudioFrames` stream at `audio_source` (the host points it at the stt
//!   slot). kwd is SERVING only while that stream is connected and the models are loaded;
//!   when the stream drops it reports NOT_SERVING and reconnects by itself.
//! - Engine (`engine`): openWakeWord — melspectrogram → speech embedding → wake
//!   classifiers, scores equal to openwakeword 0.4.0's on the same audio — or microWakeWord
//!   — the TFLite Micro frontend's features → streaming TensorFlow Lite models (the C
//!   library loaded at run time). `wake_models` names the models (alexa by default; several
//!   at once, each with its own threshold); scores per 80 ms chunk (openWakeWord) or
//!   per 30 ms model step (microWakeWord).
//! - `Events`: `WakeDetected{confidence, ts, model}` once per utterance of a wake word
//!   (`confidence_threshold`, `cooldown_ms`).
//! - `Disable(reason)` / `Enable(reason)`: the host disables detection during a dialog and
//!   while tts speaks; re-arming starts from fresh audio.
//! - `Detect`: the same detection on audio a caller streams (the Wyoming server), with an
//!   engine of its own per call (loaded on first use, at most `max_detect_streams`); its
//!   detections go back to that caller only, never to `Events`.
//!
//! openWakeWord's released wake models are CC BY-NC-SA 4.0 (non-commercial); microWakeWord's
//! are Apache-2.0. `voicehost models fetch --only openwakeword,microwakeword` installs them.

mod config;
mod detect;
pub mod detector;
pub mod embedding;
pub mod engine;
mod listen;
pub mod micro;
mod onnx_split;
mod service;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub use config::Settings;
pub use detector::{Detection, Detector};
pub use engine::{CHUNK, Engine, EngineKind, ModelPaths, RATE, Scored};
use voicehost_plugin_runtime::keys::{Key, Problem};
use voicehost_plugin_runtime::{
    GrpcServer, HealthHandle, HealthReport, Plugin, PluginConfig, PluginContext, PluginError,
    PluginMeta, export_plugin,
};
use voicehost_proto::kwd::v1::kwd_service_server::KwdServiceServer;

/// The kwd plugin.
#[derive(Debug)]
pub struct KwdPlugin {
    server: GrpcServer,
    shared: Arc<listen::Shared>,
}

fn load(settings: Settings, shared: Arc<listen::Shared>, health: HealthHandle) {
    let started = Instant::now();
    let engine = match Engine::load(&settings.models) {
        Ok(engine) => engine,
        Err(e) => {
            tracing::error!(error = %e, "kwd cannot serve");
            health.set_not_serving(e);
            return;
        }
    };
    let models = engine.models();
    tracing::info!(
        event = "kwd_ready",
        engine = %engine.describe(),
        models = %models.join(","),
        thresholds = ?settings.thresholds,
        cooldown_ms = settings.cooldown_ms,
        ms = started.elapsed().as_millis() as u64,
        "Wake word models loaded"
    );
    if let Ok(mut m) = shared.models.lock() {
        *m = models;
    }
    if let Ok(mut e) = shared.engine.lock() {
        *e = engine.kind().name().to_owned();
    }
    let detector = Detector::new(settings.thresholds, settings.cooldown_ms, RATE);
    listen::run(engine, detector, settings.audio_source, shared, health);
}

impl Plugin for KwdPlugin {
    fn config_keys() -> Option<Vec<Key>> {
        Some(config::KEYS.to_vec())
    }

    /// What depends on several keys (a wake model of the other engine, a threshold for a
    /// model that is not loaded), for `voicehost validate` at each key's line.
    fn check_config(config: &PluginConfig) -> Vec<Problem> {
        config::problems(config)
    }

    fn meta() -> PluginMeta {
        PluginMeta {
            name: env!("CARGO_PKG_NAME"),
            kind: "kwd",
            version: env!("CARGO_PKG_VERSION"),
            proto_package: "voicehost.kwd.v1",
            features: &["openwakeword", "detect"],
        }
    }

    fn start(ctx: PluginContext) -> Result<Self, PluginError> {
        // A config error is reported as NOT_SERVING with the reason, like a broken model.
        let settings = Settings::from_config(&ctx.config);
        let shared = Arc::new(listen::Shared::default());
        let svc = service::Kwd {
            shared: Arc::clone(&shared),
            detect: match &settings {
                Ok(settings) => Ok(Arc::new(detect::Pool::new(settings))),
                Err(e) => Err(format!("kwd cannot detect: {e}; fix the [kwd] section")),
            },
        };
        let server = GrpcServer::builder(&ctx)
            .descriptors(voicehost_proto::FILE_DESCRIPTOR_SET)
            .start(move |services, _health| {
                services.add(KwdServiceServer::new(svc));
                Ok(())
            })?;
        let health = server.health().clone();
        match settings {
            Err(e) => {
                tracing::error!(error = %e, "kwd cannot serve");
                health.set_not_serving(e.to_string());
            }
            Ok(settings) => {
                let listener_shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name("vh-kwd".to_owned())
                    .spawn(move || load(settings, listener_shared, health))
                    .map_err(|e| {
                        PluginError::internal(format!("cannot start the listener thread: {e}"))
                    })?;
            }
        }
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

export_plugin!(KwdPlugin);
