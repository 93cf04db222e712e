//! The Wyoming TCP server: accepts connections up to `max_connections` (one more is told
//! so in an `error` event and closed), serves each in a task of its own, and keeps the
//! `info` it answers `describe` with fresh (Home Assistant waits 1 s for it, so it is
//! never fetched while a client waits).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{RwLock, Semaphore};

use crate::config::Settings;
use crate::frame::{Event, write_event};
use crate::info::{self, Programs};
use crate::session;
use crate::upstream::Upstreams;

/// How often what the services offer is asked again.
const REFRESH: Duration = Duration::from_secs(60);
/// How soon after a service did not answer.
const RETRY: Duration = Duration::from_secs(2);

/// What every connection shares.
#[derive(Debug)]
pub struct Shared {
    pub settings: Settings,
    pub upstreams: Upstreams,
    programs: RwLock<Programs>,
    pub open: AtomicUsize,
    pub served: AtomicU64,
}

impl Shared {
    pub fn new(settings: Settings, upstreams: Upstreams) -> Shared {
        Shared {
            settings,
            upstreams,
            programs: RwLock::new(Programs::default()),
            open: AtomicUsize::new(0),
            served: AtomicU64::new(0),
        }
    }

    /// The `info` event's data as of the last refresh.
    pub async fn info(&self) -> Value {
        info::info(&*self.programs.read().await, env!("CARGO_PKG_VERSION"))
    }

    /// What the services offered at the last refresh.
    pub async fn programs(&self) -> Programs {
        self.programs.read().await.clone()
    }

    /// The wake models kwd has loaded.
    pub async fn wake_models(&self) -> Vec<String> {
        let programs = self.programs.read().await;
        programs
            .wake
            .as_ref()
            .map(|w| w.models.clone())
            .unwrap_or_default()
    }

    /// tts's voices with their languages.
    pub async fn voices(&self) -> Vec<(String, Vec<String>)> {
        let programs = self.programs.read().await;
        programs
            .tts
            .as_ref()
            .map(|t| {
                t.voices
                    .iter()
                    .map(|v| (v.name.clone(), v.languages.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// tts's output rate (22050 until it reported one).
    pub async fn tts_rate(&self) -> u32 {
        let programs = self.programs.read().await;
        programs
            .tts
            .as_ref()
            .map_or(22_050, |t| t.sample_rate.max(8_000))
    }

    /// Asks the services what they offer; true when every bridged one answered.
    pub async fn refresh(&self) -> bool {
        let (mut fresh, missing) = self.upstreams.programs().await;
        let mut programs = self.programs.write().await;
        // A service that did not answer keeps what it offered last (Home Assistant caches
        // `info`: a part must not come and go with a restart).
        if fresh.asr.is_none() {
            fresh.asr = programs.asr.take();
        }
        if fresh.tts.is_none() {
            fresh.tts = programs.tts.take();
        }
        if fresh.wake.is_none() {
            fresh.wake = programs.wake.take();
        }
        *programs = fresh;
        if !missing.is_empty() {
            tracing::debug!(missing = %missing.join("; "), "Wyoming info: services did not answer");
        }
        missing.is_empty()
    }
}

/// Refreshes what the services offer every [`REFRESH`] (every [`RETRY`] while one does not
/// answer).
pub async fn keep_fresh(shared: Arc<Shared>) {
    loop {
        let all = shared.refresh().await;
        tokio::time::sleep(if all { REFRESH } else { RETRY }).await;
    }
}

/// Accepts connections until the runtime stops.
pub async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(shared.settings.max_connections));
    loop {
        let (mut stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "Wyoming accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            let max = shared.settings.max_connections;
            tracing::warn!(event = "wyoming_busy", %peer, max, "Wyoming connection refused: too many at once");
            tokio::spawn(async move {
                let refusal = Event::error(
                    "too-many-connections",
                    format!("{max} connections are open ([wyoming] max_connections); try again"),
                );
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    write_event(&mut stream, &refusal),
                )
                .await;
            });
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            // Counted and its slot held until the session ends, even if it panics.
            let _open = Open::new(Arc::clone(&shared), permit);
            tracing::debug!(%peer, "Wyoming connection");
            session::serve(stream, shared).await;
        });
    }
}

/// A connection being served: counted in `open` and holding its slot while it lives.
struct Open {
    shared: Arc<Shared>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Open {
    fn new(shared: Arc<Shared>, permit: tokio::sync::OwnedSemaphorePermit) -> Open {
        shared.open.fetch_add(1, Ordering::Relaxed);
        shared.served.fetch_add(1, Ordering::Relaxed);
        Open {
            shared,
            _permit: permit,
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.shared.open.fetch_sub(1, Ordering::Relaxed);
    }
}
