//! Startup in phases: logger (0); tts + llm together (1); stt (2); kwd (3). (The warm-up
//! greeting that follows is the dialog's, in the `voicehost` crate.)
//!
//! A phase succeeds when all its services are SERVING (phase 1 within
//! `parallel_phase_timeout_ms`). A phase that fails is rolled back (its services stopped,
//! earlier phases stay up) and retried after each `restart_backoff_ms` wait; when those are
//! used up the startup is FATAL. The VRAM guard runs before phase 1 and between phases.

use std::collections::BTreeMap;
use std::time::Instant;

use futures_util::future::join_all;

use crate::gpu::{self, GpuProbe, Guard};
use crate::host::{Host, ServiceError};
use crate::service::{self, Service};
use crate::settings::StartupMode;

/// Services of each phase, enabled ones only, in startup order.
pub fn phases(host: &Host) -> BTreeMap<u8, Vec<Service>> {
    let mut out: BTreeMap<u8, Vec<Service>> = BTreeMap::new();
    for slot in host.slots().iter().filter(|s| s.config.enabled) {
        out.entry(slot.config.service.phase())
            .or_default()
            .push(slot.config.service);
    }
    out
}

/// Runs the VRAM guard; FATAL is returned as the error message.
fn vram_guard(
    host: &Host,
    probe: &dyn GpuProbe,
    phase: u8,
    needed_mb: u64,
    key: &str,
) -> Result<(), String> {
    match gpu::check(probe, host.settings().gpu, needed_mb, key) {
        Guard::Ok {
            gpu,
            free_mb,
            needed_mb,
        } => {
            tracing::info!(event = "vram_ok", phase, gpu = %gpu, free_mb, needed_mb, "VRAM check passed");
            Ok(())
        }
        Guard::Skipped(why) => {
            tracing::info!(event = "vram_check_skipped", phase, reason = %why, "VRAM check skipped");
            Ok(())
        }
        Guard::Fatal(why) => {
            tracing::error!(event = "fatal", phase, reason = %why, "VRAM check failed");
            Err(format!("VRAM check before phase {phase} failed: {why}"))
        }
    }
}

/// Starts every enabled service phase by phase. `logger_ready` runs once the logger
/// serves (so later events, FATAL included, reach app.log). Returns the FATAL reason.
pub async fn start_all(
    host: &Host,
    probe: &dyn GpuProbe,
    logger_ready: impl Fn(),
) -> Result<(), String> {
    let settings = host.settings();
    let boot = Instant::now();
    let mode = settings.startup_mode;
    for (phase, members) in phases(host) {
        if phase == 1 {
            vram_guard(host, probe, phase, settings.min_vram_mb, "min_vram_mb")?;
        } else if phase > 1 {
            vram_guard(host, probe, phase, settings.phase_vram_mb, "phase_vram_mb")?;
        }
        let mut parallel = mode == StartupMode::PhasedParallel && members.len() > 1;
        if parallel && phase == 1 && settings.stagger_below_vram_mb > 0 {
            let free = probe.memory().ok().flatten().map(|m| m.free_mb);
            if let Some(free_mb) = free.filter(|f| *f < settings.stagger_below_vram_mb) {
                tracing::info!(
                    event = "phase_staggered",
                    phase,
                    free_mb,
                    below_mb = settings.stagger_below_vram_mb,
                    "Phase 1 staggered: tts first, llm once tts serves"
                );
                parallel = false;
            }
        }
        run_phase(host, phase, &members, parallel).await?;
        if phase == 0 {
            logger_ready();
        }
    }
    tracing::info!(
        event = "startup_finished",
        ms = boot.elapsed().as_millis() as u64,
        mode = match mode {
            StartupMode::PhasedParallel => "phased_parallel",
            StartupMode::Sequential => "sequential",
        },
        "All phases serving"
    );
    Ok(())
}

/// One phase with its retries.
async fn run_phase(
    host: &Host,
    phase: u8,
    members: &[Service],
    parallel: bool,
) -> Result<(), String> {
    let settings = host.settings();
    let backoff = &settings.restart_backoff;
    let mut attempt = 0usize;
    loop {
        let started = Instant::now();
        tracing::info!(
            event = "phase_started",
            phase,
            services = %service::join(members, ","),
            parallel,
            attempt = attempt + 1,
            "Phase starting"
        );
        let result = if parallel {
            let all = join_all(members.iter().map(|m| host.start(*m)));
            let results = if phase == 1 {
                let limit = settings.parallel_phase_timeout;
                tokio::time::timeout(limit, all).await.map_err(|_| {
                    ServiceError::Busy(format!(
                        "phase {phase} was not SERVING within parallel_phase_timeout_ms = {}",
                        limit.as_millis()
                    ))
                })
            } else {
                Ok(all.await)
            };
            results.and_then(|r| r.into_iter().collect::<Result<Vec<_>, _>>().map(|_| ()))
        } else {
            let mut result = Ok(());
            for m in members {
                result = host.start(*m).await;
                if result.is_err() {
                    break;
                }
            }
            result
        };
        match result {
            Ok(()) => {
                tracing::info!(
                    event = "phase_finished",
                    phase,
                    services = %service::join(members, ","),
                    ms = started.elapsed().as_millis() as u64,
                    "Phase serving"
                );
                return Ok(());
            }
            Err(e) => {
                for m in members {
                    let _ = host.stop(*m).await;
                }
                tracing::warn!(
                    event = "phase_failed",
                    phase,
                    attempt = attempt + 1,
                    error = %e,
                    "Phase failed and was rolled back"
                );
                let Some(wait) = backoff.get(attempt) else {
                    let why = format!(
                        "phase {phase} ({}) failed {} time(s); last error: {e}",
                        service::join(members, ", "),
                        attempt + 1
                    );
                    tracing::error!(event = "fatal", phase, reason = %why, "Startup failed");
                    return Err(why);
                };
                tokio::time::sleep(*wait).await;
                attempt += 1;
            }
        }
    }
}
