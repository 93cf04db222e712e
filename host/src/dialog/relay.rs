//! The reply: llm `Complete` relayed chunk by chunk into tts `SpeakStream` (or a skill's
//! answer spoken, `skill.rs`) and played; with barge-in, stopped (tts `StopSpeaking`) as soon
//! as the user speaks over it.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use voicehost_plugin_runtime::now_us;
use voicehost_proto::common::v1::{DialogRef, TextChunk};
use voicehost_proto::llm::v1::CompleteRequest;
use voicehost_proto::stt::v1::SttResult;
use voicehost_proto::tts::v1::{PlaybackEvent, PlaybackEventKind};

use super::faults::{Fault, why};
use super::session::Dialogs;
use super::skill::SkillTurn;
use super::timing::{ReplyTiming, ms_to};
use super::watch::Playback;
use super::{Metrics, REPLY_LIMIT};

/// How a reply ended.
#[derive(Debug)]
pub(super) enum Replied {
    /// Played to its end; `listening`: stt's results stream (barge-in) is still good.
    Played {
        timing: ReplyTiming,
        listening: bool,
    },
    /// The user spoke over it (barge-in): the reply was stopped, the speech is the next turn.
    Interrupted,
}

/// Who answers a turn.
#[derive(Debug, Clone, Copy)]
pub(super) enum Answer<'a> {
    /// The model, asked `text` as turn `turn` of its conversation (skill turns are not
    /// the model's), told `facts` (the dialog's date and time).
    Model {
        text: &'a str,
        turn: u32,
        facts: &'a str,
    },
    /// A built-in skill, which has answered already.
    Skill(&'a SkillTurn),
}

impl Dialogs {
    /// Has the llm read the system prompt with the date and time (`facts`) while the
    /// acknowledgement plays and the user speaks (`prefill_only`), so that the first turn
    /// reads only the question; in the background, and nothing comes of a failure but a
    /// debug line.
    pub(super) fn prefill(&self, dialog: &str, facts: &str) {
        let Some(mut llm) = self.llm() else {
            return;
        };
        let request = CompleteRequest {
            prefill_only: true,
            context: facts.to_owned(),
            ..CompleteRequest::default()
        };
        let dialog = dialog.to_owned();
        tokio::spawn(async move {
            let ended = async {
                let mut stream = llm.complete(request).await?.into_inner();
                while stream.message().await?.is_some() {}
                Ok::<(), tonic::Status>(())
            };
            if let Err(s) = ended.await {
                tracing::debug!(event = "llm_prefill_failed", dialog, error = %s.message(), "The llm did not read the prompt ahead");
            }
        });
    }

    /// The reply, played; with `watch` (barge-in), stopped as soon as stt reports the user
    /// speaking. Returns too what was relayed to tts.
    pub(super) async fn reply(
        &self,
        dialog: &str,
        turn: u32,
        answer: Answer<'_>,
        watch: Option<&mut Streaming<SttResult>>,
    ) -> (Result<Replied, Fault>, String) {
        let said = Mutex::new(String::new());
        let replied = self.relay(dialog, turn, answer, watch, &said).await;
        (replied, said.into_inner().unwrap_or_default())
    }

    async fn relay(
        &self,
        dialog: &str,
        turn: u32,
        answer: Answer<'_>,
        watch: Option<&mut Streaming<SttResult>>,
        said: &Mutex<String>,
    ) -> Result<Replied, Fault> {
        let mut events = self.playback.subscribe();
        // `said`, what was relayed so far: the transcript's ASSISTANT line, whatever happens.
        let play = async {
            match answer {
                Answer::Model { text, turn, facts } => {
                    self.play_reply(dialog, turn, text, facts, said).await
                }
                Answer::Skill(skill) => self.play_skill(dialog, skill, said).await,
            }
        };
        let played = |timing, listening| Replied::Played { timing, listening };
        let Some(results) = watch else {
            let done = play.await;
            self.write_reply(dialog, said, false);
            return done.map(|t| played(t, false));
        };
        tokio::pin!(play);
        let mut watching = true;
        loop {
            tokio::select! {
                done = &mut play => {
                    self.write_reply(dialog, said, false);
                    return done.map(|t| played(t, watching));
                }
                next = results.next(), if watching => match next {
                    Some(Ok(r)) if r.speech_started => {
                        self.barge_in(dialog, turn, &r, &mut events).await;
                        // Returning drops `play`: the llm stream (llm stops generating,
                        // keeping the part said in its history) and the tts stream.
                        self.write_reply(dialog, said, true);
                        return Ok(Replied::Interrupted);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(s)) => {
                        tracing::warn!(event = "barge_in_unavailable", dialog, error = %s.message(), "stt's results failed during the reply; it cannot be interrupted");
                        watching = false;
                    }
                    None => {
                        tracing::warn!(event = "barge_in_unavailable", dialog, "stt's results ended during the reply; it cannot be interrupted");
                        watching = false;
                    }
                },
            }
        }
    }

    /// The user spoke over the reply: stops tts at once and logs how quickly it went quiet.
    async fn barge_in(
        &self,
        dialog: &str,
        turn: u32,
        speech: &SttResult,
        events: &mut broadcast::Receiver<Playback>,
    ) {
        let stop = async {
            let mut tts = self.tts()?;
            tts.stop_speaking(DialogRef {
                dialog_id: dialog.to_owned(),
            })
            .await
            .map_err(|s| tracing::warn!(event = "barge_in_stop_failed", dialog, error = %s.message(), "tts StopSpeaking failed"))
            .ok()
            .map(|r| r.into_inner().dropped)
        };
        let dropped = stop.await.unwrap_or(0);
        // When the reply started playing, and when its output went quiet.
        let (mut started, mut quiet) = (None, None);
        if dropped > 0 {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            while quiet.is_none() {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Ok(Playback::Event(ev))) if ev.dialog_id == dialog => match ev.kind() {
                        PlaybackEventKind::Started if started.is_none() => {
                            started = Some(ev.ts_unix_us);
                        }
                        PlaybackEventKind::Interrupted => quiet = Some(ev.ts_unix_us),
                        _ => {}
                    },
                    Ok(Ok(_) | Err(broadcast::error::RecvError::Lagged(_))) => {}
                    Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => break,
                }
            }
        }
        let onset = speech.speech_start_unix_us;
        tracing::info!(
            event = "barge_in",
            dialog,
            turn,
            during_playback = speech.barge_in,
            speech_db = speech.speech_db,
            residual_echo_db = speech.residual_echo_db,
            onset_to_report_ms = ms_to(onset, Some(speech.ts_unix_us)),
            onset_to_quiet_ms = ms_to(onset, quiet),
            reply_played_ms = started.and_then(|s| ms_to(s, quiet)),
            dropped,
            "The user spoke over the reply; it was stopped"
        );
        Metrics::bump(&self.metrics.barge_ins);
    }

    /// llm `Complete` (told `facts`) piped chunk by chunk into tts `SpeakStream`, each
    /// chunk's text also added to `said`; returns once played.
    async fn play_reply(
        &self,
        dialog: &str,
        turn: u32,
        text: &str,
        facts: &str,
        said: &Mutex<String>,
    ) -> Result<ReplyTiming, Fault> {
        let mut t = ReplyTiming {
            request_us: now_us(),
            ..ReplyTiming::default()
        };
        let mut events = self.playback.subscribe();
        let Some(mut llm) = self.llm() else {
            return Err(Fault::Llm("llm is not enabled".to_owned()));
        };
        let mut chunks = llm
            .complete(CompleteRequest {
                text: text.to_owned(),
                dialog_id: dialog.to_owned(),
                turn,
                max_tokens: 0,
                // The model must not invent the date or the time.
                context: facts.to_owned(),
                prefill_only: false,
            })
            .await
            .map_err(|s| Fault::Llm(why("llm Complete", &s)))?
            .into_inner();
        let mut tts = self
            .tts()
            .ok_or_else(|| Fault::Tts("tts is not enabled".to_owned()))?;
        let (tx, rx) = mpsc::channel::<TextChunk>(256);
        let speaking = tokio::spawn(async move { tts.speak_stream(ReceiverStream::new(rx)).await });
        let mut llm_fault = None;
        loop {
            match chunks.next().await {
                Some(Ok(mut chunk)) => {
                    if !chunk.text.is_empty() && t.first_token_us.is_none() {
                        t.first_token_us = Some(now_us());
                        t.first_chunk_us = t.first_token_us;
                    }
                    t.chars += chunk.text.chars().count();
                    if let Ok(mut said) = said.lock() {
                        said.push_str(&chunk.text);
                    }
                    chunk.dialog_id = dialog.to_owned();
                    let eot = chunk.eot;
                    if tx.send(chunk.into()).await.is_err() {
                        break; // tts's stream ended: its result says why
                    }
                    if eot {
                        break;
                    }
                }
                Some(Err(s)) => {
                    llm_fault = Some(why("llm reply stream", &s));
                    break;
                }
                None => {
                    llm_fault = Some("the reply stream ended without eot".to_owned());
                    break;
                }
            }
        }
        if llm_fault.is_some() {
            // Whatever was said so far is still spoken, then the prompt.
            let _ = tx
                .send(TextChunk {
                    eot: true,
                    dialog_id: dialog.to_owned(),
                    turn,
                    ..TextChunk::default()
                })
                .await;
        }
        drop(tx);
        let spoken = match speaking.await {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(s)) => return Err(Fault::Tts(why("tts SpeakStream", &s))),
            Err(e) => return Err(Fault::Tts(e.to_string())),
        };
        // SpeakStream returns once the reply is queued: wait until it has played.
        if spoken.utterance_id != 0 {
            let (started, finished) = wait_played(
                &mut events,
                spoken.utterance_id,
                |ev| ev.dialog_id == dialog,
                REPLY_LIMIT,
            )
            .await
            .map_err(Fault::Tts)?;
            t.first_audio_us = started;
            t.finished_us = finished;
        }
        match llm_fault {
            Some(why) => Err(Fault::Llm(why)),
            None => Ok(t),
        }
    }
}

/// Waits until `utterance` finished playing; returns when it (or, for streamed replies,
/// the first of the dialog's utterances matched by `first`) started, and when it ended.
pub(super) async fn wait_played(
    events: &mut broadcast::Receiver<Playback>,
    utterance: u64,
    first: impl Fn(&PlaybackEvent) -> bool,
    limit: Duration,
) -> Result<(Option<i64>, i64), String> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut started = None;
    loop {
        let ev = match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => {
                return Err(format!(
                    "utterance {utterance} did not finish within {} s",
                    limit.as_secs()
                ));
            }
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(broadcast::error::RecvError::Closed)) => {
                return Err("the playback watcher stopped".to_owned());
            }
            Ok(Ok(Playback::Lost(why))) => return Err(format!("tts went away: {why}")),
            Ok(Ok(Playback::Event(ev))) => ev,
        };
        match ev.kind() {
            PlaybackEventKind::Started
                if started.is_none() && (ev.utterance_id == utterance || first(&ev)) =>
            {
                started = Some(ev.ts_unix_us);
            }
            PlaybackEventKind::Finished if ev.utterance_id == utterance => {
                return Ok((started, ev.ts_unix_us));
            }
            PlaybackEventKind::Interrupted if ev.utterance_id == utterance => {
                return Err(format!("utterance {utterance} was interrupted"));
            }
            _ => {}
        }
    }
}
