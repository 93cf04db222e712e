//! Loading plugin libraries through the ABI and driving one plugin instance.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use abi_stable::library::{LibraryError, lib_header_from_path};
use abi_stable::std_types::{RResult, RString, Tuple2};
use voicehost_plugin_api::abi::{
    HealthReport, HostCallbacks, LogSink, PluginHandle, PluginInfo, PluginModRef, StartContext,
};
use voicehost_plugin_api::{ABI_VERSION, PluginError};

use crate::config::PluginSlot;

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

/// A plugin library whose version and layout were verified.
#[derive(Debug, Clone)]
pub struct PluginLibrary {
    pub path: PathBuf,
    pub info: PluginInfo,
    module: PluginModRefDebug,
}

#[derive(Clone, Copy)]
struct PluginModRefDebug(PluginModRef);

impl std::fmt::Debug for PluginModRefDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PluginModRef")
    }
}

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
        let header = lib_header_from_path(&path).map_err(|e| classify(&path, e))?;
        let module = header
            .init_root_module::<PluginModRef>()
            .map_err(|e| classify(&path, e))?;
        let info = match (module.info())() {
            RResult::ROk(info) => info,
            RResult::RErr(error) => return Err(LoadError::Info { path, error }),
        };
        Ok(Self {
            path,
            info,
            module: PluginModRefDebug(module),
        })
    }

    /// Refuses a library whose kind does not match the config section it is in
    /// (fixtures of kind `test` fit any slot).
    pub fn check_kind(&self, slot: &str) -> Result<(), LoadError> {
        let kind = self.info.kind.as_str();
        if kind == slot || kind == "test" {
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
            service: slot.name.into(),
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
        let start = self.module.0.start();
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name(format!("vh-start-{}", slot.name))
            .spawn(move || {
                // If the host gave up waiting, the handle is dropped here, which stops it.
                let _ = tx.send(start(ctx));
            })
            .map_err(|e| StartError::Failed(format!("cannot spawn start thread: {e}")))?;
        match rx.recv_timeout(slot.start_timeout) {
            Ok(RResult::ROk(handle)) => Ok(PluginInstance {
                name: slot.name.to_owned(),
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
        e @ LibraryError::OpenError { .. } => LoadError::Open {
            path,
            reason: e.to_string(),
        },
        LibraryError::GetSymbolError { .. } => LoadError::Incompatible {
            path,
            reason: "it exports no voicehost root module; a plugin must call \
                     voicehost_plugin_api::export_plugin!"
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
                "it implements plugin ABI {actual_version}, this host needs ABI {expected_version} \
                 (same major version, minor at least the host's); rebuild it against \
                 voicehost-plugin-api with ABI {ABI_VERSION}"
            ),
        },
        LibraryError::AbiInstability(e) => LoadError::Incompatible {
            path,
            reason: format!(
                "its ABI types do not match this host's ({}); rebuild it against this host's \
                 voicehost-plugin-api",
                layout_summary(&e.to_string())
            ),
        },
        other => LoadError::Incompatible {
            path,
            reason: other.to_string(),
        },
    }
}

/// The gist of abi_stable's layout report: each `Error:` with its expected and found types,
/// e.g. `mismatched type: expected PluginMod, found WrongMod`.
fn layout_summary(report: &str) -> String {
    let lines: Vec<&str> = report
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut parts = Vec::new();
    for (i, line) in lines.iter().enumerate() {
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
        parts.push(format!(
            "{}: expected {}, found {}",
            kind.trim(),
            value_after("Expected:"),
            value_after("Found:")
        ));
    }
    if parts.is_empty() {
        "layout check failed".to_owned()
    } else {
        parts.join("; ")
    }
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
}
