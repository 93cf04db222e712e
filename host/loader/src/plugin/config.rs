//! What a library exports beside its root module for config files (voicehost-plugin-api's
//! `schema`): the keys its section takes, read when it is loaded, and its check of a whole
//! section, run on request (in a checking worker).

use std::path::Path;

use abi_stable::StableAbi;
use abi_stable::abi_stability::check_layout_compatibility;
use abi_stable::library::RawLibrary;
use abi_stable::std_types::{RResult, RSlice, RStr, RVec, Tuple2};
use voicehost_plugin_api::PluginError;
use voicehost_plugin_api::abi::PLUGIN_API_VERSION;
use voicehost_plugin_api::schema::{
    CONFIG_CHECK_SYMBOL, CONFIG_SCHEMA_SYMBOL, CheckConfigFn, CheckExport, ConfigSchema,
    KeyProblem, SchemaExport,
};

use super::{LoadError, PluginLibrary, classify};

/// What a library exports beside its root module for config files: its keys and its check
/// of a whole section (each `None` when it does not export it).
pub(super) struct ConfigExports {
    pub(super) schema: Option<ConfigSchema>,
    pub(super) check: Option<CheckConfigFn>,
}

/// The exports beside the root module of the library at `path` (its root module already
/// verified): [`CONFIG_SCHEMA_SYMBOL`], whose [`ConfigSchema`] layout is checked against this
/// host's like the root module's before the plugin is asked for it, and
/// [`CONFIG_CHECK_SYMBOL`], whose function type is checked the same way (it is called only
/// on request, in a checking worker).
pub(super) fn read_exports(path: &Path) -> Result<ConfigExports, LoadError> {
    let incompatible = |what: &str, e: &dyn std::fmt::Display| LoadError::Incompatible {
        path: path.to_owned(),
        reason: format!(
            "its {what} types do not match this host's ({e}); rebuild it against \
             voicehost-plugin-api {PLUGIN_API_VERSION}"
        ),
    };
    let library = RawLibrary::load_at(path).map_err(|e| classify(path, e))?;
    // SAFETY: the symbol is a `SchemaExport` static by the contract of voicehost-plugin-api
    // 0.1.2 (its layout is fixed for good); a library without it declares nothing.
    let schema = match unsafe { exported::<SchemaExport>(&library, CONFIG_SCHEMA_SYMBOL) } {
        None => None,
        Some(export) => {
            if let RResult::RErr(e) =
                check_layout_compatibility(<ConfigSchema as StableAbi>::LAYOUT, export.layout)
            {
                return Err(incompatible("config schema", &e));
            }
            match (export.schema)() {
                RResult::ROk(schema) => schema.into_option(),
                RResult::RErr(error) => {
                    return Err(LoadError::Info {
                        path: path.to_owned(),
                        error,
                    });
                }
            }
        }
    };
    // SAFETY: the symbol is a `CheckExport` static by the same contract (its layout is fixed
    // for good); a library without it has no section checks.
    let check = match unsafe { exported::<CheckExport>(&library, CONFIG_CHECK_SYMBOL) } {
        None => None,
        Some(export) => {
            if let RResult::RErr(e) =
                check_layout_compatibility(<CheckConfigFn as StableAbi>::LAYOUT, export.layout)
            {
                return Err(incompatible("config check", &e));
            }
            Some(export.check)
        }
    };
    Ok(ConfigExports { schema, check })
}

/// The static `T` that `library` exports as `symbol`, if it does.
///
/// # Safety
/// A library that exports `symbol` must export a `T` under it.
unsafe fn exported<T>(library: &RawLibrary, symbol: &str) -> Option<&'static T> {
    let symbol = format!("{symbol}\0");
    // SAFETY: the caller vouches for the symbol's type. The symbol's address is the
    // static's: libloading hands it over as the pointer type. The library stays mapped
    // (abi_stable keeps every loaded library), so the static outlives this call.
    unsafe {
        let export: *const T = *library.get::<*const T>(symbol.as_bytes()).ok()?;
        Some(&*export)
    }
}

impl PluginLibrary {
    /// Runs the plugin's check of the section `section` of slot `service` (what its start
    /// would receive): the problems it finds, `None` when the library has no check, or the
    /// error of a check that failed. Plugin code: the host calls it in a checking worker.
    pub fn check_config(
        &self,
        service: &str,
        section: &[(String, String)],
    ) -> Option<Result<Vec<KeyProblem>, PluginError>> {
        let check = self.config_check?;
        let pairs: Vec<Tuple2<RStr<'_>, RStr<'_>>> = section
            .iter()
            .map(|(k, v)| Tuple2(RStr::from(k.as_str()), RStr::from(v.as_str())))
            .collect();
        Some(
            (check.0)(RStr::from(service), RSlice::from_slice(&pairs))
                .into_result()
                .map(RVec::into_vec),
        )
    }
}
