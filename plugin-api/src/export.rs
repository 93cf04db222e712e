//! The glue that turns a plugin type into the ABI root module.
//!
//! A library exports one root module ([`crate::abi::PluginMod`]), and beside it its config
//! schema and section check ([`crate::schema`]); [`crate::export_entry!`] builds them from a
//! type implementing [`Entry`]. Every entry point the host can call is wrapped in
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
use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString, RVec, Tuple2};

use crate::abi::{
    ErrorKind, HealthReport, HealthStatus, PluginError, PluginHandle, PluginInfo, PluginInstance,
    PluginInstance_TO, PluginMod, PluginModRef, StartContext,
};
use crate::schema::{CheckConfigFn, CheckExport, ConfigSchema, KeyProblem, SchemaExport};

/// A plugin as the ABI sees it: the four calls of the root module and its handle, and the
/// two exported beside it for config files, in Rust types. Panics are caught around each.
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

    /// Checks the section of slot `service` as a whole (see [`crate::schema::KeyProblem`]):
    /// what depends on several keys. `section` is what [`Self::start`] would receive. No
    /// problems by default.
    fn check_config(service: &str, section: &[(&str, &str)]) -> Vec<KeyProblem> {
        let _ = (service, section);
        Vec::new()
    }
}

/// The [`SchemaExport`] for `P`. Used by [`crate::export_entry!`].
pub const fn schema_export<P: Entry>() -> SchemaExport {
    SchemaExport {
        layout: <ConfigSchema as StableAbi>::LAYOUT,
        schema: schema_entry::<P>,
    }
}

extern "C" fn schema_entry<P: Entry>() -> RResult<ROption<ConfigSchema>, PluginError> {
    guard("config_schema", || Ok(P::config_schema().into())).into()
}

/// The [`CheckExport`] for `P`. Used by [`crate::export_entry!`].
pub const fn check_export<P: Entry>() -> CheckExport {
    CheckExport {
        layout: <CheckConfigFn as StableAbi>::LAYOUT,
        check: CheckConfigFn(check_entry::<P>),
    }
}

extern "C" fn check_entry<P: Entry>(
    service: RStr<'_>,
    section: RSlice<'_, Tuple2<RStr<'_>, RStr<'_>>>,
) -> RResult<RVec<KeyProblem>, PluginError> {
    guard("check_config", || {
        let section: Vec<(&str, &str)> = section
            .iter()
            .map(|kv| (kv.0.as_str(), kv.1.as_str()))
            .collect();
        Ok(P::check_config(service.as_str(), &section).into())
    })
    .into()
}

/// Builds the root module for `P`. Called by [`crate::export_entry!`].
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
/// config schema and its section check beside it.
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

        /// The plugin's check of its whole config section (`voicehost_plugin_api::schema`).
        #[unsafe(export_name = "voicehost_plugin_check_config")]
        pub static VOICEHOST_PLUGIN_CHECK_CONFIG: $crate::schema::CheckExport =
            $crate::export::check_export::<$entry>();
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refuses `allow_remote` unless `remote` is set too; panics on `panic`.
    struct Checked;

    impl Entry for Checked {
        fn info() -> Result<PluginInfo, PluginError> {
            Err(PluginError::internal("not used"))
        }

        fn start(_: StartContext) -> Result<Self, PluginError> {
            Err(PluginError::internal("not used"))
        }

        fn health(&self) -> HealthReport {
            HealthReport {
                status: HealthStatus::Stopped,
                detail: RString::new(),
            }
        }

        fn stop(&mut self, _: Duration) -> Result<(), PluginError> {
            Ok(())
        }

        fn check_config(service: &str, section: &[(&str, &str)]) -> Vec<KeyProblem> {
            let has = |key: &str| section.iter().any(|(k, _)| *k == key);
            if has("panic") {
                panic!("checked a bad section");
            }
            if has("url") && !has("remote") {
                vec![KeyProblem::new("url", format!("[{service}] needs remote"))]
            } else {
                Vec::new()
            }
        }
    }

    fn check(section: &[(&str, &str)]) -> Result<Vec<KeyProblem>, PluginError> {
        let pairs: Vec<Tuple2<RStr<'_>, RStr<'_>>> = section
            .iter()
            .map(|(k, v)| Tuple2(RStr::from(*k), RStr::from(*v)))
            .collect();
        let export = check_export::<Checked>();
        (export.check.0)(RStr::from("llm"), RSlice::from_slice(&pairs))
            .into_result()
            .map(RVec::into_vec)
    }

    #[test]
    fn the_check_gets_the_section_and_returns_problems_at_their_keys() {
        assert_eq!(check(&[("url", "x"), ("remote", "true")]), Ok(Vec::new()));
        assert_eq!(
            check(&[("url", "x")]),
            Ok(vec![KeyProblem::new("url", "[llm] needs remote")])
        );
        let export = check_export::<Checked>();
        let layout = <CheckConfigFn as StableAbi>::LAYOUT;
        assert!(
            abi_stable::abi_stability::check_layout_compatibility(layout, export.layout).is_ok()
        );
    }

    #[test]
    fn a_panicking_check_is_an_error_value() {
        let err = check(&[("panic", "")]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Panic);
        assert!(
            err.message
                .contains("plugin panicked in check_config(): checked a bad section"),
            "{err}"
        );
    }
}
