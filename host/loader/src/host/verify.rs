//! Before a library is used: loaded and checked in the host (in-process plugins) or in a
//! short-lived worker (process isolation), and its sha256 for the admin API.

use std::path::Path;

use super::{Host, ServiceError, isolation_name};
use crate::instance::check_in_worker;
use crate::plugin::{LoadError, PluginLibrary};
use crate::slot::{Isolation, PluginSlot};
use crate::worker::LibInfo;

impl Host {
    /// Loads and verifies the library of every enabled service, before anything starts.
    pub async fn verify_all(&self) -> Result<(), ServiceError> {
        for slot in self.slots.iter().filter(|s| s.config.enabled) {
            let mut state = slot.state.lock().await;
            let path = state.library_path.clone();
            let (library, info) = verify(&slot.config, &path).await?;
            tracing::info!(
                service = slot.config.service.name(),
                plugin = %info.name,
                version = %info.version,
                abi = %info.abi_version,
                isolation = isolation_name(slot.config.isolation),
                path = %path.display(),
                "Plugin verified"
            );
            state.sha256 = sha256_of(&path).await;
            state.library = library;
            state.info = Some(info);
        }
        Ok(())
    }
}

/// Verifies `path` for `slot`: in-process by loading it here, process isolation in a
/// short-lived worker (no plugin code enters the host).
pub async fn verify(
    slot: &PluginSlot,
    path: &Path,
) -> Result<(Option<PluginLibrary>, LibInfo), ServiceError> {
    match slot.isolation {
        Isolation::InProcess => {
            let owned = path.to_owned();
            let library = tokio::task::spawn_blocking(move || PluginLibrary::load(&owned))
                .await
                .map_err(|e| ServiceError::Start {
                    service: slot.service.name().to_owned(),
                    reason: e.to_string(),
                })??;
            library.check_kind(slot.service.name())?;
            let info = LibInfo::of(&library);
            Ok((Some(library), info))
        }
        Isolation::Process => {
            if !path.is_file() {
                return Err(LoadError::Open {
                    path: path.to_owned(),
                    reason: "no such file; build it first (cargo build --release) or fix the `library` key"
                        .to_owned(),
                }
                .into());
            }
            // Refused here with the reason, before a worker maps a file cut short.
            crate::elf::check_complete(path).map_err(|reason| LoadError::Open {
                path: path.to_owned(),
                reason,
            })?;
            let info = check_in_worker(path, slot.service.name(), None)
                .await
                .map_err(|refusal| ServiceError::Refused {
                    path: path.display().to_string(),
                    reason: refusal.reason,
                })?;
            Ok((None, info))
        }
    }
}

/// Hex sha256 of a library file ("" if unreadable).
pub async fn sha256_of(path: &Path) -> String {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || sha256_file(&path).unwrap_or_default())
        .await
        .unwrap_or_default()
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}
