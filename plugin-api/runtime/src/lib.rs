//! The plugin runtime: what every voicehost plugin uses around the ABI.
//!
//! - the [`Plugin`] trait and [`export_plugin!`] (adapted to the ABI crate's root module, so
//!   every entry point is wrapped in `catch_unwind`);
//! - [`GrpcServer`], the serve helper: own thread and tokio runtime, `grpc.health.v1`,
//!   server reflection, loopback-only bind, clear port-in-use errors, graceful stop;
//! - [`PluginContext`] / [`PluginConfig`]: the plugin's config section with typed getters,
//!   read against the keys the plugin declares ([`keys`]: kind, default, doc — the host
//!   validates config files with them, and with [`Plugin::check_config`] for what depends
//!   on several keys);
//! - [`logging`]: the plugin's `tracing` events reach the host's app.log;
//! - [`stream`]: one reconnecting client stream and one broadcast → gRPC stream forwarder;
//! - [`gate`]: the speech gate, which has the llm wait while tts synthesises;
//! - what the engine SDKs (voicehost-tts-sdk, voicehost-stt-sdk) share: [`EngineMeta`],
//!   [`BoxError`].
//!
//! # A minimal plugin
//!
//! Serves only health and reflection; a real plugin adds its service from
//! `voicehost-proto` in the `start` closure.
//!
//! ```
//! use std::time::Duration;
//! use voicehost_plugin_runtime::{
//!     GrpcServer, HealthReport, Plugin, PluginContext, PluginError, PluginMeta, export_plugin,
//! };
//!
//! struct Hello {
//!     server: GrpcServer,
//! }
//!
//! impl Plugin for Hello {
//!     fn meta() -> PluginMeta {
//!         PluginMeta {
//!             name: "hello",
//!             kind: "test",
//!             version: "0.1.0",
//!             proto_package: "",
//!             features: &[],
//!         }
//!     }
//!
//!     fn start(ctx: PluginContext) -> Result<Self, PluginError> {
//!         let greeting: String = ctx.config.parse_or("greeting", "hi".to_owned())?;
//!         let server = GrpcServer::builder(&ctx).start(move |_services, health| {
//!             tracing::info!(%greeting, "Ready");
//!             health.set_serving();
//!             Ok(())
//!         })?;
//!         Ok(Self { server })
//!     }
//!
//!     fn health(&self) -> HealthReport {
//!         self.server.report()
//!     }
//!
//!     fn stop(&mut self, timeout: Duration) -> Result<(), PluginError> {
//!         self.server.stop(timeout)
//!     }
//! }
//!
//! export_plugin!(Hello);
//! # fn main() {}
//! ```
//!
//! Build it as `crate-type = ["cdylib"]`, name the `.so` in the `library` key of a config
//! section, and `voicehost run` loads it.

pub mod context;
mod engine;
pub mod export;
pub mod gate;
pub mod keys;
pub mod logging;
pub mod net;
mod serve;
pub mod stream;

pub use context::{PluginConfig, PluginContext};
pub use engine::{BoxError, EngineMeta};
pub use export::{Plugin, PluginMeta};
pub use gate::SpeechGate;
pub use serve::{GrpcServer, HealthHandle, MAX_DECODING_MESSAGE_BYTES, ServerBuilder, Services};
pub use voicehost_plugin_api::{ErrorKind, HealthReport, HealthStatus, PluginError};

/// The ABI crate, for what the runtime does not re-export.
pub use voicehost_plugin_api;

/// Wall-clock time in microseconds since the Unix epoch: the timestamp every voicehost
/// message carries (`ts_unix_us`).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// `at` (a monotonic instant, past or future) as wall-clock microseconds since the Unix
/// epoch, comparable across processes.
pub fn unix_us(at: std::time::Instant) -> i64 {
    let (now, wall) = (std::time::Instant::now(), now_us());
    match at.checked_duration_since(now) {
        Some(ahead) => wall + ahead.as_micros() as i64,
        None => wall - now.duration_since(at).as_micros() as i64,
    }
}

/// Checks an identifier argument (a dialog id, a reason): 1 to 64 ASCII letters, digits,
/// `_` or `-`. The INVALID_ARGUMENT names `field`, the value and the rule; `hint` is
/// appended (e.g. `" (as the logger's NewDialog returns)"`).
#[allow(clippy::result_large_err)]
pub fn check_id(field: &str, value: &str, hint: &str) -> Result<(), tonic::Status> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(tonic::Status::invalid_argument(format!(
            "{field} {value:?} is invalid: use 1 to 64 letters, digits, _ or -{hint}"
        )))
    }
}

#[doc(hidden)]
pub mod __private {
    pub use voicehost_plugin_api;
}
