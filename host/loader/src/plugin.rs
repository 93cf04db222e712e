//! Loading plugin libraries through the ABI and driving one plugin instance.

mod config;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use abi_stable::library::{LibraryError, lib_header_from_path};
use abi_stable::std_types::{RResult, RString, Tuple2};
use abi_stable::type_layout::TypeLayout;
use voicehost_plugin_api::abi::{
    HealthReport, HostCallbacks, LogSink, PLUGIN_API_VERSION, PluginHandle, PluginInfo,
    PluginModRef, StartContext,
};
use voicehost_plugin_api::schema::{CheckConfigFn, ConfigSchema};
use voicehost_plugin_api::{ABI_VERSION, PluginError};

use crate::slot::PluginSlot;

/// Why a library was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot load plugin {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("refusing plugin {path}: {reason}")]
    Incompatible { path: PathBuf, reason: String },
    #[error("plugin {path} failed to describe itself: {error}")]
    Info { path: PathBuf, error: PluginError },
    #[error(
        "refusing plugin {path}: it is a `{found}` plugin, but it is configured in the [{slot}] section; put it in [{found}] or pick the right library"
    )]
    WrongKind {
        path: PathBuf,
        slot: String,
        found: String,
    },
}

impl LoadError {
    /// Why, without the path (for output that names the file already).
    pub fn reason(&self) -> String {
        match self {
            LoadError::Open { reason, .. } | LoadError::Incompatible { reason, .. } => {
                reason.clone()
            }
            LoadError::Info { error, .. } => format!("it failed to describe itself: {error}"),
            LoadError::WrongKind { slot, found, .. } => {
                format!("it is a `{found}` plugin, not a `{slot}` plugin")
            }
        }
    }
}

/// Kind reported by test fixtures; the loader accepts it in any slot.
pub const TEST_KIND: &str = "test";

/// A plugin library whose version and layout were verified.
#[derive(Debug, Clone)]
pub struct PluginLibrary {
    pub path: PathBuf,
    pub info: PluginInfo,
    /// The voicehost-plugin-api version it was built with, as recorded in the layout of its
    /// root module; `None` if the layout names another crate.
    pub api_version: Option<String>,
    /// The keys its config section takes, as it declares them; `None` when it declares
    /// none (no schema symbol: built before voicehost-plugin-api 0.1.2, or it says so).
    pub config_schema: Option<ConfigSchema>,
    /// Its check of a whole section; `None` when it has none (built before the check was
    /// added to voicehost-plugin-api).
    config_check: Option<CheckConfigFn>,
    start: StartFn,
}

type StartFn = extern "C" fn(StartContext) -> RResult<PluginHandle, PluginError>;

impl PluginLibrary {
    /// Loads `path`, checks its ABI version and the layout of every ABI type, and asks it
    /// for its info. Nothing of the plugin runs before both checks pass.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let path = path.to_owned();
        if !path.is_file() {
            return Err(LoadError::Open {
                reason:
                    "no such file; build it first (cargo build --release) or fix the `library` key"
                        .to_owned(),
                path,
            });
        }
        // A library cut short can open and then crash whoever touches its missing pages.
        if let Err(reason) = crate::elf::check_complete(&path) {
            return Err(LoadError::Open { path, reason });
        }
        let header = lib_header_from_path(&path).map_err(|e| classify(&path, e))?;
        let api_version = header.layout().and_then(plugin_api_version);
        let module = header
            .init_root_module::<PluginModRef>()
            .map_err(|e| classify(&path, e))?;
        let (info, start) = (module.info(), module.start());
        let info = match info() {
            RResult::ROk(info) => info,
            RResult::RErr(error) => return Err(LoadError::Info { path, error }),
        };
        let exports = config::read_exports(&path)?;
        Ok(Self {
            path,
            info,
            api_version,
            config_schema: exports.schema,
            config_check: exports.check,
            start,
        })
    }

    /// Refuses a library whose kind does not match the config section it is in
    /// (fixtures of kind `test` fit any slot).
    pub fn check_kind(&self, slot: &str) -> Result<(), LoadError> {
        let kind = self.info.kind.as_str();
        if kind == slot || kind == TEST_KIND {
            Ok(())
        } else {
            Err(LoadError::WrongKind {
                path: self.path.clone(),
                slot: slot.to_owned(),
                found: kind.to_owned(),
            })
        }
    }

    /// Starts the plugin on a separate thread, waiting at most `slot.start_timeout`. A
    /// start that hangs is reported as a timeout; its thread is left behind.
    pub fn start(
        &self,
        slot: &PluginSlot,
        env: &StartEnv,
        log: LogSink,
    ) -> Result<PluginInstance, StartError> {
        let ctx = StartContext {
            service: slot.service.name().into(),
            config: slot
                .section
                .iter()
                .map(|(k, v)| Tuple2(RString::from(k.as_str()), RString::from(v.as_str())))
                .collect(),
            bind_addr: env.bind_addr.clone().into(),
            port: slot.port,
            log_dir: env.log_dir.to_string_lossy().into_owned().into(),
            data_dir: env.data_dir.to_string_lossy().into_owned().into(),
            host: HostCallbacks { log },
        };
        let start = self.start;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("vh-start-{}", slot.service.name()))
            .spawn(move || {
                // If the host gave up waiting, the handle is dropped here, which stops it.
                let _ = tx.send(start(ctx));
            })
            .map_err(|e| StartError::Failed(format!("cannot spawn start thread: {e}")))?;
        match rx.recv_timeout(slot.start_timeout) {
            Ok(RResult::ROk(handle)) => Ok(PluginInstance {
                name: slot.service.name().to_owned(),
                handle,
            }),
            Ok(RResult::RErr(e)) => Err(StartError::Plugin(e)),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(StartError::Timeout(slot.start_timeout)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(StartError::Failed(
                "the start thread ended without an answer".to_owned(),
            )),
        }
    }
}

/// The voicehost-plugin-api version recorded in a root module's layout: abi_stable stores
/// the crate name and version of every type. The root layout is abi_stable's prefix
/// reference; `PluginMod` is among the types it refers to.
fn plugin_api_version(root: &'static TypeLayout) -> Option<String> {
    let mut layouts = vec![root];
    let mut seen = 0;
    while seen < layouts.len() && seen < 64 {
        let layout = layouts[seen];
        seen += 1;
        let (package, version) = layout.package_and_version();
        if package.as_str() == "voicehost-plugin-api" && layout.name() == "PluginMod" {
            return Some(version.to_string());
        }
        layouts.extend(layout.shared_vars().type_layouts().iter().map(|f| f()));
    }
    None
}

/// The ABI version a library declares in its header, readable even when the loader refuses
/// it; `None` when it is no abi_stable library.
pub fn declared_abi_version(path: &Path) -> Option<String> {
    // Not from a file cut short: mapping it is what the loader refuses to do.
    crate::elf::check_complete(path).ok()?;
    lib_header_from_path(path)
        .ok()
        .map(|header| header.version_strings().to_string())
}

/// Host-wide settings every plugin start gets.
#[derive(Debug, Clone)]
pub struct StartEnv {
    pub bind_addr: String,
    pub log_dir: PathBuf,
    pub data_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{}", .0.message)]
    Plugin(PluginError),
    #[error("start did not finish within {} ms", .0.as_millis())]
    Timeout(Duration),
    #[error("{0}")]
    Failed(String),
}

/// A started plugin.
pub struct PluginInstance {
    pub name: String,
    handle: PluginHandle,
}

impl std::fmt::Debug for PluginInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInstance")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PluginInstance {
    /// Health as the plugin reports it through the ABI (panics are caught plugin-side).
    pub fn health(&self) -> HealthReport {
        self.handle.health()
    }

    /// Stops the plugin, waiting at most `timeout`.
    pub fn stop(&mut self, timeout: Duration) -> Result<(), PluginError> {
        self.handle
            .stop(timeout.as_millis().min(u64::MAX as u128) as u64)
            .into_result()
    }
}

/// Turns abi_stable's error into a reason a user can act on.
fn classify(path: &Path, error: LibraryError) -> LoadError {
    let path = path.to_owned();
    match error {
        LibraryError::OpenError { err, .. } => LoadError::Open {
            path,
            reason: format!(
                "the dynamic loader cannot open it ({err}); a plugin is a shared library \
                 (.so) built for this machine, with the libraries it links installed"
            ),
        },
        LibraryError::GetSymbolError { .. } => LoadError::Incompatible {
            path,
            reason: "it exports no voicehost root module; a plugin must call \
                     voicehost_plugin_runtime::export_plugin! (or export_tts!/export_stt! of an SDK)"
                .to_owned(),
        },
        LibraryError::InvalidAbiHeader(h) => LoadError::Incompatible {
            path,
            reason: format!(
                "it was built with an incompatible abi_stable ({h:?}); rebuild it against this host's voicehost-plugin-api"
            ),
        },
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => LoadError::Incompatible {
            path,
            reason: format!(
                "it implements plugin ABI {actual_version}, this host implements ABI \
                 {expected_version}; a plugin loads only when its ABI major version is the \
                 host's ({}.x, any minor); rebuild it against voicehost-plugin-api \
                 {PLUGIN_API_VERSION} (ABI {ABI_VERSION})",
                expected_version.major
            ),
        },
        LibraryError::AbiInstability(e) => LoadError::Incompatible {
            path,
            reason: format!(
                "its ABI types do not match this host's ({}); rebuild it against \
                 voicehost-plugin-api {PLUGIN_API_VERSION} (ABI {ABI_VERSION})",
                layout_summary(&e.to_string())
            ),
        },
        other => LoadError::Incompatible {
            path,
            reason: other.to_string(),
        },
    }
}

/// The gist of abi_stable's layout report: each distinct `Error:` with the types it was
/// found in and its expected and found values, e.g. `mismatched type in PluginMod: expected
/// PluginMod, found WrongMod`.
fn layout_summary(report: &str) -> String {
    let lines: Vec<&str> = report
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // (error, expected, found) → the types it was reported for, in report order.
    let mut groups: Vec<([&str; 3], Vec<&str>)> = Vec::new();
    let mut current_type = None;
    for (i, line) in lines.iter().enumerate() {
        if *line == "Layout of expected type:" {
            current_type = lines[i..].iter().find_map(|l| l.strip_prefix("type:"));
            continue;
        }
        let Some(kind) = line.strip_prefix("Error:") else {
            continue;
        };
        let value_after = |label: &str| {
            lines[i..]
                .iter()
                .position(|l| *l == label)
                .and_then(|p| lines.get(i + p + 1))
                .copied()
                .unwrap_or("?")
        };
        let key = [kind.trim(), value_after("Expected:"), value_after("Found:")];
        let index = match groups.iter().position(|(k, _)| *k == key) {
            Some(index) => index,
            None => {
                groups.push((key, Vec::new()));
                groups.len() - 1
            }
        };
        let types = &mut groups[index].1;
        if let Some(ty) = current_type.filter(|t| !types.contains(t)) {
            types.push(ty);
        }
    }
    if groups.is_empty() {
        return "layout check failed".to_owned();
    }
    groups
        .iter()
        .map(|([kind, expected, found], types)| {
            let within = match types.len() {
                0 => String::new(),
                1..=3 => format!(" in {}", types.join(", ")),
                n => format!(" in {} and {} more types", types[..3].join(", "), n - 3),
            };
            format!("{kind}{within}: expected {expected}, found {found}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_summary_extracts_errors() {
        let report = "Compared <this>:\n  lots\n\n  Error:mismatched type\n  Expected:\n      PluginMod\n  Found:\n      WrongMod\n";
        assert_eq!(
            layout_summary(report),
            "mismatched type: expected PluginMod, found WrongMod"
        );
        assert_eq!(layout_summary("nothing useful"), "layout check failed");
    }

    #[test]
    fn layout_summary_names_the_types_once_per_error() {
        let error = |ty: &str| {
            format!(
                "Layout of expected type:\n  --- Type Layout ---\n  type:{ty}\n  package:'p'\n\n\
                 Error:incompatible package versions\nExpected:\n    0.1.1\nFound:\n    0.2.0\n"
            )
        };
        let report: String = [
            "PluginMod",
            "PluginInfo",
            "PluginInfo",
            "PluginError",
            "LogSink",
            "HealthReport",
        ]
        .iter()
        .map(|t| error(t))
        .collect();
        assert_eq!(
            layout_summary(&report),
            "incompatible package versions in PluginMod, PluginInfo, PluginError and 2 more \
             types: expected 0.1.1, found 0.2.0"
        );
    }
}
