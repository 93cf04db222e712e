//! A plugin's config keys, declared to the host.
//!
//! A plugin owns its settings: it says which keys its section takes, of which kind, with
//! which default and a one-line doc, and the host checks a config file's section against
//! that before it loads anything (`voicehost validate`, `voicehost run`), with the same
//! `file:line: [section] key: message` errors as its own keys.
//!
//! The declaration is exported beside the root module, under [`CONFIG_SCHEMA_SYMBOL`], as a
//! [`SchemaExport`]: the layout of [`ConfigSchema`] (checked by the host like the root
//! module's) and the function that returns it. A library without the symbol (built before
//! voicehost-plugin-api 0.1.2) declares nothing; the host then passes only the keys every
//! slot has and `x_` keys. The root module itself is unchanged, so the ABI stays 1.0.
//!
//! What depends on several keys (a server on another machine only with `allow_remote`) the
//! plugin checks itself: a [`CheckExport`] under [`CONFIG_CHECK_SYMBOL`] takes the whole
//! section and returns a [`KeyProblem`] for each thing wrong, at the key it belongs to, and
//! the host reports them like its own. A library without the symbol (built before it was
//! added) has no section checks: its keys are checked one by one, as before.

use std::fmt;

use abi_stable::StableAbi;
use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString, RVec, Tuple2};
use abi_stable::type_layout::TypeLayout;

use crate::abi::PluginError;

/// Symbol of the [`SchemaExport`] static (written by [`crate::export_entry!`]).
pub const CONFIG_SCHEMA_SYMBOL: &str = "voicehost_plugin_config_schema";

/// Symbol of the [`CheckExport`] static (written by [`crate::export_entry!`]).
pub const CONFIG_CHECK_SYMBOL: &str = "voicehost_plugin_check_config";

/// The form of a value.
#[repr(u8)]
#[derive(StableAbi, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// `true` or `false`.
    Bool = 0,
    /// An integer from `min` to `max`.
    Int = 1,
    /// A number from `min` to `max`.
    Float = 2,
    /// One of `choices`.
    Choice = 3,
    /// Text of at most `max` bytes, no control characters.
    Text = 4,
    /// A file or directory path.
    Path = 5,
    /// A model file: when the plugin is enabled, the host checks it exists and names the
    /// `voicehost models fetch` command that makes it.
    ModelFile = 6,
    /// Comma-separated model files, at least one.
    ModelFiles = 7,
    /// A TCP port from 1 to 65535.
    Port = 8,
    /// An IP address.
    Ip = 9,
    /// `host:port` of a service.
    SocketAddr = 10,
    /// Comma-separated integers, each from `min` to `max`.
    IntList = 11,
    /// `;`-separated non-empty phrases.
    Phrases = 12,
    /// Comma-separated `name:score` pairs, scores from 0 to 1; may be empty.
    NamedScores = 13,
}

impl KeyKind {
    /// Every kind, in declaration order.
    pub const ALL: [KeyKind; 14] = [
        KeyKind::Bool,
        KeyKind::Int,
        KeyKind::Float,
        KeyKind::Choice,
        KeyKind::Text,
        KeyKind::Path,
        KeyKind::ModelFile,
        KeyKind::ModelFiles,
        KeyKind::Port,
        KeyKind::Ip,
        KeyKind::SocketAddr,
        KeyKind::IntList,
        KeyKind::Phrases,
        KeyKind::NamedScores,
    ];

    /// Its name in text (a worker's report, `voicehost plugin info`).
    pub const fn name(self) -> &'static str {
        match self {
            KeyKind::Bool => "bool",
            KeyKind::Int => "int",
            KeyKind::Float => "float",
            KeyKind::Choice => "choice",
            KeyKind::Text => "text",
            KeyKind::Path => "path",
            KeyKind::ModelFile => "model_file",
            KeyKind::ModelFiles => "model_files",
            KeyKind::Port => "port",
            KeyKind::Ip => "ip",
            KeyKind::SocketAddr => "socket_addr",
            KeyKind::IntList => "int_list",
            KeyKind::Phrases => "phrases",
            KeyKind::NamedScores => "named_scores",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<KeyKind> {
        KeyKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One key of a plugin's section.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq)]
pub struct ConfigKey {
    pub name: RString,
    pub kind: KeyKind,
    /// Bounds of `Int`, `Float` and `IntList`; `max` is the byte limit of `Text`.
    pub min: f64,
    pub max: f64,
    /// The values of `Choice`.
    pub choices: RVec<RString>,
    /// The value when the key is absent, as a config file would write it.
    pub default: RString,
    /// One line for `voicehost plugin info` and error messages.
    pub doc: RString,
}

/// Everything a plugin declares about its section.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Default)]
pub struct ConfigSchema {
    pub keys: RVec<ConfigKey>,
}

/// The exported static under [`CONFIG_SCHEMA_SYMBOL`]. Its own layout is fixed for good (a
/// reference and a function pointer); what it leads to is layout-checked.
#[repr(C)]
#[allow(missing_debug_implementations)]
pub struct SchemaExport {
    /// `<ConfigSchema as StableAbi>::LAYOUT` as the library was built.
    pub layout: &'static TypeLayout,
    /// The schema, or `None` when the plugin declares no keys (`x_` keys only, as before).
    pub schema: extern "C" fn() -> RResult<ROption<ConfigSchema>, PluginError>,
}

/// One thing wrong with a plugin's section, found by the plugin's own check.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct KeyProblem {
    /// The key it is reported at: its line in the config file, or the section's header
    /// line when the key is not written. Empty: the section as a whole.
    pub key: RString,
    /// What is wrong and what to do, without the section and key (the host writes
    /// `file:line: [section] key: ` before it).
    pub message: RString,
}

impl KeyProblem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: RString::from(key.into()),
            message: RString::from(message.into()),
        }
    }
}

/// The plugin's check of its whole section: the slot's name and the section as the
/// plugin's start would receive it ([`crate::StartContext::config`]: key/value pairs in
/// file order, then what the host adds), borrowed for the call; the problems found, or an
/// error when the check itself failed (a panic caught at the boundary).
#[repr(transparent)]
#[derive(StableAbi, Clone, Copy)]
pub struct CheckConfigFn(
    pub  extern "C" fn(
        RStr<'_>,
        RSlice<'_, Tuple2<RStr<'_>, RStr<'_>>>,
    ) -> RResult<RVec<KeyProblem>, PluginError>,
);

impl fmt::Debug for CheckConfigFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CheckConfigFn")
    }
}

/// The exported static under [`CONFIG_CHECK_SYMBOL`]. Its own layout is fixed for good (a
/// reference and a function pointer); the function's parameters and result are
/// layout-checked through [`CheckConfigFn`].
#[repr(C)]
#[allow(missing_debug_implementations)]
pub struct CheckExport {
    /// `<CheckConfigFn as StableAbi>::LAYOUT` as the library was built.
    pub layout: &'static TypeLayout,
    /// The check; it returns no problems when the plugin checks nothing beyond its keys.
    pub check: CheckConfigFn,
}
