//! The plugin trait an author implements, and its adapter to the ABI's [`Entry`].
//!
//! A plugin implements [`Plugin`] and writes
//! `voicehost_plugin_runtime::export_plugin!(MyPlugin);`. The adapter converts the ABI start
//! context to a [`PluginContext`] (installing log forwarding to the host first), and the ABI
//! crate's glue catches every panic at the boundary.

use std::time::Duration;

use abi_stable::std_types::RString;
use voicehost_plugin_api::abi::PluginModRef;
use voicehost_plugin_api::export::{Entry, entry_root_module};
use voicehost_plugin_api::{ABI_VERSION, HealthReport, PluginError, PluginInfo, StartContext};

use voicehost_plugin_api::schema::ConfigSchema;

use crate::context::PluginContext;
use crate::keys::Key;

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

/// A plugin, as its author writes it. The runtime adapts it to the ABI.
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

    /// The keys of the plugin's section ([`crate::keys`]). Declared, they are checked by the
    /// host when it validates a config file and by the runtime before [`Self::start`], and
    /// [`crate::PluginConfig::value`] reads their defaults. `None` (the default) declares
    /// nothing: the host then passes only its slot keys and `x_` keys.
    fn config_keys() -> Option<Vec<Key>> {
        None
    }
}

/// A [`Plugin`] seen as the ABI's [`Entry`]; [`crate::export_plugin!`] exports it.
#[derive(Debug)]
pub struct Adapter<P>(P);

impl<P: Plugin> Entry for Adapter<P> {
    fn info() -> Result<PluginInfo, PluginError> {
        Ok(P::meta().to_info(P::sdk_features()))
    }

    fn start(ctx: StartContext) -> Result<Self, PluginError> {
        let ctx = PluginContext::from_abi(ctx, P::config_keys())?;
        P::start(ctx).map(Adapter)
    }

    fn config_schema() -> Option<ConfigSchema> {
        P::config_keys().map(|keys| crate::keys::schema(&keys))
    }

    fn health(&self) -> HealthReport {
        self.0.health()
    }

    fn stop(&mut self, timeout: Duration) -> Result<(), PluginError> {
        self.0.stop(timeout)
    }
}

/// The root module of plugin `P` (what [`crate::export_plugin!`] exports).
pub fn root_module<P: Plugin>() -> PluginModRef {
    entry_root_module::<Adapter<P>>()
}

/// Exports a [`Plugin`] implementation as this library's voicehost root module.
///
/// ```ignore
/// voicehost_plugin_runtime::export_plugin!(MyPlugin);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        $crate::__private::voicehost_plugin_api::export_entry!($crate::export::Adapter<$plugin>);
    };
}
