//! The recognition thread: the engine's transcriber runs here, one utterance at a time,
//! never on the capture thread or the gRPC executor. It turns the utterances capture cut
//! into finals, and smart endpointing's partials into a final when they read as complete.

use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::Instant;

use voicehost_plugin_runtime::now_us;
use voicehost_proto::stt::v1::SttResult;

use super::Transcriber;
use super::capture::RATE;
use super::complete::reads_complete;
use super::shared::Shared;
use super::vad::Utterance;

/// An utterance on its way to the transcriber: finished, or (smart endpointing) the audio
/// up to a pause.
pub struct Job {
    pub dialog: String,
    pub utterance: Utterance,
    /// Wall-clock time (µs) of the first captured sample.
    pub epoch_us: i64,
    /// The pause number of a partial; `None` for a finished utterance.
    pub partial: Option<u64>,
}

/// Starts the recognition thread; capture sends it the [`Job`]s.
pub fn spawn<T: Transcriber>(recognizer: T, shared: Arc<Shared>) -> mpsc::Sender<Job> {
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("vh-stt-recognize".to_owned())
        .spawn(move || recognize(recognizer, jobs_rx, shared))
        .map_err(|e| tracing::error!(error = %e, "Cannot start the recognition thread"))
        .ok();
    jobs_tx
}

/// Transcribes the jobs one at a time until capture is gone, and sends the finals.
fn recognize<T: Transcriber>(mut recognizer: T, jobs: mpsc::Receiver<Job>, shared: Arc<Shared>) {
    // The utterance a smart final ended: its own final (if capture sent one) is dropped.
    let mut claimed: Option<u64> = None;
    while let Ok(job) = jobs.recv() {
        let serial = job.utterance.serial;
        match job.partial {
            None if claimed == Some(serial) => continue,
            // Speech came back (or a later pause came) before this partial's turn.
            Some(pause) if !shared.is_pending((serial, pause)) => continue,
            _ => {}
        }
        let at = |samples: u64| job.epoch_us + (samples * 1_000_000 / u64::from(RATE)) as i64;
        let speech_end = at(job.utterance.speech_end);
        let started = Instant::now();
        let transcript = recognizer.transcribe(&job.utterance.samples);
        if let Some(pause) = job.partial {
            let text = match &transcript {
                Ok(Some(t)) => t.text.clone(),
                Ok(None) => String::new(),
                Err(e) => {
                    tracing::debug!(error = %e, "Partial transcription failed");
                    continue;
                }
            };
            let complete = reads_complete(&text);
            tracing::info!(
                event = "stt_partial",
                dialog = %job.dialog,
                text = %text,
                complete,
                recognize_ms = started.elapsed().as_millis() as u64,
                speech_end_to_partial_ms = (now_us() - speech_end) / 1000,
                "Partial transcript at a pause"
            );
            if !complete || !shared.claim((serial, pause)) {
                continue;
            }
            claimed = Some(serial);
        }
        let endpoint = if job.partial.is_some() {
            "smart"
        } else {
            "silence"
        };
        match transcript {
            Ok(Some(t)) => {
                if shared.active_dialog().as_deref() != Some(job.dialog.as_str()) {
                    continue; // the dialog was stopped meanwhile
                }
                let n = shared.utterances.fetch_add(1, Ordering::Relaxed) + 1;
                let now = now_us();
                tracing::info!(
                    event = "stt_final",
                    dialog = %job.dialog,
                    utterance = n,
                    endpoint,
                    audio_ms = job.utterance.samples.len() as u64 * 1000 / u64::from(RATE),
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
                    speech_start_unix_us: at(job.utterance.speech_start),
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
                    speech_start_unix_us: at(job.utterance.speech_start),
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
}
