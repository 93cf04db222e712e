//! The health watcher and restarts.
//!
//! Every `health_interval_ms` each serving service is checked: its worker process must be
//! alive, the plugin must not report NOT_SERVING, and `grpc.health.v1.Health/Check` on its
//! port must answer SERVING. A service that fails is restarted after 1 s, 3 s, 5 s
//! (`restart_backoff_ms`); at most that many restarts per minute, then it is marked FAILED
//! and a FATAL line goes to app.log. While stt restarts, kwd is paused (it listens to
//! stt's audio) and resumed once stt serves again; kwd reporting NOT_SERVING while stt is
//! not serving, or has served for less than [`UPSTREAM_GRACE`], is kwd waiting for audio
//! (it reconnects by itself), not a crash.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic_health::pb::health_client::HealthClient;
use voicehost_plugin_api::HealthStatus;
use voicehost_proto::loader::v1::ServiceState;

use crate::host::{Host, check_health, endpoint};
use crate::service::Service;

/// Restarts counted against the cap are those within this window.
const WINDOW: Duration = Duration::from_secs(60);
/// How long a service may wait for its upstream to come back before it counts as failed.
pub const UPSTREAM_GRACE: Duration = Duration::from_secs(5);

/// Whether the service `service` streams from (kwd: stt's audio) is enabled but not
/// settled: being started, restarted, swapped or stopped, or serving for less than
/// [`UPSTREAM_GRACE`]. stt's render reference is not counted: stt serves without it.
fn upstream_unsettled(host: &Host, service: Service) -> bool {
    let upstream = (service == Service::Kwd).then_some(Service::Stt);
    let Some(slot) = upstream.and_then(|up| host.slot(up).ok()) else {
        return false;
    };
    if !slot.config.enabled {
        return false;
    }
    match slot.state.try_lock() {
        Err(_) => true,
        Ok(s) => {
            s.state != ServiceState::Serving
                || s.serving_since.is_none_or(|t| t.elapsed() < UPSTREAM_GRACE)
        }
    }
}

/// The wait before restart number `recent + 1` given `recent` restarts in the window, or
/// `None` when the cap (one restart per backoff entry) is reached.
pub fn next_backoff(backoff: &[Duration], recent: usize) -> Option<Duration> {
    backoff.get(recent).copied()
}

/// Watches every serving service until shutdown.
pub fn spawn(host: Arc<Host>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = host.settings().health_interval;
        let timeout = interval.clamp(Duration::from_millis(200), Duration::from_secs(2));
        // One health client per service for the whole run: its channel reconnects by itself
        // after a restart, so no connection is set up per check.
        let mut clients: Vec<HealthClient<_>> = host
            .slots()
            .iter()
            .map(|s| {
                HealthClient::new(endpoint(&host.env().bind_addr, s.config.port).connect_lazy())
            })
            .collect();
        loop {
            tokio::time::sleep(interval).await;
            if host.is_shutting_down() {
                return;
            }
            for (slot, client) in host.slots().iter().zip(&mut clients) {
                if !slot.config.enabled {
                    continue;
                }
                let service = slot.config.service;
                // A slot being started, stopped or swapped is someone else's business now.
                let Ok(mut state) = slot.state.try_lock() else {
                    continue;
                };
                if state.state != ServiceState::Serving {
                    continue;
                }
                let Some(running) = state.running.as_mut() else {
                    continue;
                };
                let mut problem = running.exited().map(|why| format!("worker process {why}"));
                if problem.is_none() {
                    let h = running.health();
                    if h.status == HealthStatus::NotServing {
                        problem = Some(format!("reported NOT_SERVING: {}", h.detail));
                    }
                }
                if problem.is_none()
                    && let Err(why) = check_health(client, timeout).await
                {
                    problem = Some(why);
                }
                if problem.is_some()
                    && running.exited().is_none()
                    && upstream_unsettled(&host, service)
                {
                    // Waiting for its upstream's stream; it reconnects by itself.
                    continue;
                }
                if let Some(reason) = problem {
                    state.state = ServiceState::Restarting;
                    state.last_error = reason.clone();
                    drop(state);
                    tokio::spawn(recover(Arc::clone(&host), service, reason));
                }
            }
        }
    })
}

/// Restarts `name` with backoff until it serves, the cap is reached, or someone else (the
/// admin API, shutdown) takes over.
async fn recover(host: Arc<Host>, service: Service, mut reason: String) {
    let name = service.name();
    let Ok(slot) = host.slot(service) else {
        return;
    };
    tracing::warn!(event = "service_crashed", service = name, reason = %reason, "Service crashed");
    let backoff = host.settings().restart_backoff.clone();
    let paused = pause_dependents(&host, service).await;
    loop {
        let mut state = slot.state.lock().await;
        if let Some(old) = state.running.take() {
            // Whatever is left of the crashed instance goes; a worker is killed.
            let _ = old.stop(Duration::from_millis(500)).await;
        }
        let now = Instant::now();
        while state
            .recent_restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > WINDOW)
        {
            state.recent_restarts.pop_front();
        }
        let recent = state.recent_restarts.len();
        let Some(wait) = next_backoff(&backoff, recent) else {
            state.state = ServiceState::Failed;
            state.last_error =
                format!("gave up after {recent} restarts within a minute; last error: {reason}");
            tracing::error!(
                event = "service_failed",
                service = name,
                restarts = recent,
                reason = %reason,
                "FATAL: service failed too often and was not restarted; fix the cause and use `voicehost ctl start {name}`"
            );
            return;
        };
        state.state = ServiceState::Restarting;
        drop(state);
        tracing::info!(
            event = "restart_scheduled",
            service = name,
            attempt = recent + 1,
            backoff_ms = wait.as_millis() as u64,
            "Restart scheduled"
        );
        tokio::time::sleep(wait).await;
        let mut state = slot.state.lock().await;
        if host.is_shutting_down() || state.state != ServiceState::Restarting {
            // Stopped or started by the admin API meanwhile, or shutting down.
            return;
        }
        state.recent_restarts.push_back(Instant::now());
        state.restarts += 1;
        match host.start_locked(slot, &mut state).await {
            Ok(()) => {
                tracing::info!(
                    event = "service_restarted",
                    service = name,
                    attempt = recent + 1,
                    backoff_ms = wait.as_millis() as u64,
                    restarts = state.restarts,
                    "Service restarted"
                );
                drop(state);
                resume_dependents(&host, &paused).await;
                return;
            }
            Err(e) => {
                reason = e.to_string();
                state.state = ServiceState::Restarting;
            }
        }
    }
}

/// kwd listens to stt's audio: pause it while stt restarts. Returns what was paused.
async fn pause_dependents(host: &Host, service: Service) -> Vec<Service> {
    if service != Service::Stt || !host.enabled().contains(&Service::Kwd) {
        return Vec::new();
    }
    let call = host.switch_kwd(false, "stt_restarting");
    if let Ok(Err(status)) = tokio::time::timeout(Duration::from_secs(1), call).await {
        tracing::debug!(error = %status.message(), "kwd did not take Disable");
    }
    tracing::info!(
        event = "kwd_paused",
        reason = "stt_restarting",
        "kwd paused while stt restarts"
    );
    vec![Service::Kwd]
}

async fn resume_dependents(host: &Host, paused: &[Service]) {
    if !paused.contains(&Service::Kwd) {
        return;
    }
    let call = host.switch_kwd(true, "stt_restarting");
    if let Ok(Err(status)) = tokio::time::timeout(Duration::from_secs(1), call).await {
        tracing::debug!(error = %status.message(), "kwd did not take Enable");
    }
    tracing::info!(event = "kwd_resumed", "kwd resumed: stt serves again");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_then_cap() {
        let b = [1000, 3000, 5000].map(Duration::from_millis);
        assert_eq!(next_backoff(&b, 0), Some(Duration::from_secs(1)));
        assert_eq!(next_backoff(&b, 1), Some(Duration::from_secs(3)));
        assert_eq!(next_backoff(&b, 2), Some(Duration::from_secs(5)));
        assert_eq!(next_backoff(&b, 3), None);
    }
}
