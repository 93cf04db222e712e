//! What the engine SDKs (voicehost-tts-sdk, voicehost-stt-sdk) share: an engine's description and
//! its error type.

use crate::PluginMeta;

/// The error an engine returns from its model code: anything that converts with `?`
/// (`std::io::Error`, `String`, `&str`, …). Its text reaches app.log and health, so it
/// should say what failed and what to do.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What an engine written on the SDK (`tts::Synthesizer`, `stt::Transcriber`) says about
/// itself; the SDK adds the kind and the proto package.
#[derive(Debug, Clone, Copy)]
pub struct EngineMeta {
    /// Plugin name, usually `env!("CARGO_PKG_NAME")`.
    pub name: &'static str,
    /// Plugin version, usually `env!("CARGO_PKG_VERSION")`.
    pub version: &'static str,
    /// Optional capabilities shown by `voicehost plugin info`, e.g. `espeak-ng`, `cuda`.
    pub features: &'static [&'static str],
}

impl EngineMeta {
    /// The plugin meta of an SDK plugin of `kind` serving `proto_package`.
    pub fn plugin(self, kind: &'static str, proto_package: &'static str) -> PluginMeta {
        PluginMeta {
            name: self.name,
            kind,
            version: self.version,
            proto_package,
            features: self.features,
        }
    }
}
