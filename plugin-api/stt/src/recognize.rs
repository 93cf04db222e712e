//! The recognition thread: the engine's transcriber runs here, one utterance at a time,
//! never on the capture thread or the gRPC executor. It turns the utterances capture cut
//! into finals, and the audio up to a pause into a final when its judge finds it complete:
//! its transcript reads complete (`endpoint = smart`), or the turn model hears a finished
//! turn and its transcript reads complete as well (`endpoint = turn_model`; the model and
//! the transcriber read the audio at the same time). The audio up to the start of each
//! silence is read ahead of its pause, so at the pause the transcript is there (or soon)
//! and only the model runs. Audio a caller sent (`Transcribe`) takes its turn between them.

use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::Instant;

use voicehost_plugin_runtime::now_us;
use voicehost_proto::stt::v1::SttResult;

use super::capture::RATE;
use super::complete::{Reading, reading_at};
use super::shared::Shared;
use super::transcribe::{self, Request};
use super::turn::{TurnCheck, TurnModel};
use super::vad::Utterance;
use super::{BoxError, Transcriber, Transcript};

/// What the recognition thread does next, in the order it was sent.
pub enum Work {
    /// An utterance capture cut, or the audio up to a pause.
    Utterance(Job),
    /// The audio up to the start of a silence, read ahead of its pause (smart or
    /// turn-model endpointing): the pause, or the silence wait's end, takes the transcript
    /// when no speech came between.
    ReadAhead(Job),
    /// Audio a caller sent (`Transcribe`).
    Request(Request),
    /// The pause `(serial, pause)` grew to the late check with no speech: a transcript held
    /// there ends the utterance.
    Late((u64, u64)),
}

impl From<Job> for Work {
    fn from(job: Job) -> Work {
        Work::Utterance(job)
    }
}

/// An utterance on its way to the transcriber: finished, or (smart or turn-model
/// endpointing) the audio up to a pause.
pub struct Job {
    pub dialog: String,
    pub utterance: Utterance,
    /// Wall-clock time (µs) of the first captured sample, as the capture clock placed the
    /// samples when the job was made.
    pub epoch_us: i64,
    /// The pause number of a partial; `None` for a finished utterance.
    pub partial: Option<u64>,
}

impl Job {
    /// Wall-clock time (µs) of the captured sample at `samples`.
    fn at(&self, samples: u64) -> i64 {
        self.epoch_us + (samples * 1_000_000 / u64::from(RATE)) as i64
    }

    /// Length of the audio in ms.
    fn audio_ms(&self) -> u64 {
        self.utterance.samples.len() as u64 * 1000 / u64::from(RATE)
    }
}

/// What judges the utterance at a pause (`endpoint = smart` or `turn_model`).
#[derive(Debug)]
pub enum Judge {
    /// The transcript so far, read by [`reading_at`]: complete or likely complete ends
    /// the utterance.
    Text,
    /// The turn model on the audio so far (complete from `threshold`) and, at the same
    /// time, the transcript so far as [`Judge::Text`] reads it: the utterance ends when
    /// both find it complete, and at the late check when the transcript alone reads
    /// complete or it reads likely complete.
    Turn {
        model: Box<dyn TurnModel>,
        threshold: f32,
    },
}

/// The text check at a pause: the transcript so far, read by [`reading_at`].
#[derive(Debug)]
enum TextCheck {
    /// Not run: speech came back before the pause was judged.
    Skipped,
    /// Transcription failed.
    Failed,
    /// The transcript does not read complete.
    Incomplete,
    /// The transcript may be complete ([`Reading::Likely`]): the utterance's final after
    /// a longer pause.
    Likely(Transcript),
    /// The transcript reads complete: the utterance's final.
    Complete(Transcript),
}

impl TextCheck {
    /// How `stt_turn` logs it.
    fn label(&self) -> &'static str {
        match self {
            TextCheck::Skipped => "skipped",
            TextCheck::Failed => "failed",
            // The words stt_partial's `reads` uses for the same readings.
            TextCheck::Incomplete => Reading::Incomplete.label(),
            TextCheck::Likely(_) => Reading::Likely.label(),
            TextCheck::Complete(_) => Reading::Complete.label(),
        }
    }

    /// The final of smart endpointing, which judges only after a longer pause: a
    /// transcript that reads complete or likely so.
    fn into_final(self) -> Option<Transcript> {
        match self {
            TextCheck::Complete(t) | TextCheck::Likely(t) => Some(t),
            _ => None,
        }
    }
}

/// What a judge made of a pause.
#[derive(Debug)]
enum Verdict {
    /// The utterance ends here: its final.
    Final(Transcript),
    /// The transcript reads complete but the turn model heard the turn go on, or it reads
    /// likely complete: it ends the utterance at the late check if the pause lasts that
    /// long.
    Held(Transcript),
    /// The utterance goes on.
    Open,
}

impl From<Option<Transcript>> for Verdict {
    fn from(t: Option<Transcript>) -> Verdict {
        t.map_or(Verdict::Open, Verdict::Final)
    }
}

impl Judge {
    /// The `endpoint` of a final this judge ended at a pause.
    fn endpoint(&self) -> &'static str {
        match self {
            Judge::Text => "smart",
            Judge::Turn { .. } => "turn_model",
        }
    }

    /// Judges `job`, the audio up to pause `pause`: its final when the utterance ends
    /// there. The turn model (~40 ms) runs on a thread of its own while the transcriber
    /// reads the same audio, so the verdict costs the longer of the two, not their sum;
    /// the transcript ends the utterance at the pause only where the model heard a
    /// finished turn.
    fn at_pause<T: Transcriber>(
        &mut self,
        recognizer: &mut T,
        job: &Job,
        pause: (u64, u64),
        shared: &Shared,
        read: &mut Read,
    ) -> Verdict {
        let (model, threshold) = match self {
            Judge::Text => return read_partial(recognizer, job, read).into_final().into(),
            Judge::Turn { model, threshold } => (model, *threshold),
        };
        let audio = &job.utterance.samples;
        let (check, checked_at, text) = std::thread::scope(|scope| {
            let heard = std::thread::Builder::new()
                .name("vh-stt-turn".to_owned())
                .spawn_scoped(scope, || {
                    let check = model.check(audio);
                    (check, now_us())
                });
            // Speech that came back meanwhile ended this pause: nothing to transcribe.
            let text = if shared.is_pending(pause) {
                read_partial(recognizer, job, read)
            } else {
                TextCheck::Skipped
            };
            let (check, at) = match heard {
                Ok(thread) => thread
                    .join()
                    .unwrap_or_else(|_| (Err("the turn model panicked".to_owned()), now_us())),
                Err(e) => (Err(format!("cannot start its thread: {e}")), now_us()),
            };
            (check, at, text)
        });
        let check = match check {
            Ok(check) => check,
            Err(e) => {
                tracing::warn!(event = "stt_turn_failed", error = %e, "Turn model failed");
                return Verdict::Open;
            }
        };
        let model_complete = check.probability >= threshold;
        log_turn(job, &check, model_complete, &text, checked_at);
        match (model_complete, text) {
            (true, TextCheck::Complete(t)) => Verdict::Final(t),
            (_, TextCheck::Complete(t) | TextCheck::Likely(t)) => Verdict::Held(t),
            _ => Verdict::Open,
        }
    }
}

/// The transcript of an utterance's audio up to the end of its speech: `None` until read,
/// `Some(None)` when it held no words.
type Read = Option<Option<Transcript>>;

/// The text check of smart and turn-model endpointing: the transcript of `job` (the audio
/// up to a pause) — `read` when it was read ahead, else transcribed into it —, read with
/// [`reading_at`] (at that pause of the utterance). Logs `stt_partial` (`reads`: how it
/// reads; `complete`: it may end the utterance, as smart endpointing takes it).
fn read_partial<T: Transcriber>(recognizer: &mut T, job: &Job, read: &mut Read) -> TextCheck {
    let started = Instant::now();
    let transcript = match read {
        Some(t) => t.clone(),
        None => match recognizer.transcribe(&job.utterance.speech()) {
            Ok(t) => {
                *read = Some(t.clone());
                t
            }
            Err(e) => {
                tracing::debug!(error = %e, "Partial transcription failed");
                return TextCheck::Failed;
            }
        },
    };
    let text = transcript.as_ref().map_or("", |t| t.text.as_str());
    let reading = reading_at(text, job.utterance.pause);
    tracing::info!(
        event = "stt_partial",
        dialog = %job.dialog,
        text = %text,
        reads = reading.label(),
        complete = reading != Reading::Incomplete,
        recognize_ms = started.elapsed().as_millis() as u64,
        speech_end_to_partial_ms = (now_us() - job.at(job.utterance.speech_end)) / 1000,
        "Partial transcript at a pause"
    );
    match (transcript, reading) {
        (Some(t), Reading::Complete) => TextCheck::Complete(t),
        (Some(t), Reading::Likely) => TextCheck::Likely(t),
        _ => TextCheck::Incomplete,
    }
}

/// Logs one turn-model judgement (`stt_turn`): the model's verdict, whether the text check
/// ran and its verdict, and whether the utterance ends (`complete`: both said so).
fn log_turn(job: &Job, check: &TurnCheck, model_complete: bool, text: &TextCheck, at: i64) {
    let speech_end = job.at(job.utterance.speech_end);
    tracing::info!(
        event = "stt_turn",
        dialog = %job.dialog,
        probability = check.probability,
        model_complete,
        text_checked = !matches!(text, TextCheck::Skipped),
        text_check = text.label(),
        complete = model_complete && matches!(text, TextCheck::Complete(_)),
        features_ms = check.features.as_secs_f64() * 1000.0,
        model_ms = check.model.as_secs_f64() * 1000.0,
        audio_ms = job.audio_ms(),
        speech_end_to_model_ms = (at - speech_end) / 1000,
        speech_end_to_verdict_ms = (now_us() - speech_end) / 1000,
        "Turn model at a pause"
    );
}

/// Starts the recognition thread; capture sends it the [`Job`]s, and `Transcribe` its
/// [`Request`]s through [`Shared::requests`] (until the plugin stops).
pub fn spawn<T: Transcriber>(
    recognizer: T,
    judge: Judge,
    shared: Arc<Shared>,
) -> mpsc::Sender<Work> {
    let (jobs_tx, jobs_rx) = mpsc::channel::<Work>();
    let thread_shared = Arc::clone(&shared);
    let started = std::thread::Builder::new()
        .name("vh-stt-recognize".to_owned())
        .spawn(move || recognize(recognizer, judge, jobs_rx, thread_shared));
    match started {
        Ok(_) => shared.open_requests(jobs_tx.clone()),
        Err(e) => tracing::error!(error = %e, "Cannot start the recognition thread"),
    }
    jobs_tx
}

/// Transcribes the jobs one at a time until capture is gone, and sends the finals.
fn recognize<T: Transcriber>(
    mut recognizer: T,
    mut judge: Judge,
    jobs: mpsc::Receiver<Work>,
    shared: Arc<Shared>,
) {
    // The utterance a pause's final ended: its own final (if capture sent one) is dropped.
    let mut claimed: Option<u64> = None;
    // The pause whose transcript read complete while the model heard the turn go on, or
    // read likely complete.
    let mut held: Option<((u64, u64), Job, Transcript)> = None;
    // The last transcript read at a pause or ahead of one: (utterance, its speech end, the
    // transcript).
    let mut last_read: Option<(u64, u64, Option<Transcript>)> = None;
    while let Ok(work) = jobs.recv() {
        let job = match work {
            Work::Utterance(job) => job,
            Work::ReadAhead(job) => {
                let (serial, end) = (job.utterance.serial, job.utterance.speech_end);
                // Speech came back before its turn: a later silence will be read.
                if shared.is_quiet((serial, end)) {
                    let started = Instant::now();
                    match recognizer.transcribe(&job.utterance.speech()) {
                        Ok(t) => {
                            tracing::debug!(
                                text = t.as_ref().map_or("", |t| t.text.as_str()),
                                recognize_ms = started.elapsed().as_millis() as u64,
                                speech_end_to_read_ms =
                                    (now_us() - job.at(job.utterance.speech_end)) / 1000,
                                "Read ahead of the pause"
                            );
                            last_read = Some((serial, end, t));
                        }
                        Err(e) => tracing::debug!(error = %e, "Reading ahead failed"),
                    }
                }
                continue;
            }
            Work::Request(request) => {
                transcribe::answer(&mut recognizer, request);
                continue;
            }
            Work::Late(pause) => {
                if let Some((at, job, t)) = held.take()
                    && at == pause
                    && shared.claim(pause)
                {
                    claimed = Some(pause.0);
                    send_final::<T>(&shared, job, Ok(Some(t)), "smart", Instant::now());
                }
                continue;
            }
        };
        let serial = job.utterance.serial;
        match job.partial {
            None if claimed == Some(serial) => continue,
            // Speech came back (or a later pause came) before this partial's turn.
            Some(pause) if !shared.is_pending((serial, pause)) => continue,
            _ => {}
        }
        let started = Instant::now();
        let (transcript, endpoint) = match job.partial {
            None => {
                // The silence wait ended an utterance with no speech after the pause that
                // was read last (its verdict came too late, on a busy machine, or said it
                // goes on): that transcript is this audio's, no need to read it again.
                let read = last_read
                    .take()
                    .filter(|(s, end, _)| *s == serial && *end == job.utterance.speech_end);
                let transcript = match read {
                    Some((_, _, t)) => {
                        tracing::debug!(
                            text = t.as_ref().map_or("", |t| t.text.as_str()),
                            "Final: the transcript read at the last pause"
                        );
                        Ok(t)
                    }
                    None => recognizer.transcribe(&job.utterance.speech()),
                };
                (transcript, "silence")
            }
            Some(pause) => {
                // Read ahead of this pause, with no speech since: the same words.
                let end = job.utterance.speech_end;
                let mut read = last_read
                    .take()
                    .filter(|(s, e, _)| *s == serial && *e == end)
                    .map(|(_, _, t)| t);
                let verdict =
                    judge.at_pause(&mut recognizer, &job, (serial, pause), &shared, &mut read);
                last_read = read.map(|t| (serial, end, t));
                let t = match verdict {
                    Verdict::Final(t) => t,
                    Verdict::Held(t) => {
                        held = Some(((serial, pause), job, t));
                        continue;
                    }
                    Verdict::Open => continue,
                };
                if !shared.claim((serial, pause)) {
                    continue;
                }
                claimed = Some(serial);
                (Ok(Some(t)), judge.endpoint())
            }
        };
        send_final::<T>(&shared, job, transcript, endpoint, started);
    }
}

/// Sends `job`'s final (`stt_final`), or that it held no speech, unless its dialog was
/// stopped meanwhile.
fn send_final<T: Transcriber>(
    shared: &Shared,
    job: Job,
    transcript: Result<Option<Transcript>, BoxError>,
    endpoint: &str,
    started: Instant,
) {
    let speech_start = job.at(job.utterance.speech_start);
    let speech_end = job.at(job.utterance.speech_end);
    match transcript {
        Ok(Some(t)) => {
            if shared.active_dialog().as_deref() != Some(job.dialog.as_str()) {
                return; // the dialog was stopped meanwhile
            }
            let n = shared.utterances.fetch_add(1, Ordering::Relaxed) + 1;
            let now = now_us();
            tracing::info!(
                event = "stt_final",
                dialog = %job.dialog,
                utterance = n,
                endpoint,
                audio_ms = job.audio_ms(),
                recognize_ms = started.elapsed().as_millis() as u64,
                speech_end_to_text_ms = (now - speech_end) / 1000,
                text = %t.text,
                "Final transcript"
            );
            let _ = shared.results.send(SttResult {
                dialog_id: job.dialog,
                is_final: true,
                text: t.text,
                utterance: n,
                speech_start_unix_us: speech_start,
                speech_end_unix_us: speech_end,
                ts_unix_us: now,
                no_speech_prob: t.no_speech_prob,
                ..SttResult::default()
            });
        }
        Ok(None) => {
            tracing::info!(event = "stt_no_speech", dialog = %job.dialog, "Utterance held no speech; dropped");
            // Listeners that saw it start learn that it ended without words.
            let _ = shared.results.send(SttResult {
                dialog_id: job.dialog,
                is_final: true,
                speech_start_unix_us: speech_start,
                speech_end_unix_us: speech_end,
                ts_unix_us: now_us(),
                ..SttResult::default()
            });
        }
        Err(e) => {
            tracing::error!(event = "stt_error", engine = T::META.name, error = %e, "Transcription failed");
        }
    }
}

#[cfg(test)]
#[path = "recognize_tests.rs"]
mod tests;
