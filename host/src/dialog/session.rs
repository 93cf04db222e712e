//! One dialog: from the wake word through its turns to the end, with fault prompts.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, mpsc};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;
use voicehost_plugin_runtime::now_us;
use voicehost_proto::common::v1::{DialogRef, TextChunk};
use voicehost_proto::kwd::v1::WakeDetected;
use voicehost_proto::llm::v1::CompleteRequest;
use voicehost_proto::llm::v1::llm_service_client::LlmServiceClient;
use voicehost_proto::logger::v1::logger_service_client::LoggerServiceClient;
use voicehost_proto::logger::v1::{NewDialogRequest, Role, WriteDialogRequest};
use voicehost_proto::stt::v1::stt_service_client::SttServiceClient;
use voicehost_proto::stt::v1::{StartRequest, StopRequest, SttResult};
use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;
use voicehost_proto::tts::v1::{PlaybackEvent, PlaybackEventKind, SpeakRequest, Wait};

use crate::config::DialogConfig;
use crate::host::Host;
use crate::service::Service;

use super::watch::{Playback, switch_kwd};
use super::{
    DIALOG, MAX_FAULTS_IN_A_ROW, Metrics, RECOVERY, REPLY_LIMIT, SPEAKING_TAIL, UTTERANCE_LIMIT,
};

/// Why a turn did not end with a played reply.
#[derive(Debug)]
enum Fault {
    Stt(String),
    Llm(String),
    Tts(String),
}

/// What the user did in a listening window.
#[derive(Debug)]
enum Heard {
    Said(SttResult),
    Silence,
}

/// How a reply ended.
#[derive(Debug)]
enum Replied {
    /// Played to its end; `listening`: stt's results stream (barge-in) is still good.
    Played {
        timing: ReplyTiming,
        listening: bool,
    },
    /// The user spoke over it (barge-in): the reply was stopped, the speech is the next turn.
    Interrupted,
}

/// When one reply was produced and played.
#[derive(Debug, Default)]
struct ReplyTiming {
    request_us: i64,
    first_token_us: Option<i64>,
    first_chunk_us: Option<i64>,
    first_audio_us: Option<i64>,
    finished_us: i64,
    chars: usize,
}

pub(super) struct Dialogs {
    pub(super) cfg: DialogConfig,
    pub(super) host: Arc<Host>,
    pub(super) playback: broadcast::Sender<Playback>,
    pub(super) metrics: Arc<Metrics>,
}

impl Dialogs {
    fn tts(&self) -> Option<TtsServiceClient<Channel>> {
        self.host
            .channel(Service::Tts)
            .ok()
            .map(TtsServiceClient::new)
    }

    fn stt(&self) -> Option<SttServiceClient<Channel>> {
        self.host
            .channel(Service::Stt)
            .ok()
            .map(SttServiceClient::new)
    }

    pub(super) async fn run(self, mut wakes: mpsc::Receiver<WakeDetected>) {
        while let Some(wake) = wakes.recv().await {
            Metrics::bump(&self.metrics.detections);
            self.host.dialog_active.store(true, Ordering::SeqCst);
            self.dialog(&wake).await;
            self.host.dialog_active.store(false, Ordering::SeqCst);
            // Wake events that queued up meanwhile are stale.
            while let Ok(stale) = wakes.try_recv() {
                tracing::info!(event = "wake_ignored", model = %stale.model, "Wake during a dialog ignored");
            }
        }
    }

    /// One dialog, from its wake word to its end.
    async fn dialog(&self, wake: &WakeDetected) {
        let began = Instant::now();
        let phrase = pick(&self.cfg.yes_phrases, wake.ts_unix_us).to_owned();
        let mut events = self.playback.subscribe();
        // The acknowledgement first (it is cached), then kwd off and the transcript.
        let ack = async {
            let mut tts = self.tts()?;
            tts.speak(SpeakRequest {
                text: phrase.clone(),
                dialog_id: String::new(),
                voice: String::new(),
                wait: Wait::Queued as i32,
            })
            .await
            .map_err(|s| tracing::warn!(event = "ack_failed", error = %s.message(), "The acknowledgement could not be spoken"))
            .ok()
            .map(|r| r.into_inner().utterance_id)
        };
        let new_dialog = async {
            let mut logger = LoggerServiceClient::new(self.host.channel(Service::Logger).ok()?);
            logger
                .new_dialog(NewDialogRequest {})
                .await
                .map_err(|s| tracing::error!(event = "dialog_log_failed", error = %s.message(), "NewDialog failed"))
                .ok()
                .map(|r| r.into_inner())
        };
        let (ack, (), dialog) =
            tokio::join!(ack, switch_kwd(&self.host, false, DIALOG), new_dialog);
        let Some(dialog) = dialog else {
            switch_kwd(&self.host, true, DIALOG).await;
            return;
        };
        let id = dialog.dialog_id;
        Metrics::bump(&self.metrics.dialogs);
        tracing::info!(
            event = "dialog_started",
            dialog = %id,
            model = %wake.model,
            confidence = wake.confidence,
            ack = %phrase,
            transcript = %dialog.path,
            "Dialog started"
        );
        let mut window_start = Instant::now();
        if let Some(utterance) = ack {
            match wait_played(&mut events, utterance, |_| true, Duration::from_secs(10)).await {
                Ok((started, _)) => {
                    window_start = Instant::now();
                    tracing::info!(
                        event = "ack_played",
                        dialog = %id,
                        wake_to_ack_ms = started.map(|s| (s - wake.ts_unix_us) as f64 / 1000.0),
                        "Acknowledgement played"
                    );
                }
                Err(why) => {
                    tracing::warn!(event = "ack_failed", dialog = %id, error = %why, "The acknowledgement did not play")
                }
            }
        }

        let mut turn = 0u32;
        let mut faults_in_a_row = 0u32;
        let mut results = self.listen(&id).await;
        // The user already talks (they interrupted the reply): wait for their words.
        let mut speaking = false;
        let reason = loop {
            let heard = match &mut results {
                Ok(stream) => {
                    self.hear(stream, &id, window_start, std::mem::take(&mut speaking))
                        .await
                }
                Err(why) => Err(Fault::Stt(why.clone())),
            };
            let said = match heard {
                Ok(Heard::Said(r)) => r,
                Ok(Heard::Silence) => break "silence",
                Err(fault) => {
                    faults_in_a_row += 1;
                    self.fault(&id, turn, fault).await;
                    if faults_in_a_row >= MAX_FAULTS_IN_A_ROW {
                        // A service that stays broken must not hold the dialog forever.
                        break "errors";
                    }
                    results = self.listen(&id).await;
                    window_start = Instant::now();
                    continue;
                }
            };
            faults_in_a_row = 0;
            turn += 1;
            Metrics::bump(&self.metrics.turns);
            if !self.cfg.barge_in {
                // Not listening while the reply plays: the assistant must not hear itself.
                self.stop_listening(&id).await;
            }
            self.write_line(&id, Role::User, &said.text).await;
            tracing::info!(
                event = "user_said",
                dialog = %id,
                turn,
                text = %said.text,
                speech_end_to_text_ms = (said.ts_unix_us - said.speech_end_unix_us) as f64 / 1000.0,
                "User turn"
            );
            // With barge-in, stt listens on while the reply plays (the echo guard keeps the
            // assistant's own voice out) and speech stops the reply.
            let watch = match &mut results {
                Ok(stream) if self.cfg.barge_in => Some(stream),
                _ => None,
            };
            let mut listening = watch.is_some();
            match self.reply(&id, turn, &said.text, watch).await {
                Ok(Replied::Played {
                    timing,
                    listening: still,
                }) => {
                    log_turn(&id, turn, &said, &timing);
                    listening &= still;
                }
                Ok(Replied::Interrupted) => speaking = true,
                Err(fault) => {
                    // The prompt is spoken without stt listening.
                    listening = false;
                    self.fault(&id, turn, fault).await;
                }
            }
            if !listening {
                results = self.listen(&id).await;
            }
            window_start = Instant::now();
            if self.host.is_shutting_down() {
                break "shutdown";
            }
        };
        self.stop_listening(&id).await;
        switch_kwd(&self.host, true, DIALOG).await;
        tracing::info!(
            event = "dialog_ended",
            dialog = %id,
            turns = turn,
            reason,
            ms = began.elapsed().as_millis() as u64,
            "Dialog ended"
        );
    }

    /// stt `Start(dialog)` and its `Results` stream; waits for a restarting stt. Starts
    /// after the echo of what was just played has died away.
    async fn listen(&self, dialog: &str) -> Result<Streaming<SttResult>, String> {
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

    async fn stop_listening(&self, dialog: &str) {
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

    /// Waits for the user: speech must start within `followup` of `window_start` (or has
    /// started already: `speaking`).
    async fn hear(
        &self,
        results: &mut Streaming<SttResult>,
        dialog: &str,
        window_start: Instant,
        mut speaking: bool,
    ) -> Result<Heard, Fault> {
        let mut deadline = if speaking {
            tokio::time::Instant::now() + UTTERANCE_LIMIT
        } else {
            tokio::time::Instant::from_std(window_start + self.cfg.followup)
        };
        loop {
            let next = match tokio::time::timeout_at(deadline, results.next()).await {
                Ok(next) => next,
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
                Some(Ok(r)) if r.is_final && !r.text.trim().is_empty() => {
                    return Ok(Heard::Said(r));
                }
                Some(Ok(r)) if r.is_final => {
                    // Speech that held no words: keep the rest of the window.
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

    /// Writes one transcript line (`USER: …` or `ASSISTANT: …`) through the logger.
    async fn write_line(&self, dialog: &str, role: Role, text: &str) {
        let Ok(channel) = self.host.channel(Service::Logger) else {
            return;
        };
        let mut logger = LoggerServiceClient::new(channel);
        let write = logger.write_dialog(WriteDialogRequest {
            dialog_id: dialog.to_owned(),
            role: role as i32,
            text: text.trim().to_owned(),
        });
        let failed = match tokio::time::timeout(Duration::from_secs(2), write).await {
            Ok(Ok(_)) => return,
            Ok(Err(s)) => s.message().to_owned(),
            Err(_) => "no answer within 2 s".to_owned(),
        };
        tracing::error!(event = "dialog_log_failed", dialog, role = role.as_str_name(), error = %failed, "Transcript line not written");
    }

    /// The assistant's line: what was relayed to tts, marked when a barge-in cut it.
    async fn write_reply(&self, dialog: &str, said: &Mutex<String>, interrupted: bool) {
        let text = said.lock().map(|s| s.trim().to_owned()).unwrap_or_default();
        if text.is_empty() {
            return;
        }
        let line = if interrupted {
            format!("{text} [interrupted]")
        } else {
            text
        };
        self.write_line(dialog, Role::Assistant, &line).await;
    }

    /// The reply to `text`, played; with `watch` (barge-in), stopped as soon as stt reports
    /// the user speaking.
    async fn reply(
        &self,
        dialog: &str,
        turn: u32,
        text: &str,
        watch: Option<&mut Streaming<SttResult>>,
    ) -> Result<Replied, Fault> {
        let mut events = self.playback.subscribe();
        // What was relayed so far: the transcript's ASSISTANT line, whatever happens.
        let said = Mutex::new(String::new());
        let play = self.play_reply(dialog, turn, text, &said);
        let played = |timing, listening| Replied::Played { timing, listening };
        let Some(results) = watch else {
            let done = play.await;
            self.write_reply(dialog, &said, false).await;
            return done.map(|t| played(t, false));
        };
        tokio::pin!(play);
        let mut watching = true;
        loop {
            tokio::select! {
                done = &mut play => {
                    self.write_reply(dialog, &said, false).await;
                    return done.map(|t| played(t, watching));
                }
                next = results.next(), if watching => match next {
                    Some(Ok(r)) if r.speech_started => {
                        self.barge_in(dialog, turn, &r, &mut events).await;
                        // Returning drops `play`: the llm stream (llm stops generating,
                        // keeping the part said in its history) and the tts stream.
                        self.write_reply(dialog, &said, true).await;
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
        let ms = |from: i64, to: Option<i64>| to.map(|to| (to - from) as f64 / 1000.0);
        let onset = speech.speech_start_unix_us;
        tracing::info!(
            event = "barge_in",
            dialog,
            turn,
            during_playback = speech.barge_in,
            speech_db = speech.speech_db,
            residual_echo_db = speech.residual_echo_db,
            onset_to_report_ms = ms(onset, Some(speech.ts_unix_us)),
            onset_to_quiet_ms = ms(onset, quiet),
            reply_played_ms = started.and_then(|s| ms(s, quiet)),
            dropped,
            "The user spoke over the reply; it was stopped"
        );
        Metrics::bump(&self.metrics.barge_ins);
    }

    /// llm `Complete` piped chunk by chunk into tts `SpeakStream`, each chunk's text also
    /// added to `said`; returns once played.
    async fn play_reply(
        &self,
        dialog: &str,
        turn: u32,
        text: &str,
        said: &Mutex<String>,
    ) -> Result<ReplyTiming, Fault> {
        let mut t = ReplyTiming {
            request_us: now_us(),
            ..ReplyTiming::default()
        };
        let mut events = self.playback.subscribe();
        let Ok(channel) = self.host.channel(Service::Llm) else {
            return Err(Fault::Llm("llm is not enabled".to_owned()));
        };
        let mut chunks = LlmServiceClient::new(channel)
            .complete(CompleteRequest {
                text: text.to_owned(),
                dialog_id: dialog.to_owned(),
                turn,
                max_tokens: 0,
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

    /// Logs a fault, counts it and speaks its prompt (after tts is back, if needed).
    async fn fault(&self, dialog: &str, turn: u32, fault: Fault) {
        let (kind, why, prompt) = match &fault {
            Fault::Stt(w) => {
                Metrics::bump(&self.metrics.stt_errors);
                (Service::Stt, w, &self.cfg.stt_error_prompt)
            }
            Fault::Llm(w) => {
                Metrics::bump(&self.metrics.llm_errors);
                (Service::Llm, w, &self.cfg.llm_error_prompt)
            }
            Fault::Tts(w) => {
                Metrics::bump(&self.metrics.tts_errors);
                (Service::Tts, w, &self.cfg.tts_error_prompt)
            }
        };
        tracing::error!(event = "dialog_error", dialog, turn, service = kind.name(), error = %why, prompt = %prompt, "Dialog fault; speaking the prompt");
        self.stop_listening(dialog).await;
        let started = Instant::now();
        let deadline = started + RECOVERY;
        let mut last = String::new();
        while Instant::now() < deadline {
            let Some(mut tts) = self.tts() else { return };
            let call = tts.speak(SpeakRequest {
                text: prompt.clone(),
                dialog_id: dialog.to_owned(),
                voice: String::new(),
                wait: Wait::Finished as i32,
            });
            match tokio::time::timeout(Duration::from_secs(20), call).await {
                Ok(Ok(_)) => {
                    tracing::info!(
                        event = "prompt_played",
                        dialog,
                        service = kind.name(),
                        prompt = %prompt,
                        recovered_after_ms = started.elapsed().as_millis() as u64,
                        "Prompt played; listening again"
                    );
                    return;
                }
                Ok(Err(s)) => last = s.message().to_owned(),
                Err(_) => last = "no answer within 20 s".to_owned(),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        tracing::error!(event = "prompt_failed", dialog, prompt = %prompt, error = %last, "No output works; the prompt was not spoken");
    }
}

/// Waits until `utterance` finished playing; returns when it (or, for streamed replies,
/// the first of the dialog's utterances matched by `first`) started, and when it ended.
async fn wait_played(
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

fn log_turn(dialog: &str, turn: u32, said: &SttResult, t: &ReplyTiming) {
    let ms = |from: i64, to: Option<i64>| to.map(|to| (to - from) as f64 / 1000.0);
    tracing::info!(
        event = "turn_timing",
        dialog,
        turn,
        speech_end_to_text_ms = (said.ts_unix_us - said.speech_end_unix_us) as f64 / 1000.0,
        request_to_first_token_ms = ms(t.request_us, t.first_token_us),
        first_chunk_to_first_audio_ms = t.first_chunk_us.and_then(|c| ms(c, t.first_audio_us)),
        speech_end_to_first_audio_ms = ms(said.speech_end_unix_us, t.first_audio_us),
        reply_chars = t.chars,
        reply_play_ms = t
            .first_audio_us
            .map(|s| (t.finished_us - s) as f64 / 1000.0),
        "Turn timings"
    );
}

/// `call` failed: its status code and message.
fn why(call: &str, s: &tonic::Status) -> String {
    format!("{call} failed ({:?}): {}", s.code(), s.message())
}

/// One of `phrases`, varied by `seed`.
fn pick(phrases: &[String], seed: i64) -> &str {
    if phrases.is_empty() {
        return "Yes?";
    }
    let i = (seed.unsigned_abs() / 1000) as usize % phrases.len();
    &phrases[i]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_covers_every_phrase() {
        let phrases: Vec<String> = ["a", "b", "c"].iter().map(|s| (*s).to_owned()).collect();
        let mut seen: Vec<&str> = (0..30).map(|i| pick(&phrases, i * 1000)).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, ["a", "b", "c"]);
        assert_eq!(pick(&[], 5), "Yes?");
    }
}
