//! Watchers: tts's playback events (and kwd off while anything plays) and kwd's wake events.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use voicehost_plugin_runtime::stream::{Follow, Resubscribe};
use voicehost_proto::common::v1::DialogRef;
use voicehost_proto::kwd::v1::kwd_event::Event as KwdEventKind;
use voicehost_proto::kwd::v1::kwd_service_client::KwdServiceClient;
use voicehost_proto::kwd::v1::{EventsRequest, WakeDetected};
use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;
use voicehost_proto::tts::v1::{PlaybackEvent, PlaybackEventKind};

use crate::host::Host;
use crate::service::Service;

use super::{DIALOG, SPEAKING, SPEAKING_TAIL};

/// What tts's playback watcher reports.
#[derive(Debug, Clone)]
pub(super) enum Playback {
    Event(PlaybackEvent),
    /// The event stream broke: tts went away (crash, restart, swap).
    Lost(String),
}

/// Forwards tts's `PlaybackEvents` (all dialogs) to `tx`; reconnects when tts comes back.
/// `watching` is told once the first subscription stands.
pub(super) async fn watch_playback(
    host: Arc<Host>,
    tx: broadcast::Sender<Playback>,
    watching: tokio::sync::oneshot::Sender<()>,
) {
    let mut watching = Some(watching);
    let open = move || {
        let host = Arc::clone(&host);
        async move {
            let channel = host.channel(Service::Tts).map_err(|e| e.to_string())?;
            let all = DialogRef {
                dialog_id: String::new(),
            };
            match TtsServiceClient::new(channel).playback_events(all).await {
                Ok(stream) => Ok(stream.into_inner()),
                Err(status) => Err(status.message().to_owned()),
            }
        }
    };
    let mut events = Resubscribe::new(open, Duration::from_millis(100));
    loop {
        match events.next().await {
            Follow::Connected => {
                if let Some(w) = watching.take() {
                    let _ = w.send(());
                }
            }
            Follow::Item(ev) => {
                let _ = tx.send(Playback::Event(ev));
            }
            Follow::Lost(why) => {
                tracing::debug!(reason = %why, "tts playback events lost");
                let _ = tx.send(Playback::Lost(why));
            }
            Follow::Unavailable(why) => tracing::trace!(error = %why, "no playback events yet"),
        }
    }
}

/// kwd is disabled from the start of any playback until `SPEAKING_TAIL` after its end.
pub(super) async fn kwd_off_while_speaking(
    host: Arc<Host>,
    mut events: broadcast::Receiver<Playback>,
) {
    let mut playing: Vec<u64> = Vec::new();
    let mut disabled = false;
    loop {
        let next = if playing.is_empty() && disabled {
            match tokio::time::timeout(SPEAKING_TAIL, events.recv()).await {
                Ok(ev) => ev,
                Err(_) => {
                    switch_kwd(&host, true, SPEAKING).await;
                    disabled = false;
                    continue;
                }
            }
        } else {
            events.recv().await
        };
        match next {
            Ok(Playback::Event(ev)) => match ev.kind() {
                PlaybackEventKind::Started => {
                    if !playing.contains(&ev.utterance_id) {
                        playing.push(ev.utterance_id);
                    }
                    if !disabled {
                        switch_kwd(&host, false, SPEAKING).await;
                        disabled = true;
                    }
                }
                PlaybackEventKind::Finished | PlaybackEventKind::Interrupted => {
                    playing.retain(|u| *u != ev.utterance_id);
                }
                _ => {}
            },
            Ok(Playback::Lost(_)) => playing.clear(),
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Turns kwd on or off for `reason`, logging the outcome (`kwd_enabled` / `kwd_disabled`).
pub(super) async fn switch_kwd(host: &Host, on: bool, reason: &str) {
    let (done, failed) = if on {
        ("kwd_enabled", "kwd_enable_failed")
    } else {
        ("kwd_disabled", "kwd_disable_failed")
    };
    match host.switch_kwd(on, reason).await {
        Ok(()) => tracing::info!(event = done, reason, "Wake word switched"),
        Err(status) => {
            tracing::warn!(event = failed, reason, error = %status.message(), "kwd did not take the switch")
        }
    }
}

/// Forwards kwd's wake events; reconnects when kwd comes back (restart, swap) and then
/// disables it again if a dialog is running (a new kwd starts enabled).
pub(super) async fn watch_wakes(host: Arc<Host>, tx: mpsc::Sender<WakeDetected>) {
    let kwd = Arc::clone(&host);
    let open = move || {
        let host = Arc::clone(&kwd);
        async move {
            let channel = host.channel(Service::Kwd).map_err(|e| e.to_string())?;
            match KwdServiceClient::new(channel)
                .events(EventsRequest {})
                .await
            {
                Ok(stream) => Ok(stream.into_inner()),
                Err(status) => Err(status.message().to_owned()),
            }
        }
    };
    let mut events = Resubscribe::new(open, Duration::from_millis(200));
    loop {
        match events.next().await {
            Follow::Connected => {
                if host.dialog_active.load(Ordering::SeqCst) {
                    switch_kwd(&host, false, DIALOG).await;
                }
            }
            Follow::Item(ev) => {
                if let Some(KwdEventKind::WakeDetected(w)) = ev.event
                    && tx.send(w).await.is_err()
                {
                    return;
                }
            }
            Follow::Lost(why) => tracing::debug!(reason = %why, "kwd events lost"),
            Follow::Unavailable(why) => tracing::trace!(error = %why, "no kwd events yet"),
        }
    }
}
