//! One dialog: from the wake word, through its turns (listen, reply, or a fault's prompt),
//! to its end.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use tokio::sync::{broadcast, mpsc};
use voicehost_proto::kwd::v1::WakeDetected;
use voicehost_proto::logger::v1::Role;
use voicehost_proto::tts::v1::{SpeakRequest, Wait};

use crate::config::DialogConfig;
use crate::host::Host;
use crate::skills::{Timers, time};

use super::echo::LastReply;
use super::faults::Fault;
use super::listen::Heard;
use super::relay::{Answer, Replied, wait_played};
use super::skill::log_skill;
use super::timing::{log_turn, ms};
use super::transcript::Entry;
use super::watch::{Playback, switch_kwd};
use super::{DIALOG, MAX_FAULTS_IN_A_ROW, Metrics};

/// The dialog loop: one dialog at a time, each from its wake word to its end.
pub(super) struct Dialogs {
    pub(super) cfg: DialogConfig,
    pub(super) host: Arc<Host>,
    pub(super) playback: broadcast::Sender<Playback>,
    pub(super) metrics: Arc<Metrics>,
    /// The timers the skills set; the dialog manager's alarm rings them.
    pub(super) timers: Arc<Timers>,
    /// The transcript writer's queue.
    pub(super) transcript: mpsc::UnboundedSender<Entry>,
}

impl Dialogs {
    /// Runs one dialog per wake word, until kwd's wake events end.
    pub(super) async fn run(self, mut wakes: mpsc::Receiver<WakeDetected>) {
        while let Some(wake) = wakes.recv().await {
            Metrics::bump(&self.metrics.detections);
            self.host.dialog_active.store(true, Ordering::SeqCst);
            self.dialog(&wake).await;
            self.host.dialog_active.store(false, Ordering::SeqCst);
            // A timer's alarm that waited for the dialog rings now.
            self.timers.touch();
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
        let (ack, (), dialog) = tokio::join!(
            ack,
            switch_kwd(&self.host, false, DIALOG),
            self.new_dialog()
        );
        let Some(dialog) = dialog else {
            switch_kwd(&self.host, true, DIALOG).await;
            return;
        };
        let id = dialog.dialog_id;
        Metrics::bump(&self.metrics.dialogs);
        // The date and time the model is told, the same for the whole dialog (up to
        // FACTS_MAX_AGE): a new minute in its system prompt would make the llm read the
        // conversation so far again at the next turn (0.5-0.85 s on two cores for a dialog a
        // few turns long). Questions about the time and date themselves go to the time
        // skill, which reads the clock.
        let mut facts = Facts::new(chrono::Local::now().naive_local(), Instant::now());
        self.prefill(&id, &facts.text);
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
                        wake_to_ack_ms = started.map(|s| ms(wake.ts_unix_us, s)),
                        "Acknowledgement played"
                    );
                }
                Err(why) => {
                    tracing::warn!(event = "ack_failed", dialog = %id, error = %why, "The acknowledgement did not play")
                }
            }
        }

        let mut turn = 0u32;
        // The model's turns: the dialog's turns less those a skill answered.
        let mut model_turn = 0u32;
        let mut faults_in_a_row = 0u32;
        let mut results = self.listen(&id).await;
        // The user already talks (they interrupted the reply): wait for their words.
        let mut speaking = false;
        // What the assistant said last: its echo is not the user's turn.
        let mut last_reply: Option<LastReply> = None;
        let reason = loop {
            let heard = match &mut results {
                Ok(stream) => {
                    let speaking = std::mem::take(&mut speaking);
                    self.hear(stream, &id, window_start, speaking, last_reply.as_ref())
                        .await
                }
                Err(why) => Err(Fault::Stt(why.clone())),
            };
            let said = match heard {
                Ok(Heard::Said(r)) => r,
                Ok(Heard::Silence) => break "silence",
                Ok(Heard::TimerDone) => break "timer",
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
            // The skills first, as soon as the text is there (`text_to_match_us`).
            let skill = self.ask_skills(&said.text);
            faults_in_a_row = 0;
            turn += 1;
            Metrics::bump(&self.metrics.turns);
            if !self.cfg.barge_in {
                // Not listening while the reply plays: the assistant must not hear itself.
                self.stop_listening(&id).await;
            }
            self.write_line(&id, Role::User, &said.text);
            tracing::info!(
                event = "user_said",
                dialog = %id,
                turn,
                text = %said.text,
                speech_end_to_text_ms = ms(said.speech_end_unix_us, said.ts_unix_us),
                "User turn"
            );
            // With barge-in, stt listens on while the reply plays (the echo guard keeps the
            // assistant's own voice out) and speech stops the reply.
            let watch = match &mut results {
                Ok(stream) if self.cfg.barge_in => Some(stream),
                _ => None,
            };
            let mut listening = watch.is_some();
            let answer = match &skill {
                Some(skill) => Answer::Skill(skill),
                None => {
                    model_turn += 1;
                    Answer::Model {
                        text: &said.text,
                        turn: model_turn,
                        facts: facts.for_turn(chrono::Local::now().naive_local(), Instant::now()),
                    }
                }
            };
            let (replied, reply_text) = self.reply(&id, turn, answer, watch).await;
            last_reply = Some(LastReply::ended_now(reply_text));
            if let Some(skill) = &skill {
                let timing = match &replied {
                    Ok(Replied::Played { timing, .. }) => Some(timing),
                    _ => None,
                };
                log_skill(&id, turn, &said, skill, timing);
            }
            match replied {
                Ok(Replied::Played {
                    timing,
                    listening: still,
                }) => {
                    if skill.is_none() {
                        log_turn(&id, turn, &said, &timing);
                    }
                    listening &= still;
                }
                Ok(Replied::Interrupted) => speaking = true,
                Err(fault) => {
                    // The prompt is spoken without stt listening.
                    listening = false;
                    self.fault(&id, turn, fault).await;
                }
            }
            if !speaking && skill.is_some_and(|s| s.matched.reply.ends_dialog) {
                break "stop";
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
        self.transcript_written().await;
        tracing::info!(
            event = "dialog_ended",
            dialog = %id,
            turns = turn,
            reason,
            ms = began.elapsed().as_millis() as u64,
            "Dialog ended"
        );
    }
}

/// How long a dialog tells the model the date and time it began with; the first model turn
/// after that tells it the time again (and the llm reads the conversation again, once).
const FACTS_MAX_AGE: Duration = Duration::from_secs(5 * 60);

/// The date and time a dialog tells the model (`CompleteRequest.context`): those of its
/// start, then those of its first model turn past [`FACTS_MAX_AGE`], and so on.
#[derive(Debug)]
struct Facts {
    text: String,
    told: Instant,
}

impl Facts {
    /// The facts at local time `local`, monotonic time `now`.
    fn new(local: NaiveDateTime, now: Instant) -> Facts {
        Facts {
            text: time::facts(local),
            told: now,
        }
    }

    /// The facts for a model turn at `local` / `now`.
    fn for_turn(&mut self, local: NaiveDateTime, now: Instant) -> &str {
        if now.saturating_duration_since(self.told) >= FACTS_MAX_AGE {
            *self = Facts::new(local, now);
        }
        &self.text
    }
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
    fn a_dialog_tells_the_time_it_began_until_five_minutes_have_passed() {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let local = |h, m| day.and_hms_opt(h, m, 0).unwrap();
        let start = Instant::now();
        let mut facts = Facts::new(local(12, 9), start);
        let began = facts.text.clone();
        assert!(began.contains("12:09"), "{began}");
        // A new minute, the same facts: the llm keeps the conversation in its cache.
        let later = facts.for_turn(local(12, 13), start + Duration::from_secs(4 * 60 + 59));
        assert_eq!(later, began);
        // Five minutes on, the time again; then that one.
        let told = facts
            .for_turn(local(12, 14), start + FACTS_MAX_AGE)
            .to_owned();
        assert!(told.contains("12:14"), "{told}");
        let next = facts.for_turn(
            local(12, 15),
            start + FACTS_MAX_AGE + Duration::from_secs(60),
        );
        assert_eq!(next, told);
    }

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
