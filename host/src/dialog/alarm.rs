//! The timers' alarm: a task of the dialog manager's, outside any dialog. When a timer
//! ends it says so through tts ("Your 5 minute timer is done."), then `timer_alarm_phrase`
//! every `timer_alarm_repeat_ms` until a dialog's "stop" (or "cancel the timer") silences
//! it, or `timer_alarm_timeout_ms` have passed.
//!
//! The alarm is played like any other speech, so the self-wake rules hold: kwd is off while
//! it plays (reason `speaking`, see `watch::kwd_off_while_speaking`) and on again in the
//! pauses, where "Alexa" starts a dialog. While a dialog runs the alarm waits: a timer that
//! ends during a dialog closes its listening window (`Heard::TimerDone`: not a reply, not
//! the user's words), so it rings as soon as the dialog has ended; a ringing alarm that
//! the user woke a dialog for rings on after it unless the dialog silenced it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;
use voicehost_proto::tts::v1::{SpeakRequest, Wait};

use crate::host::Host;
use crate::service::Service;
use crate::skills::Timers;
use crate::skills::timer::{alarm_phrase, label};

use super::relay::wait_played;
use super::watch::Playback;

/// How often a waiting alarm looks whether the dialog has ended.
const DIALOG_POLL: Duration = Duration::from_millis(250);
/// Longest a ring may take to be synthesised and played.
const RING_LIMIT: Duration = Duration::from_secs(30);

/// The alarm's settings (`[dialog] timer_alarm_*`).
#[derive(Debug, Clone)]
pub(super) struct Alarm {
    pub(super) phrase: String,
    pub(super) repeat: Duration,
    pub(super) timeout: Duration,
}

/// Rings the timers that end, until the dialog manager stops.
pub(super) async fn ring_timers(
    host: Arc<Host>,
    timers: Arc<Timers>,
    alarm: Alarm,
    playback: broadcast::Sender<Playback>,
) {
    loop {
        let now = Instant::now();
        for t in timers.take_due(now) {
            tracing::info!(event = "timer_done", timer = t.id, length = %label(t.length), "Timer done; the alarm rings");
        }
        for r in timers.expire(now, alarm.timeout) {
            tracing::info!(
                event = "timer_alarm_timeout",
                timer = r.timer.id,
                rings = r.rings,
                "Nobody stopped the alarm; it gave up"
            );
        }
        let ringing = timers.ringing();
        let in_dialog = host.dialog_active.load(Ordering::SeqCst);
        let wait = if ringing.is_empty() {
            timers
                .next_end()
                .map(|end| end.saturating_duration_since(Instant::now()))
        } else if in_dialog || host.is_shutting_down() {
            Some(DIALOG_POLL)
        } else {
            // The first ring names the timers that just ended; later rings are the cached
            // phrase.
            let fresh: Vec<String> = ringing
                .iter()
                .filter(|r| r.rings == 0)
                .map(|r| label(r.timer.length))
                .collect();
            let text = if fresh.is_empty() {
                alarm.phrase.clone()
            } else {
                alarm_phrase(&fresh)
            };
            let ids: Vec<u32> = ringing.iter().map(|r| r.timer.id).collect();
            let ring = ringing.iter().map(|r| r.rings).max().unwrap_or(0) + 1;
            match say(&host, &text, &playback).await {
                Ok(()) => {
                    tracing::info!(event = "timer_alarm", timers = ?ids, ring, text = %text, "Alarm rang");
                }
                Err(why) => {
                    tracing::warn!(event = "timer_alarm_failed", timers = ?ids, error = %why, "The alarm could not be played")
                }
            }
            timers.rang(&ids);
            Some(alarm.repeat)
        };
        match wait {
            Some(wait) => {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = timers.changed() => {}
                }
            }
            None => timers.changed().await,
        }
    }
}

/// Says `text` through tts (not in a dialog) and waits until it has played.
async fn say(
    host: &Host,
    text: &str,
    playback: &broadcast::Sender<Playback>,
) -> Result<(), String> {
    let channel = host.channel(Service::Tts).map_err(|e| e.to_string())?;
    let mut events = playback.subscribe();
    let spoken = TtsServiceClient::new(channel)
        .speak(SpeakRequest {
            text: text.to_owned(),
            dialog_id: String::new(),
            voice: String::new(),
            wait: Wait::Queued as i32,
        })
        .await
        .map_err(|s| format!("tts Speak failed: {}", s.message()))?
        .into_inner();
    wait_played(&mut events, spoken.utterance_id, |_| false, RING_LIMIT)
        .await
        .map(|_| ())
}
