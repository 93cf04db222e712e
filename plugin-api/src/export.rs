//! The glue that turns a plugin type into the ABI root module.
//!
//! A library exports one root module ([`crate::abi::PluginMod`]); [`export_entry!`] builds it
//! from a type implementing [`Entry`]. Every entry point the host can call is wrapped in
//! `catch_unwind`: a panic in plugin code becomes a [`PluginError`] of kind
//! [`ErrorKind::Panic`] (or a NOT_SERVING health report), never an unwind across the FFI
//! boundary.
//!
//! Plugin authors implement the richer `Plugin` trait of voicehost-plugin-runtime (or an
//! engine trait of the tts/stt SDKs) and call its `export_plugin!`, which lands here.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use abi_stable::StableAbi;
use abi_stable::prefix_type::PrefixTypeTrait;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RString};

use crate::abi::{
    ErrorKind, HealthReport, HealthStatus, PluginError, PluginHandle, PluginInfo, PluginInstance,
    PluginInstance_TO, PluginMod, PluginModRef, StartContext,
};
use crate::schema::{ConfigSchema, SchemaExport};

/// A plugin as the ABI sees it: the four calls of the root module and its handle, in Rust
/// types. Panics are caught around each.
pub trait Entry: Send + Sync + Sized + 'static {
    /// What the plugin reports about itself; cheap, no side effects.
    fn info() -> Result<PluginInfo, PluginError>;

    /// Starts the plugin. Must return promptly (load models in the background).
    fn start(ctx: StartContext) -> Result<Self, PluginError>;

    /// Current health. Must not block.
    fn health(&self) -> HealthReport;

    /// Stops serving and joins the plugin's threads, waiting at most `timeout`.
    fn stop(&mut self, timeout: Duration) -> Result<(), PluginError>;

    /// The keys of the plugin's config section (see [`crate::schema`]); `None` declares
    /// nothing, and the host passes only the slot's own keys and `x_` keys.
    fn config_schema() -> Option<ConfigSchema> {
        None
    }
}

/// The [`SchemaExport`] for `P`. Used by [`export_entry!`].
pub const fn schema_export<P: Entry>() -> SchemaExport {
    SchemaExport {
        layout: <ConfigSchema as StableAbi>::LAYOUT,
        schema: schema_entry::<P>,
    }
}

extern "C" fn schema_entry<P: Entry>() -> RResult<ROption<ConfigSchema>, PluginError> {
    guard("config_schema", || Ok(P::config_schema().into())).into()
}

/// Builds the root module for `P`. Called by [`export_entry!`].
pub fn entry_root_module<P: Entry>() -> PluginModRef {
    PluginMod {
        info: info_entry::<P>,
        start: start_entry::<P>,
    }
    .leak_into_prefix()
}

extern "C" fn info_entry<P: Entry>() -> RResult<PluginInfo, PluginError> {
    guard("info", P::info).into()
}

extern "C" fn start_entry<P: Entry>(ctx: StartContext) -> RResult<PluginHandle, PluginError> {
    guard("start", move || {
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

impl<P: Entry> PluginInstance for Guarded<P> {
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

/// Exports an [`Entry`] implementation as this library's voicehost root module, with its
/// config schema beside it.
///
/// ```ignore
/// voicehost_plugin_api::export_entry!(MyEntry);
/// ```
#[macro_export]
macro_rules! export_entry {
    ($entry:ty) => {
        /// The voicehost plugin root module of this library (abi_stable `LibHeader`).
        #[unsafe(export_name = "_1as_0lib_1header_0root_bmodule_bloader")]
        pub static VOICEHOST_PLUGIN_ROOT_MODULE: $crate::__private::abi_stable::library::LibHeader = {
            extern "C" fn voicehost_root_module()
            -> $crate::__private::abi_stable::library::RootModuleResult {
                $crate::__private::abi_stable::library::__call_root_module_loader(
                    $crate::export::entry_root_module::<$entry>,
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

        /// The plugin's config keys (`voicehost_plugin_api::schema`).
        #[unsafe(export_name = "voicehost_plugin_config_schema")]
        pub static VOICEHOST_PLUGIN_CONFIG_SCHEMA: $crate::schema::SchemaExport =
            $crate::export::schema_export::<$entry>();
    };
}
