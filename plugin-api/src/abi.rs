//! The stable ABI between the host and a plugin library.
//!
//! One root module ([`PluginMod`], a prefix type) exports `info()` and `start()`.
//! `start()` returns a [`PluginHandle`] with `health()` and `stop()`. Everything richer than
//! that is gRPC (see the `voicehost-proto` crate).
//!
//! The host checks [`ABI_VERSION`] and the layout of every type reachable from the root
//! module when it loads a library; a mismatch is refused before any plugin code runs.
//! The layouts of ABI 1.0 are frozen in `plugins/fixtures/abi-1.0`, whose plugin the tests
//! load: change a type here without a major bump and that test fails.

// `#[sabi_trait]` generates impls inside a const block.
#![allow(non_local_definitions)]

use std::fmt;

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RBox, RResult, RSlice, RStr, RString, RVec, Tuple2};
use abi_stable::{StableAbi, declare_root_module_statics, sabi_trait};

/// Version of the ABI (not of this crate), declared by every plugin library and checked by
/// the host at load (see `plugin-api/COMPATIBILITY.md`).
///
/// - **Major** (`2.0.0`): an incompatible change (a field removed, reordered or retyped, a
///   type's layout changed). The host refuses a library whose major differs from its own,
///   older or newer.
/// - **Minor** (`1.1.0`): a field appended to [`PluginMod`] after its
///   `#[sabi(last_prefix_field)]`. abi_stable checks a library against the host's root
///   module and refuses one with *fewer* fields, so a host that appends a field must keep
///   the previous layout to check older libraries against; prefer carrying new things over
///   gRPC, which needs no ABI change.
/// - **Patch**: no layout change.
///
/// Independently of this number the loader compares the layout of every type reachable from
/// the root module, including the voicehost-plugin-api crate version each type comes from
/// (loosely: 0.1.x matches 0.1.y, 0.2 does not). That recorded version is also how the host
/// learns which plugin-api a library was built with (`voicehost plugin info`).
pub const ABI_VERSION: &str = "1.0.0";

/// Version of the voicehost-plugin-api crate this code is compiled from; abi_stable records
/// it in the layout of every ABI type, so a plugin library carries the one it was built with.
pub const PLUGIN_API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a plugin reports about itself. Cheap to call; no side effects.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct PluginInfo {
    /// Plugin name, e.g. `voicehost-plugin-logger`.
    pub name: RString,
    /// Service slot the plugin fills: `logger`, `kwd`, `stt`, `llm` or `tts`
    /// (`test` for fixtures).
    pub kind: RString,
    /// The plugin's own version (its crate version).
    pub version: RString,
    /// The ABI version it was built against ([`ABI_VERSION`] of its plugin-api).
    pub abi_version: RString,
    /// gRPC package it serves, e.g. `voicehost.tts.v1`.
    pub proto_package: RString,
    /// Optional capabilities, e.g. `cuda`, `render_reference`. Unknown features are ignored.
    pub features: RVec<RString>,
}

/// Log levels forwarded from a plugin to the host.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
}

/// One log event from a plugin: its `tracing` events arrive at the host through this.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct LogRecord<'a> {
    pub level: LogLevel,
    /// Service slot of the emitting plugin.
    pub service: RStr<'a>,
    /// `tracing` target (module path) of the event.
    pub target: RStr<'a>,
    /// The event's message.
    pub message: RStr<'a>,
    /// Structured fields, in the order they were recorded.
    pub fields: RSlice<'a, Tuple2<RStr<'a>, RStr<'a>>>,
}

/// Host callback receiving plugin log records. Must not block for long.
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy)]
pub struct LogSink(pub extern "C" fn(LogRecord<'_>));

impl fmt::Debug for LogSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogSink")
    }
}

/// Functions the host offers to a plugin.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct HostCallbacks {
    pub log: LogSink,
}

/// Everything a plugin gets at start.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct StartContext {
    /// Service slot name (`logger`, `tts`, …).
    pub service: RString,
    /// The plugin's own config section as key/value pairs, in file order. Values are
    /// already validated by the host for the keys it knows.
    pub config: RVec<Tuple2<RString, RString>>,
    /// Address to bind; always a loopback address.
    pub bind_addr: RString,
    pub port: u16,
    /// Directory for log files (`logs/`).
    pub log_dir: RString,
    /// Directory for the plugin's data (models, caches).
    pub data_dir: RString,
    pub host: HostCallbacks,
}

/// Health of a started plugin, as the plugin sees it.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthStatus {
    /// Starting up or loading models.
    Starting = 0,
    Serving = 1,
    NotServing = 2,
    /// Stopped; the handle is finished.
    Stopped = 3,
}

/// Health with the reason when it is not [`HealthStatus::Serving`].
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct HealthReport {
    pub status: HealthStatus,
    pub detail: RString,
}

/// Categories of plugin errors.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad configuration value.
    Config = 0,
    /// The listening socket could not be set up.
    Bind = 1,
    /// A model or other resource could not be loaded.
    Resource = 2,
    /// A panic was caught at the ABI boundary.
    Panic = 3,
    /// An operation did not finish in time.
    Timeout = 4,
    Internal = 5,
}

/// Error crossing the ABI: a kind and a message that says what failed and what to do.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct PluginError {
    pub kind: ErrorKind,
    pub message: RString,
}

impl PluginError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: RString::from(message.into()),
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} error: {}", self.kind, self.message)
    }
}

impl std::error::Error for PluginError {}

/// A started plugin instance.
#[sabi_trait]
pub trait PluginInstance: Send + Sync {
    /// Current health; never blocks.
    fn health(&self) -> HealthReport;

    /// Stops serving, releases the port and joins the plugin's threads, waiting at most
    /// `timeout_ms`. Idempotent.
    #[sabi(last_prefix_field)]
    fn stop(&mut self, timeout_ms: u64) -> RResult<(), PluginError>;
}

/// Owned handle to a started plugin.
pub type PluginHandle = PluginInstance_TO<'static, RBox<()>>;

/// The root module every plugin library exports (see [`crate::export_plugin!`]).
#[allow(missing_debug_implementations)]
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
pub struct PluginMod {
    pub info: extern "C" fn() -> RResult<PluginInfo, PluginError>,

    #[sabi(last_prefix_field)]
    pub start: extern "C" fn(StartContext) -> RResult<PluginHandle, PluginError>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "voicehost_plugin";
    const NAME: &'static str = "voicehost_plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(ABI_VERSION);
}

/// Symbol under which abi_stable looks for the root module; [`crate::export_plugin!`]
/// exports it. Checked against abi_stable in a test.
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_module_symbol_matches_abi_stable() {
        assert_eq!(
            ROOT_MODULE_SYMBOL,
            abi_stable::library::ROOT_MODULE_LOADER_NAME
        );
    }
}
