//! Listening: stt `Start` and `Results` for a dialog, `Stop`, and the user's words in a
//! listening window.

use std::time::{Duration, Instant};

use tokio_stream::StreamExt;
use tonic::Streaming;
use voicehost_proto::common::v1::DialogRef;
use voicehost_proto::stt::v1::{StartRequest, StopRequest, SttResult};

use crate::skills::is_stop;

use super::echo::LastReply;
use super::faults::{Fault, why};
use super::session::Dialogs;
use super::{RECOVERY, SPEAKING_TAIL, UTTERANCE_LIMIT};

/// What the user did in a listening window.
#[derive(Debug)]
pub(super) enum Heard {
    Said(SttResult),
    Silence,
    /// A timer ended before the user spoke: the window closes so that its alarm rings.
    TimerDone,
}

impl Dialogs {
    /// stt `Start(dialog)` and its `Results` stream; waits for a restarting stt. Starts
    /// after the echo of what was just played has died away.
    pub(super) async fn listen(&self, dialog: &str) -> Result<Streaming<SttResult>, String> {
        tokio::time::sleep(SPEAKING_TAIL).await;
        let deadline = Instant::now() + RECOVERY;
        let mut last = String::from("stt is not enabled");
        while Instant::now() < deadline {
            let Some(mut stt) = self.stt() else { break };
            let start = stt
                .start(StartRequest {
                    dialog_id: dialog.to_owned(),
                    barge_in_min_ms: if self.cfg.barge_in {
                        self.cfg.barge_in_min_ms
                    } else {
                        0
                    },
                })
                .await;
            match start {
                Ok(_) => {}
                // Still listening for this dialog (a previous Stop was lost): fine.
                Err(s) if s.message().contains(&format!("{dialog:?}")) => {}
                Err(s) => {
                    last = s.message().to_owned();
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
            }
            match stt
                .results(DialogRef {
                    dialog_id: dialog.to_owned(),
                })
                .await
            {
                Ok(stream) => return Ok(stream.into_inner()),
                Err(s) => last = s.message().to_owned(),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err(format!("stt cannot listen: {last}"))
    }

    pub(super) async fn stop_listening(&self, dialog: &str) {
        if let Some(mut stt) = self.stt()
            && let Err(s) = stt
                .stop(StopRequest {
                    dialog_id: dialog.to_owned(),
                })
                .await
        {
            tracing::debug!(error = %s.message(), "stt Stop");
        }
    }

    /// When a timer's alarm wants the dialog to end: a timer that ended and has not rung
    /// yet (now), or the next running timer's end. A ringing alarm that woke this dialog
    /// does not count (the user is about to say "stop").
    fn alarm_due(&self) -> Option<tokio::time::Instant> {
        if self.timers.ringing().iter().any(|r| r.rings == 0) {
            return Some(tokio::time::Instant::now());
        }
        self.timers.next_end().map(tokio::time::Instant::from_std)
    }

    /// Waits for the user: speech must start within `followup` of `window_start` (or has
    /// started already: `speaking`). A timer that ends first closes the window, unless the
    /// user is speaking. A final that is the echo of `last_reply` is not the user's.
    pub(super) async fn hear(
        &self,
        results: &mut Streaming<SttResult>,
        dialog: &str,
        window_start: Instant,
        mut speaking: bool,
        last_reply: Option<&LastReply>,
    ) -> Result<Heard, Fault> {
        let mut deadline = if speaking {
            tokio::time::Instant::now() + UTTERANCE_LIMIT
        } else {
            tokio::time::Instant::from_std(window_start + self.cfg.followup)
        };
        loop {
            let until = match self.alarm_due() {
                Some(due) if !speaking && due < deadline => due,
                _ => deadline,
            };
            let next = match tokio::time::timeout_at(until, results.next()).await {
                Ok(next) => next,
                Err(_) if until < deadline => return Ok(Heard::TimerDone),
                Err(_) if speaking => {
                    return Err(Fault::Stt(format!(
                        "no final text within {} s of the start of speech",
                        UTTERANCE_LIMIT.as_secs()
                    )));
                }
                Err(_) => return Ok(Heard::Silence),
            };
            match next {
                Some(Ok(r)) if r.speech_started => {
                    tracing::info!(event = "user_speaking", dialog, "Speech started");
                    speaking = true;
                    deadline = tokio::time::Instant::now() + UTTERANCE_LIMIT;
                }
                Some(Ok(r))
                    if r.is_final
                        && !r.text.trim().is_empty()
                        && !last_reply.is_some_and(|l| l.echoed_by(&r) && !is_stop(&r.text)) =>
                {
                    return Ok(Heard::Said(r));
                }
                Some(Ok(r)) if r.is_final => {
                    if !r.text.trim().is_empty() {
                        tracing::info!(event = "echo_ignored", dialog, text = %r.text, "A piece of the reply just spoken came back: not answered");
                    }
                    // Speech that held no words, or the reply's echo: keep the rest of the
                    // window.
                    speaking = false;
                    deadline = tokio::time::Instant::from_std(window_start + self.cfg.followup)
                        .max(tokio::time::Instant::now() + Duration::from_millis(500));
                }
                Some(Ok(_)) => {}
                Some(Err(s)) => return Err(Fault::Stt(why("stt Results", &s))),
                None => {
                    return Err(Fault::Stt(
                        "stt's result stream ended (stt stopped or restarting)".to_owned(),
                    ));
                }
            }
        }
    }
}
