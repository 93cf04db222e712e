//! The capture pipeline: input → 10 ms frames → AEC3 (tts's render reference as far end)
//! → echo-cancelled frame stream (for kwd) → Silero VAD → endpointing → the engine's
//! transcriber → results.
//! Capture runs on its own thread and never waits for a subscriber.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use super::Transcriber;
use tokio::sync::broadcast;
use voicehost_audio::{InputSpec, Pacing, Resampler, Source};
use voicehost_plugin_runtime::stream::{Follow, Resubscribe, dial};
use voicehost_plugin_runtime::{HealthHandle, now_us};
use voicehost_proto::common::v1::AudioFrame;
use voicehost_proto::stt::v1::SttResult;
use voicehost_proto::tts::v1::RenderReferenceRequest;
use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;

use super::aec::EchoCanceller;
use super::complete::reads_complete;
use super::echo::EchoLine;
use super::guard::{EchoGuard, FarEnd, Verdict};
use super::vad::{Endpointer, Event, Silero, Utterance, VadState, WINDOW};

pub const RATE: u32 = 16_000;
/// 10 ms at 16 kHz: the echo canceller's frame.
pub const FRAME: usize = 160;
/// How long (VAD windows: 1.5 s) after the assistant was last heard speech still counts as
/// an interruption (a pause between the clauses of a reply, a synthesis underrun).
const BARGE_IN_HANGOVER: u32 = 47;
/// Render-reference frames kept for the capture thread at most (1 s).
const MAX_RENDER_FRAMES: usize = 100;

/// State shared by the pipeline threads and the RPC handlers.
#[derive(Debug)]
pub struct Shared {
    pub frames: broadcast::Sender<AudioFrame>,
    pub results: broadcast::Sender<SttResult>,
    /// The dialog being listened to.
    pub dialog: Mutex<Option<String>>,
    /// The dialog's barge-in minimum (ms voiced while the assistant speaks); 0: none.
    pub barge_in_ms: AtomicU32,
    /// Render-reference frames (10 ms, 16 kHz) not yet taken by the capture thread, which
    /// takes one per captured frame: the echo canceller sees far end and microphone in step.
    render: Mutex<VecDeque<Vec<f32>>>,
    pub utterances: AtomicU32,
    pub stop: AtomicBool,
    /// An input opened by `SetInput`, taken over by the capture thread.
    pub next_input: Mutex<Option<Box<dyn Source>>>,
    /// How WAV inputs opened by `SetInput` are paced.
    pub pacing: Pacing,
    /// The simulated speaker → microphone path, if configured.
    pub echo: Option<EchoLine>,
    /// Smart endpointing's hand-over between the capture and recognition threads.
    pauses: Mutex<Pauses>,
}

/// The pause whose partial transcript may still end its utterance (utterance serial, pause
/// number), and the utterance a partial did end (so capture drops the rest of it).
#[derive(Debug, Default)]
struct Pauses {
    pending: Option<(u64, u64)>,
    claimed: Option<u64>,
}

impl Shared {
    pub fn new(pacing: Pacing, echo: Option<EchoLine>) -> Shared {
        Shared {
            frames: broadcast::channel(256).0,
            results: broadcast::channel(64).0,
            dialog: Mutex::new(None),
            barge_in_ms: AtomicU32::new(0),
            render: Mutex::new(VecDeque::new()),
            utterances: AtomicU32::new(0),
            stop: AtomicBool::new(false),
            next_input: Mutex::new(None),
            pacing,
            echo,
            pauses: Mutex::new(Pauses::default()),
        }
    }

    /// A render-reference frame arrived.
    fn push_render(&self, frame: Vec<f32>) {
        if let Ok(mut r) = self.render.lock() {
            r.push_back(frame);
            // Capture stalled or far behind: old far end is of no use.
            while r.len() > MAX_RENDER_FRAMES {
                r.pop_front();
            }
        }
    }

    /// The far end that goes with the next captured frame: silence when nothing plays.
    fn pop_render(&self) -> Vec<f32> {
        self.render
            .lock()
            .ok()
            .and_then(|mut r| r.pop_front())
            .unwrap_or_else(|| vec![0.0; FRAME])
    }

    fn set_pending(&self, pause: Option<(u64, u64)>) {
        if let Ok(mut p) = self.pauses.lock() {
            p.pending = pause;
        }
    }

    fn is_pending(&self, pause: (u64, u64)) -> bool {
        self.pauses.lock().is_ok_and(|p| p.pending == Some(pause))
    }

    /// Ends utterance `pause.0` with the partial of `pause`, unless speech came back since.
    fn claim(&self, pause: (u64, u64)) -> bool {
        let Ok(mut p) = self.pauses.lock() else {
            return false;
        };
        if p.pending != Some(pause) {
            return false;
        }
        p.pending = None;
        p.claimed = Some(pause.0);
        true
    }

    fn take_claimed(&self) -> Option<u64> {
        self.pauses.lock().ok().and_then(|mut p| p.claimed.take())
    }

    pub fn active_dialog(&self) -> Option<String> {
        self.dialog.lock().ok().and_then(|d| d.clone())
    }
}

/// The echo guard's verdicts on the current voiced run (the windows that may start an
/// utterance): its mean level and the highest residual echo expected during it.
#[derive(Debug, Default)]
struct RunLevels {
    windows: u32,
    sum_db: f32,
    residual_db: Option<f32>,
}

impl RunLevels {
    fn push(&mut self, v: &Verdict) {
        if !v.voiced {
            *self = RunLevels::default();
            return;
        }
        self.windows += 1;
        self.sum_db += v.speech_db;
        if let Some(r) = v.residual_db {
            self.residual_db = Some(self.residual_db.map_or(r, |m| m.max(r)));
        }
    }

    fn speech_db(&self) -> f32 {
        if self.windows == 0 {
            return -100.0;
        }
        tenths(self.sum_db / self.windows as f32)
    }

    /// -100 when the assistant was silent.
    fn residual_db(&self) -> f32 {
        self.residual_db.map_or(-100.0, tenths)
    }
}

/// A level in dB to one decimal, for the log.
fn tenths(db: f32) -> f32 {
    (db * 10.0).round() / 10.0
}

/// An utterance on its way to the transcriber: finished, or (smart endpointing) the audio
/// up to a pause.
struct Job {
    dialog: String,
    utterance: Utterance,
    /// Wall-clock time (µs) of the first captured sample.
    epoch_us: i64,
    /// The pause number of a partial; `None` for a finished utterance.
    partial: Option<u64>,
}

/// What decides where speech is: the VAD, the echo guard in front of the endpointer, and
/// the endpointer.
#[derive(Debug)]
pub struct Detection {
    pub vad: Silero,
    pub guard: EchoGuard,
    pub endpointer: Endpointer,
}

/// Runs capture until `shared.stop`. Reports a capture failure through `health`.
pub fn capture<T: Transcriber>(
    mut source: Box<dyn Source>,
    aec: Option<Arc<EchoCanceller>>,
    detection: Detection,
    recognizer: T,
    shared: Arc<Shared>,
    health: HealthHandle,
) {
    let Detection {
        mut vad,
        mut guard,
        mut endpointer,
    } = detection;
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
    let rec_shared = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("vh-stt-recognize".to_owned())
        .spawn(move || recognize(recognizer, jobs_rx, rec_shared))
        .map_err(|e| tracing::error!(error = %e, "Cannot start the recognition thread"))
        .ok();

    let epoch_us = now_us();
    let mut pending: Vec<f32> = Vec::new();
    let mut window: Vec<f32> = Vec::new();
    let mut seq = 0u64;
    let mut position = 0u64;
    let mut was_active = false;
    let mut last_stats = Instant::now();
    let mut in_speech = false;
    let mut pauses = 0u64;
    // The guard's verdicts on the voiced run that may start an utterance.
    let mut run = RunLevels::default();
    let mut far = FarEnd::default();
    // The VAD's state when the assistant began speaking (barge-in).
    let mut vad_before_far: Option<VadState> = None;
    // VAD windows since the assistant was last heard (for barge-in).
    let mut since_far = u32::MAX;
    while !shared.stop.load(Ordering::SeqCst) {
        if let Some(next) = shared.next_input.lock().ok().and_then(|mut n| n.take()) {
            tracing::info!(
                event = "input_changed",
                from = %source.describe(),
                to = %next.describe(),
                // Capture time of the new input's first sample.
                at_unix_us = epoch_us + ((position + pending.len() as u64) * 1_000_000 / u64::from(RATE)) as i64,
                "Capture switched input"
            );
            source = next;
        }
        let mut read = Vec::new();
        match source.read(&mut read, 10) {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(event = "input_ended", input = %source.describe(), "Input ended; listening to silence");
                // The file ended: carry on as a silent microphone, in real time.
                match voicehost_audio::open_input(&InputSpec::Null, RATE, shared.pacing) {
                    Ok(silence) => source = silence,
                    Err(e) => {
                        health.set_not_serving(format!("capture failed: {e}"));
                        return;
                    }
                }
                continue;
            }
            Err(e) => {
                tracing::error!(event = "capture_failed", error = %e, "Capture failed");
                health.set_not_serving(format!("capture failed: {e}"));
                return;
            }
        }
        pending.extend(read);
        while pending.len() >= FRAME {
            let mut frame: Vec<f32> = pending.drain(..FRAME).collect();
            if let Some(echo) = &shared.echo {
                echo.mix_into(&mut frame);
            }
            let render = shared.pop_render();
            if let Some(ec) = &aec {
                ec.render(&render);
                ec.capture(&mut frame);
            }
            if far.push(&render) {
                guard.playback_resumed();
            }
            let ts = epoch_us + (position * 1_000_000 / u64::from(RATE)) as i64;
            position += FRAME as u64;
            let _ = shared.frames.send(AudioFrame {
                pcm_s16le: voicehost_audio::to_s16le(&frame),
                sample_rate: RATE,
                channels: 1,
                ts_unix_us: ts,
                seq,
            });
            seq += 1;
            window.extend_from_slice(&frame);
        }
        while window.len() >= WINDOW {
            let w: Vec<f32> = window.drain(..WINDOW).collect();
            let active = shared.active_dialog();
            if active.is_none() {
                if was_active {
                    endpointer.reset();
                    run = RunLevels::default();
                    guard.take_stretch();
                }
                was_active = false;
                in_speech = false;
                endpointer.skip(w.len());
                continue;
            }
            was_active = true;
            // With barge-in (the dialog's Start asked for it) the VAD listens while the
            // assistant speaks; what it heard of the residual echo then must not colour how
            // it hears the user afterwards: its state from before is restored (as if it had
            // not listened, which is what it does without barge-in).
            let barge_in_ms = shared.barge_in_ms.load(Ordering::Relaxed);
            let far = far.level_db().filter(|_| barge_in_ms > 0);
            match (far.is_some(), &vad_before_far) {
                (true, None) => vad_before_far = Some(vad.state()),
                (false, Some(_)) => {
                    if let Some(state) = vad_before_far.take()
                        && !endpointer.in_speech()
                    {
                        vad.set_state(state);
                    }
                }
                _ => {}
            }
            let p = match vad.probability(&w) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(event = "vad_failed", error = %e, "VAD failed");
                    health.set_not_serving(format!("VAD failed: {e}"));
                    return;
                }
            };
            let at = |samples: u64| epoch_us + (samples * 1_000_000 / u64::from(RATE)) as i64;
            // A smart final took the utterance being collected: the rest of it is dropped.
            if let Some(serial) = shared.take_claimed()
                && endpointer.in_speech()
                && endpointer.serial() == serial
            {
                endpointer.reset();
            }
            // With barge-in, the echo guard decides what counts as speech while the
            // assistant speaks; without it the VAD alone does.
            since_far = if far.is_some() {
                0
            } else {
                since_far.saturating_add(1)
            };
            let verdict = guard.judge(&w, p >= endpointer.threshold(), far);
            if far.is_some() && p >= endpointer.threshold() {
                tracing::debug!(
                    event = "guard_window",
                    p,
                    far_db = ?far,
                    speech_db = verdict.speech_db,
                    residual_db = ?verdict.residual_db,
                    voiced = verdict.voiced,
                    at_unix_us = at(endpointer.position()),
                    "A window the VAD called speech while the assistant speaks"
                );
            }
            if far.is_none()
                && let (Some(stretch), Some(dialog)) = (guard.take_stretch(), &active)
            {
                tracing::info!(
                    event = "echo_guard",
                    dialog = %dialog,
                    windows = stretch.windows,
                    vad_voiced = stretch.vad_voiced,
                    passed = stretch.passed,
                    max_excess_db = ?stretch.max_excess_db.map(tenths),
                    margin_db = guard.margin_db(),
                    "The assistant stopped speaking: what the echo guard saw meanwhile"
                );
            }
            // Speech while a reply plays, or in a pause of it, interrupts it.
            let barge_in = barge_in_ms > 0 && since_far <= BARGE_IN_HANGOVER;
            if !endpointer.in_speech() {
                endpointer.set_barge_in(barge_in.then_some(barge_in_ms));
                run.push(&verdict);
            }
            let event = endpointer.push(&w, if verdict.voiced { p } else { 0.0 });
            if endpointer.in_speech()
                && !in_speech
                && let Some(dialog) = &active
            {
                // Tell listeners at once that the user talks (the follow-up window, or an
                // interruption of the assistant).
                let speech_start_unix_us = at(endpointer.speech_start());
                if barge_in {
                    tracing::info!(
                        event = "stt_barge_in",
                        dialog = %dialog,
                        speech_db = run.speech_db(),
                        residual_echo_db = run.residual_db(),
                        onset_to_report_ms = (now_us() - speech_start_unix_us) / 1000,
                        "Speech while the assistant speaks"
                    );
                }
                let _ = shared.results.send(SttResult {
                    dialog_id: dialog.clone(),
                    speech_started: true,
                    speech_start_unix_us,
                    ts_unix_us: now_us(),
                    barge_in,
                    speech_db: run.speech_db(),
                    residual_echo_db: run.residual_db(),
                    ..SttResult::default()
                });
            }
            if endpointer.in_speech() {
                run = RunLevels::default();
            }
            in_speech = endpointer.in_speech();
            let Some(dialog) = active else { continue };
            match event {
                None => {}
                Some(Event::Resumed) => shared.set_pending(None),
                Some(Event::Pause(utterance)) => {
                    pauses += 1;
                    shared.set_pending(Some((utterance.serial, pauses)));
                    let _ = jobs_tx.send(Job {
                        dialog,
                        utterance,
                        epoch_us,
                        partial: Some(pauses),
                    });
                }
                Some(Event::End(utterance)) => {
                    shared.set_pending(None);
                    tracing::info!(
                        event = "stt_endpoint",
                        dialog = %dialog,
                        speech_ms = (utterance.speech_end - utterance.speech_start) * 1000 / u64::from(RATE),
                        speech_end_to_endpoint_ms = (now_us() - at(utterance.speech_end)) / 1000,
                        capture_lag_ms = (now_us() - at(position)) / 1000,
                        "End of utterance"
                    );
                    let _ = jobs_tx.send(Job {
                        dialog,
                        utterance,
                        epoch_us,
                        partial: None,
                    });
                }
            }
        }
        if let Some(ec) = &aec
            && last_stats.elapsed() >= Duration::from_secs(10)
        {
            last_stats = Instant::now();
            let s = ec.stats();
            tracing::info!(
                event = "aec_stats",
                erle_db = ?s.erle_db,
                delay_ms = ?s.delay_ms,
                "AEC3 statistics"
            );
        }
    }
}

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

/// Queues tts's render reference for the capture thread (the echo canceller's far end and
/// the echo guard's) and feeds the simulated echo path, if any; reconnects by itself.
pub fn render_reference(addr: String, shared: Arc<Shared>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "Cannot start the render-reference runtime");
            return;
        }
    };
    let open = {
        let addr = addr.clone();
        move || {
            let addr = addr.clone();
            async move {
                let channel = dial(&addr).await?;
                match TtsServiceClient::new(channel)
                    .render_reference(RenderReferenceRequest {})
                    .await
                {
                    Ok(stream) => Ok(stream.into_inner()),
                    Err(status) => Err(status.message().to_owned()),
                }
            }
        }
    };
    runtime.block_on(async move {
        let mut reference =
            Resubscribe::with_backoff(open, Duration::from_millis(200), Duration::from_secs(1));
        let mut connected_once = false;
        let mut resampler: Option<Resampler> = None;
        let mut pending: Vec<f32> = Vec::new();
        while !shared.stop.load(Ordering::SeqCst) {
            let frame = match reference.next().await {
                Follow::Item(frame) => frame,
                Follow::Connected => {
                    if !connected_once {
                        tracing::info!(event = "aec_reference_connected", addr = %addr, "Echo canceller gets tts's render reference");
                        connected_once = true;
                    }
                    resampler = None;
                    pending.clear();
                    continue;
                }
                Follow::Lost(_) | Follow::Unavailable(_) => continue,
            };
            let r = match &mut resampler {
                Some(r) if r.rates().0 == frame.sample_rate => r,
                _ => match Resampler::new(frame.sample_rate, RATE) {
                    Ok(r) => resampler.insert(r),
                    Err(_) => continue,
                },
            };
            let mono = voicehost_audio::to_mono(
                &voicehost_audio::from_s16le(&frame.pcm_s16le),
                frame.channels.max(1) as usize,
            );
            pending.extend(r.process(&mono));
            while pending.len() >= FRAME {
                let render: Vec<f32> = pending.drain(..FRAME).collect();
                if let Some(echo) = &shared.echo {
                    echo.played(&render);
                }
                shared.push_render(render);
            }
        }
    });
}
