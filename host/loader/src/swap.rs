//! Hot swap: replace a running plugin with a new build without restarting the host.
//!
//! The new library is verified first (in-process: copied to a unique path, because a
//! library is never unloaded and dlopen of an already loaded path returns the old copy;
//! process isolation: checked in a short-lived worker). Only then is the old instance
//! stopped and the new one started on the same port and gated on health. If the new one
//! fails, the old one is started again. A swap waits while a dialog is active unless
//! forced. With `[loader] watch_plugins`, a changed library file triggers a swap by itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use voicehost_proto::loader::v1::ServiceInfo;

use crate::host::{Host, ServiceError, info_of, sha256_of, verify};
use crate::service::Service;
use crate::slot::Isolation;

/// How long a non-forced swap waits for the active dialog to end.
const DIALOG_WAIT: Duration = Duration::from_secs(60);

static COPIES: AtomicU64 = AtomicU64::new(0);

/// Copies `path` to a fresh, unique file so the dynamic loader sees a new library.
fn unique_copy(path: &Path, service: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("voicehost-{}-plugins", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let n = COPIES.fetch_add(1, Ordering::Relaxed);
    let copy = dir.join(format!("{service}-{n}.so"));
    std::fs::copy(path, &copy).map_err(|e| format!("cannot copy {}: {e}", path.display()))?;
    Ok(copy)
}

/// Replaces `service`'s plugin with the library at `path` (default: the configured one).
pub async fn reload(
    host: &Host,
    service: Service,
    path: Option<PathBuf>,
    force: bool,
) -> Result<ServiceInfo, ServiceError> {
    let name = service.name();
    let slot = host.slot(service)?;
    if !slot.config.enabled {
        return Err(ServiceError::Disabled(name.to_owned()));
    }
    if !force {
        let deadline = Instant::now() + DIALOG_WAIT;
        while host.dialog_active.load(Ordering::SeqCst) {
            if Instant::now() >= deadline {
                return Err(ServiceError::Busy(format!(
                    "a dialog is still active after {} s; the swap of {name} was not done. \
                     Retry when idle, or force it",
                    DIALOG_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let source = path.unwrap_or_else(|| slot.config.library.clone());
    let mut state = slot.state.lock().await;

    // 1. Verify the new plugin before touching the running one.
    let refused = |reason: String| ServiceError::Refused {
        path: source.display().to_string(),
        reason,
    };
    let written = stamp(&source);
    let verified = async {
        if !source.is_file() {
            return Err(refused("no such file".to_owned()));
        }
        // A file cut short is refused by its name before it is copied or mapped.
        crate::elf::check_complete(&source).map_err(refused)?;
        let candidate = match slot.config.isolation {
            Isolation::InProcess => unique_copy(&source, name).map_err(refused)?,
            Isolation::Process => source.clone(),
        };
        let verified = verify(&slot.config, &candidate).await?;
        // A file that changed while it was checked is not the file that was checked.
        if stamp(&source) != written {
            return Err(refused(
                "the file changed while it was being verified (still being written?); \
                 try again once it is complete"
                    .to_owned(),
            ));
        }
        Ok((candidate, verified))
    }
    .await;
    let (candidate, (library, info)) = match verified {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(event = "swap_refused", service = name, path = %source.display(), error = %e, "Hot swap refused; the running plugin stays");
            return Err(e);
        }
    };
    let old = (
        state.library_path.clone(),
        state.library.clone(),
        state.info.clone(),
        state.sha256.clone(),
    );
    tracing::info!(
        event = "swap_started",
        service = name,
        from_version = %old.2.as_ref().map(|i| i.version.as_str()).unwrap_or(""),
        to_version = %info.version,
        path = %source.display(),
        "Hot swap starting"
    );

    // 2. Stop the old one, start the new one on the same port.
    let gap = Instant::now();
    host.stop_locked(slot, &mut state).await;
    state.library_path = candidate.clone();
    state.library = library;
    state.info = Some(info.clone());
    state.sha256 = sha256_of(&source).await;
    match host.start_locked(slot, &mut state).await {
        Ok(()) => {
            tracing::info!(
                event = "swap_done",
                service = name,
                version = %info.version,
                gap_ms = gap.elapsed().as_millis() as u64,
                "Hot swap done"
            );
            Ok(info_of(slot, &state))
        }
        Err(e) => {
            // 3. Put the old one back.
            (state.library_path, state.library, state.info, state.sha256) = old;
            let restored = host.start_locked(slot, &mut state).await;
            tracing::warn!(
                event = "swap_failed",
                service = name,
                error = %e,
                restored = restored.is_ok(),
                "Hot swap failed; the previous plugin was started again"
            );
            Err(ServiceError::Start {
                service: name.to_owned(),
                reason: format!(
                    "the new plugin failed ({e}); {}",
                    match restored {
                        Ok(()) => "the previous one serves again".to_owned(),
                        Err(r) => format!("restoring the previous one failed too: {r}"),
                    }
                ),
            })
        }
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Swaps a plugin when its configured library file changes (checked every second; the
/// file must be unchanged for one more check before the swap, so a build that is still
/// writing it is not picked up half-way).
pub fn watch(host: Arc<Host>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if !host.settings().watch_plugins {
            return;
        }
        let watched: Vec<(Service, PathBuf)> = host
            .slots()
            .iter()
            .filter(|s| s.config.enabled)
            .map(|s| (s.config.service, s.config.library.clone()))
            .collect();
        let mut known: Vec<Option<(SystemTime, u64)>> =
            watched.iter().map(|(_, p)| stamp(p)).collect();
        let mut seen: Vec<Option<(SystemTime, u64)>> = known.clone();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if host.is_shutting_down() {
                return;
            }
            for (i, (name, path)) in watched.iter().enumerate() {
                let now = stamp(path);
                let stable = now == seen[i];
                seen[i] = now;
                if now.is_none() || now == known[i] || !stable {
                    continue;
                }
                known[i] = now;
                tracing::info!(event = "plugin_changed", service = name.name(), path = %path.display(), "Plugin library changed; hot swapping");
                if let Err(e) = reload(&host, *name, None, false).await {
                    tracing::warn!(service = name.name(), error = %e, "Hot swap after a file change failed");
                }
            }
        }
    })
}
