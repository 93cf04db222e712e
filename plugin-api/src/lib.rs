//! The voicehost plugin ABI: what crosses the boundary between the host and a plugin
//! library, and nothing else.
//!
//! - [`abi`]: the root module [`abi::PluginMod`] (`info`, `start`), the handle it returns
//!   (`health`, `stop`) and the plain data they exchange, versioned by [`ABI_VERSION`];
//! - [`export`]: [`export::Entry`] and [`export_entry!`], which build the root module with
//!   every entry point wrapped in `catch_unwind`;
//! - [`schema`]: the plugin's config keys and its check of its whole section, exported
//!   beside the root module so that the host checks a config file against what the plugin
//!   it will load declares.
//!
//! abi_stable writes this crate's name and version into the layout of every type here, and
//! the host compares them when it loads a library (0.1.x matches 0.1.y). So this crate holds
//! only those types and changes rarely; everything a plugin author uses day to day lives in
//! crates that can move faster without locking out built plugins:
//!
//! - `voicehost-plugin-runtime`: the `Plugin` trait and `export_plugin!`, the gRPC serve
//!   helper, config access, log forwarding, stream helpers;
//! - `voicehost-tts-sdk` and `voicehost-stt-sdk`: whole speech plugins from an engine trait.
//!
//! See `COMPATIBILITY.md` for what each version means.

pub mod abi;
pub mod export;
pub mod schema;

pub use abi::{
    ABI_VERSION, ErrorKind, HealthReport, HealthStatus, PLUGIN_API_VERSION, PluginError,
    PluginInfo, StartContext,
};
pub use export::{Entry, panic_message};

#[doc(hidden)]
pub mod __private {
    pub use abi_stable;
}
