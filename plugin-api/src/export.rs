//! The Rust-side plugin trait and the glue that turns it into the ABI root module.
//!
//! A plugin implements [`Plugin`] and writes `voicehost_plugin_api::export_plugin!(MyPlugin);`.
//! Every entry point the host can call is wrapped in `catch_unwind`: a panic in plugin code
//! becomes a [`PluginError`] of kind [`ErrorKind::Panic`] (or a NOT_SERVING health report),
//! never an unwind across the FFI boundary.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RString};

use crate::abi::{
    ABI_VERSION, ErrorKind, HealthReport, HealthStatus, PluginError, PluginHandle, PluginInfo,
    PluginInstance, PluginInstance_TO, PluginMod, PluginModRef, StartContext,
};
use crate::context::PluginContext;

/// Static description of a plugin, turned into [`PluginInfo`] for the host.
#[derive(Debug, Clone, Copy)]
pub struct PluginMeta {
    /// Plugin name, usually `env!("CARGO_PKG_NAME")`.
    pub name: &'static str,
    /// Service slot: `logger`, `kwd`, `stt`, `llm`, `tts` (or `test`).
    pub kind: &'static str,
    /// Plugin version, usually `env!("CARGO_PKG_VERSION")`.
    pub version: &'static str,
    /// gRPC package served, e.g. `voicehost.logger.v1`.
    pub proto_package: &'static str,
    /// Optional capabilities.
    pub features: &'static [&'static str],
}

impl PluginMeta {
    fn to_info(self, more_features: &[&str]) -> PluginInfo {
        let mut features: Vec<RString> = Vec::new();
        for f in self.features.iter().chain(more_features) {
            if !features.iter().any(|known| known.as_str() == *f) {
                features.push(RString::from(*f));
            }
        }
        PluginInfo {
            name: self.name.into(),
            kind: self.kind.into(),
            version: self.version.into(),
            abi_version: ABI_VERSION.into(),
            proto_package: self.proto_package.into(),
            features: features.into(),
        }
    }
}

/// A plugin, as its author writes it. The SDK adapts it to the ABI.
pub trait Plugin: Send + Sync + Sized + 'static {
    /// Static facts about the plugin.
    fn meta() -> PluginMeta;

    /// Starts the plugin: typically validates `ctx.config`, then starts a
    /// [`crate::GrpcServer`] on `ctx.port`. Must return promptly: load models in the
    /// background and report NOT_SERVING until they are ready.
    fn start(ctx: PluginContext) -> Result<Self, PluginError>;

    /// Capabilities the SDK provides beyond `meta().features` (the engine SDKs list what
    /// they serve, e.g. `speak_stream`); reported after the plugin's own. None by default.
    fn sdk_features() -> &'static [&'static str] {
        &[]
    }

    /// Current health. Must not block.
    fn health(&self) -> HealthReport;

    /// Stops serving and joins the plugin's threads, waiting at most `timeout`.
    fn stop(&mut self, timeout: Duration) -> Result<(), PluginError>;
}

/// Builds the root module for `P`. Called by [`crate::export_plugin!`].
pub fn root_module<P: Plugin>() -> PluginModRef {
    PluginMod {
        info: info_entry::<P>,
        start: start_entry::<P>,
    }
    .leak_into_prefix()
}

extern "C" fn info_entry<P: Plugin>() -> RResult<PluginInfo, PluginError> {
    guard("info", || Ok(P::meta().to_info(P::sdk_features()))).into()
}

extern "C" fn start_entry<P: Plugin>(ctx: StartContext) -> RResult<PluginHandle, PluginError> {
    guard("start", move || {
        let ctx = PluginContext::from_abi(ctx)?;
        let plugin = P::start(ctx)?;
        Ok(PluginInstance_TO::from_value(
            Guarded {
                plugin,
                stopped: false,
            },
            TD_Opaque,
        ))
    })
    .into()
}

/// Runs `f`, turning a panic into an error naming the entry point.
fn guard<T>(entry: &str, f: impl FnOnce() -> Result<T, PluginError>) -> Result<T, PluginError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        Err(PluginError::new(
            ErrorKind::Panic,
            format!("plugin panicked in {entry}(): {}", panic_message(&*payload)),
        ))
    })
}

/// Best-effort text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// The instance behind a [`PluginHandle`]: forwards to the plugin with panics caught.
struct Guarded<P> {
    plugin: P,
    stopped: bool,
}

impl<P: Plugin> PluginInstance for Guarded<P> {
    fn health(&self) -> HealthReport {
        if self.stopped {
            return HealthReport {
                status: HealthStatus::Stopped,
                detail: RString::new(),
            };
        }
        catch_unwind(AssertUnwindSafe(|| self.plugin.health())).unwrap_or_else(|payload| {
            HealthReport {
                status: HealthStatus::NotServing,
                detail: format!("plugin panicked in health(): {}", panic_message(&*payload)).into(),
            }
        })
    }

    fn stop(&mut self, timeout_ms: u64) -> RResult<(), PluginError> {
        if self.stopped {
            return RResult::ROk(());
        }
        let result = guard("stop", || {
            self.plugin.stop(Duration::from_millis(timeout_ms))
        });
        if result.is_ok() {
            self.stopped = true;
        }
        result.into()
    }
}

/// Exports a [`Plugin`] implementation as this library's voicehost root module.
///
/// ```ignore
/// voicehost_plugin_api::export_plugin!(MyPlugin);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        /// The voicehost plugin root module of this library (abi_stable `LibHeader`).
        #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
        pub static VOICEHOST_PLUGIN_ROOT_MODULE: $crate::__private::abi_stable::library::LibHeader = {
            extern "C" fn voicehost_root_module()
            -> $crate::__private::abi_stable::library::RootModuleResult {
                $crate::__private::abi_stable::library::__call_root_module_loader(
                    $crate::export::root_module::<$plugin>,
                )
            }
            // SAFETY: the constructor returns the `PluginModRef` the header is declared with,
            // and the layout is checked by the loader (`CheckTypeLayout::Yes`).
            unsafe {
                $crate::__private::abi_stable::library::LibHeader::from_constructor::<
                    $crate::abi::PluginModRef,
                >(
                    voicehost_root_module,
                    $crate::__private::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}
