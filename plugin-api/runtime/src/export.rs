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

use voicehost_plugin_api::schema::{ConfigSchema, KeyProblem};

use crate::context::{PluginConfig, PluginContext};
use crate::keys::{Key, Problem};

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

    /// Checks the section as a whole: what depends on several keys (a server on another
    /// machine only with `allow_remote = true`). Each [`Problem`] names its key; the host
    /// reports it with that key's file and line when it validates a config file
    /// (`voicehost validate`, `voicehost run`, in a worker process), and the runtime refuses
    /// to start with it (after a hot swap, a section reaches [`Self::start`] unchecked by
    /// the host). Called only when every declared key's value fits its kind, so
    /// [`crate::PluginConfig::value`] reads them without errors. No problems by default.
    fn check_config(config: &PluginConfig) -> Vec<Problem> {
        let _ = config;
        Vec::new()
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
        ctx.config.refuse(&P::check_config(&ctx.config))?;
        P::start(ctx).map(Adapter)
    }

    fn config_schema() -> Option<ConfigSchema> {
        P::config_keys().map(|keys| crate::keys::schema(&keys))
    }

    fn check_config(service: &str, section: &[(&str, &str)]) -> Vec<KeyProblem> {
        let entries = section
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        let mut config = PluginConfig::new(service, entries);
        if let Some(keys) = P::config_keys() {
            config = config.with_keys(keys);
            if !config.ill_typed().is_empty() {
                // The host reports those at their keys; the whole is checked once they fit.
                return Vec::new();
            }
        }
        P::check_config(&config)
            .iter()
            .map(Problem::to_abi)
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Kind;

    /// `url` on another machine needs `remote = true`.
    struct Remote;

    impl Plugin for Remote {
        fn meta() -> PluginMeta {
            PluginMeta {
                name: "remote",
                kind: "test",
                version: "0.1.0",
                proto_package: "",
                features: &[],
            }
        }

        fn start(_: PluginContext) -> Result<Self, PluginError> {
            Ok(Remote)
        }

        fn health(&self) -> HealthReport {
            HealthReport {
                status: voicehost_plugin_api::HealthStatus::Serving,
                detail: RString::new(),
            }
        }

        fn stop(&mut self, _: Duration) -> Result<(), PluginError> {
            Ok(())
        }

        fn config_keys() -> Option<Vec<Key>> {
            Some(vec![
                Key::new("url", Kind::Text { max_len: 64 }, "local", ""),
                Key::new("remote", Kind::Bool, "false", ""),
            ])
        }

        fn check_config(config: &PluginConfig) -> Vec<Problem> {
            let url: String = config.value("url").unwrap();
            let remote: bool = config.value("remote").unwrap();
            if url != "local" && !remote {
                vec![Problem::new("url", format!("{url:?} needs remote = true"))]
            } else {
                Vec::new()
            }
        }
    }

    fn check(section: &[(&str, &str)]) -> Vec<KeyProblem> {
        <Adapter<Remote> as Entry>::check_config("llm", section)
    }

    #[test]
    fn the_check_reads_the_section_with_its_defaults() {
        assert_eq!(check(&[]), []);
        assert_eq!(check(&[("url", "far"), ("remote", "true")]), []);
        assert_eq!(
            check(&[("port", "5005"), ("url", "far")]),
            [KeyProblem::new("url", "\"far\" needs remote = true")]
        );
        let problem = Problem::new("url", "\"far\" needs remote = true");
        let config = PluginConfig::new("llm", []);
        let err = config.refuse(&[problem]).unwrap_err();
        assert_eq!(
            err.message.as_str(),
            "[llm] url: \"far\" needs remote = true"
        );
        assert!(config.refuse(&[]).is_ok());
    }

    #[test]
    fn a_value_of_the_wrong_kind_is_left_to_the_key_check() {
        // `value` would fail on it: the host reports it at its key instead.
        assert_eq!(check(&[("url", "far"), ("remote", "yes")]), []);
    }
}
