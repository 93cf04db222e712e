//! Watchers: tts's playback events (and kwd off while anything plays) and kwd's wake events.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt;
use voicehost_proto::common::v1::DialogRef;
use voicehost_proto::kwd::v1::kwd_event::Event as KwdEventKind;
use voicehost_proto::kwd::v1::kwd_service_client::KwdServiceClient;
use voicehost_proto::kwd::v1::{DisableRequest, EnableRequest, EventsRequest, WakeDetected};
use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;
use voicehost_proto::tts::v1::{PlaybackEvent, PlaybackEventKind};

use crate::host::Host;

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
    loop {
        if let Ok(channel) = host.channel("tts") {
            let mut client = TtsServiceClient::new(channel);
            let call = client.playback_events(DialogRef {
                dialog_id: String::new(),
            });
            match call.await {
                Ok(stream) => {
                    if let Some(w) = watching.take() {
                        let _ = w.send(());
                    }
                    let mut stream = stream.into_inner();
                    let why = loop {
                        match stream.next().await {
                            Some(Ok(ev)) => {
                                let _ = tx.send(Playback::Event(ev));
                            }
                            Some(Err(status)) => break status.message().to_owned(),
                            None => break "the event stream ended".to_owned(),
                        }
                    };
                    tracing::debug!(reason = %why, "tts playback events lost");
                    let _ = tx.send(Playback::Lost(why));
                }
                Err(status) => tracing::trace!(error = %status.message(), "no playback events yet"),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
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
                    kwd_enable(&host, SPEAKING).await;
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
                        kwd_disable(&host, SPEAKING).await;
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

pub(super) async fn kwd_disable(host: &Host, reason: &str) {
    let Ok(channel) = host.channel("kwd") else {
        return;
    };
    match KwdServiceClient::new(channel)
        .disable(DisableRequest {
            reason: reason.to_owned(),
        })
        .await
    {
        Ok(_) => tracing::info!(event = "kwd_disabled", reason, "Wake word off"),
        Err(status) => {
            tracing::warn!(event = "kwd_disable_failed", reason, error = %status.message(), "kwd did not take Disable")
        }
    }
}

pub(super) async fn kwd_enable(host: &Host, reason: &str) {
    let Ok(channel) = host.channel("kwd") else {
        return;
    };
    match KwdServiceClient::new(channel)
        .enable(EnableRequest {
            reason: reason.to_owned(),
        })
        .await
    {
        Ok(_) => tracing::info!(event = "kwd_enabled", reason, "Wake word on"),
        Err(status) => {
            tracing::warn!(event = "kwd_enable_failed", reason, error = %status.message(), "kwd did not take Enable")
        }
    }
}

/// Forwards kwd's wake events; reconnects when kwd comes back (restart, swap) and then
/// disables it again if a dialog is running (a new kwd starts enabled).
pub(super) async fn watch_wakes(host: Arc<Host>, tx: mpsc::Sender<WakeDetected>) {
    loop {
        if let Ok(channel) = host.channel("kwd") {
            match KwdServiceClient::new(channel)
                .events(EventsRequest {})
                .await
            {
                Ok(stream) => {
                    if host.dialog_active.load(Ordering::SeqCst) {
                        kwd_disable(&host, DIALOG).await;
                    }
                    let mut stream = stream.into_inner();
                    while let Some(Ok(ev)) = stream.next().await {
                        if let Some(KwdEventKind::WakeDetected(w)) = ev.event
                            && tx.send(w).await.is_err()
                        {
                            return;
                        }
                    }
                }
                Err(status) => tracing::trace!(error = %status.message(), "no kwd events yet"),
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
