//! The voicehost logger service (port 5001).
//!
//! - `WriteApp` appends one JSON line per event to `logs/app.log`
//!   (`{"ts","svc","level","event","fields"}`); the file is reset when the service starts
//!   and rotated by size, keeping `app_log_keep` older files.
//! - `NewDialog` creates `logs/dialog_<timestamp>_<id>.log`; `WriteDialog` appends
//!   `USER: …` / `ASSISTANT: …` lines, one per message (newlines escaped), written straight
//!   to the file so a crash loses nothing already acknowledged.
//!
//! No model, no GPU. Health is SERVING once the log files are open.

mod config;
mod convert;
mod files;
mod service;

use std::time::Duration;

use voicehost_plugin_runtime::keys::Key;
use voicehost_plugin_runtime::{
    GrpcServer, HealthReport, Plugin, PluginContext, PluginError, PluginMeta, export_plugin,
};
use voicehost_proto::logger::v1::logger_service_server::LoggerServiceServer;

pub use files::{AppLog, Dialogs};

/// The logger plugin.
#[derive(Debug)]
pub struct LoggerPlugin {
    server: GrpcServer,
}

impl Plugin for LoggerPlugin {
    fn config_keys() -> Option<Vec<Key>> {
        Some(config::KEYS.to_vec())
    }

    fn meta() -> PluginMeta {
        PluginMeta {
            name: env!("CARGO_PKG_NAME"),
            kind: "logger",
            version: env!("CARGO_PKG_VERSION"),
            proto_package: "voicehost.logger.v1",
            features: &["app_log_rotation"],
        }
    }

    fn start(ctx: PluginContext) -> Result<Self, PluginError> {
        let settings = config::Settings::from_config(&ctx.config)?;
        let log_dir = ctx.log_dir.clone();
        let server = GrpcServer::builder(&ctx)
            .descriptors(voicehost_proto::FILE_DESCRIPTOR_SET)
            .start(move |services, health| {
                let svc = service::LoggerSvc::open(&log_dir, &settings);
                match svc.open_error() {
                    None => health.set_serving(),
                    Some(reason) => {
                        tracing::error!(error = %reason, "Log files unavailable");
                        health.set_not_serving(reason);
                    }
                }
                services.add(LoggerServiceServer::new(svc).max_decoding_message_size(
                    voicehost_plugin_runtime::MAX_DECODING_MESSAGE_BYTES,
                ));
                Ok(())
            })?;
        Ok(Self { server })
    }

    fn health(&self) -> HealthReport {
        self.server.report()
    }

    fn stop(&mut self, timeout: Duration) -> Result<(), PluginError> {
        self.server.stop(timeout)
    }
}

export_plugin!(LoggerPlugin);
