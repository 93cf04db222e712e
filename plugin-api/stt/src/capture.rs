//! The capture loop: input → 10 ms frames → AEC3 (tts's render reference as far end)
//! → echo-cancelled frame stream (for kwd) → Silero VAD → echo guard → endpointing (with
//! barge-in) → the recognition thread.
//! Capture runs on its own thread and never waits for a subscriber.

use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use voicehost_audio::Source;
use voicehost_plugin_runtime::{HealthHandle, now_us};
use voicehost_proto::common::v1::AudioFrame;
use voicehost_proto::stt::v1::SttResult;

use super::Transcriber;
use super::aec::EchoCanceller;
use super::guard::{EchoGuard, Far, FarEnd, RunLevels, Verdict, level_db, tenths};
use super::input::Input;
use super::played::{CaptureClock, micros, ticks};
use super::recognize::{self, Job, Judge, Work};
use super::shared::Shared;
use super::silero::{Silero, VadState};
use super::vad::{Endpointer, Event, WINDOW};

pub const RATE: u32 = 16_000;
/// 10 ms at 16 kHz: the echo canceller's frame.
pub const FRAME: usize = 160;
/// How long (VAD windows: 1.5 s) after the assistant was last heard speech still counts as
/// an interruption (a pause between the clauses of a reply, a synthesis underrun).
const BARGE_IN_HANGOVER: u32 = 47;
/// The echo guard measures the residual echo only in windows whose speech probability is
/// under this share of the VAD's threshold: surely no one talking.
const QUIET_P: f32 = 0.4;

/// What decides where speech is: the VAD, the echo guard in front of the endpointer, the
/// endpointer, and what judges an utterance at a pause (on the recognition thread).
#[derive(Debug)]
pub struct Detection {
    pub vad: Silero,
    pub guard: EchoGuard,
    pub endpointer: Endpointer,
    pub judge: Judge,
}

/// Runs capture until `shared.stop`. Reports a capture failure through `health`.
pub fn capture<T: Transcriber>(
    source: Box<dyn Source>,
    aec: Option<Arc<EchoCanceller>>,
    detection: Detection,
    recognizer: T,
    shared: Arc<Shared>,
    health: HealthHandle,
) {
    let Detection {
        vad,
        guard,
        endpointer,
        judge,
    } = detection;
    let jobs = recognize::spawn(recognizer, judge, Arc::clone(&shared));
    let mut state = State::new(
        source,
        aec,
        (vad, guard, endpointer),
        jobs,
        Arc::clone(&shared),
    );
    while !shared.stop.load(Ordering::SeqCst) {
        if let Err(reason) = state.step() {
            health.set_not_serving(reason);
            return;
        }
    }
}

/// The capture thread's state: what it reads and detects speech with, and where it stands
/// (audio not yet cut into frames and windows, the far end, the dialog's speech).
#[derive(Debug)]
struct State {
    input: Input,
    aec: Option<Arc<EchoCanceller>>,
    vad: Silero,
    guard: EchoGuard,
    endpointer: Endpointer,
    shared: Arc<Shared>,
    /// Utterances and partials for the recognition thread.
    jobs: mpsc::Sender<Work>,
    /// Wall-clock time (µs) of the first captured sample, until the capture clock is set
    /// by the first read.
    start_us: i64,
    /// Input not yet cut into frames.
    pending: Vec<f32>,
    /// Echo-cancelled audio not yet cut into VAD windows.
    window: Vec<f32>,
    /// The same audio before echo cancellation (the echo guard measures the echo path).
    raw_window: Vec<f32>,
    /// The next frame's number on the frame stream.
    seq: u64,
    /// Samples cut into frames so far.
    position: u64,
    /// A dialog was listened to at the last window.
    was_active: bool,
    /// When AEC3's statistics were last logged.
    last_stats: Instant,
    /// The endpointer was in an utterance after the last window.
    in_speech: bool,
    /// Smart or turn-model endpointing's pauses so far (a partial's number).
    pauses: u64,
    /// The guard's verdicts on the voiced run that may start an utterance.
    run: RunLevels,
    far: FarEnd,
    /// When the next frame was captured: it is paired with the far end played then.
    clock: CaptureClock,
    /// The VAD's state when the assistant began speaking (barge-in).
    vad_before_far: Option<VadState>,
    /// VAD windows since the assistant was last heard (for barge-in).
    since_far: u32,
}

impl State {
    fn new(
        source: Box<dyn Source>,
        aec: Option<Arc<EchoCanceller>>,
        (vad, guard, endpointer): (Silero, EchoGuard, Endpointer),
        jobs: mpsc::Sender<Work>,
        shared: Arc<Shared>,
    ) -> State {
        State {
            input: Input::new(source),
            aec,
            vad,
            guard,
            endpointer,
            shared,
            jobs,
            start_us: now_us(),
            pending: Vec::new(),
            window: Vec::new(),
            raw_window: Vec::new(),
            seq: 0,
            position: 0,
            was_active: false,
            last_stats: Instant::now(),
            in_speech: false,
            pauses: 0,
            run: RunLevels::default(),
            far: FarEnd::default(),
            clock: CaptureClock::default(),
            vad_before_far: None,
            since_far: u32::MAX,
        }
    }

    /// Wall-clock time (µs) of the captured sample at `samples`, by the capture clock.
    fn at(&self, samples: u64) -> i64 {
        self.epoch_us() + (samples * 1_000_000 / u64::from(RATE)) as i64
    }

    /// Wall-clock time (µs) of the first captured sample, as the capture clock places the
    /// samples now (it follows the wall clock when the two part).
    fn epoch_us(&self) -> i64 {
        self.clock.epoch_us(self.position).unwrap_or(self.start_us)
    }

    /// One turn of the loop: takes over a `SetInput` input, reads about 10 ms, passes on
    /// each whole frame, then each whole VAD window, and logs AEC3's statistics every
    /// 10 s. `Err`: why stt no longer serves.
    fn step(&mut self) -> Result<(), String> {
        // Capture time of the new input's first sample, if `SetInput` opened one.
        let next_at = self.at(self.position + self.pending.len() as u64);
        self.input.switch(&self.shared, next_at);
        let Some(read) = self.input.read(self.shared.pacing)? else {
            return Ok(());
        };
        self.pending.extend(read);
        self.clock.read(ticks(now_us()), self.pending.len());
        while self.pending.len() >= FRAME {
            let frame: Vec<f32> = self.pending.drain(..FRAME).collect();
            self.on_frame(frame);
        }
        while self.window.len() >= WINDOW {
            let w: Vec<f32> = self.window.drain(..WINDOW).collect();
            let raw_db = level_db(&self.raw_window[..WINDOW.min(self.raw_window.len())]);
            self.raw_window.drain(..WINDOW.min(self.raw_window.len()));
            self.on_window(&w, raw_db)?;
        }
        self.log_aec_stats();
        Ok(())
    }

    /// One 10 ms frame of input: the simulated echo mixed in, the echo cancelled against
    /// the far end that goes with it, then sent to the frame stream and kept for the VAD.
    fn on_frame(&mut self, mut frame: Vec<f32>) {
        let captured = self.clock.frame(FRAME);
        let render = self.shared.pop_render(captured);
        if let Some(echo) = &self.shared.echo {
            echo.mix_into(&mut frame, &render);
        }
        self.raw_window.extend_from_slice(&frame);
        if let Some(ec) = &self.aec {
            ec.render(&render);
            ec.capture(&mut frame);
        }
        if self.far.push(&render) {
            self.guard.playback_resumed();
        }
        self.position += FRAME as u64;
        let _ = self.shared.frames.send(AudioFrame {
            pcm_s16le: voicehost_audio::to_s16le(&frame),
            sample_rate: RATE,
            channels: 1,
            ts_unix_us: micros(captured),
            seq: self.seq,
        });
        self.seq += 1;
        self.window.extend_from_slice(&frame);
    }

    /// One VAD window: VAD, echo guard and endpointer; reports the onset of speech and
    /// hands utterances to the recognition thread (`raw_db`: the window's level before echo
    /// cancellation). `Err`: the VAD failed.
    fn on_window(&mut self, w: &[f32], raw_db: f32) -> Result<(), String> {
        let Some(dialog) = self.shared.active_dialog() else {
            self.idle(w.len());
            return Ok(());
        };
        self.was_active = true;
        let barge_in_ms = self.shared.barge_in_ms.load(Ordering::Relaxed);
        let far = self.far_levels().filter(|_| barge_in_ms > 0);
        self.restore_vad(far.is_some());
        let p = match self.vad.probability(w) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(event = "vad_failed", error = %e, "VAD failed");
                return Err(format!("VAD failed: {e}"));
            }
        };
        // A final at a pause (smart or turn-model endpointing) took the utterance being collected: the rest of it is dropped.
        if let Some(serial) = self.shared.take_claimed()
            && self.endpointer.in_speech()
            && self.endpointer.serial() == serial
        {
            self.endpointer.reset();
        }
        // With barge-in, the echo guard decides what counts as speech while the
        // assistant speaks; without it the VAD alone does.
        self.since_far = if far.is_some() {
            0
        } else {
            self.since_far.saturating_add(1)
        };
        let verdict = self.judge(w, raw_db, p, far, &dialog);
        // Speech while a reply plays, or in a pause of it, interrupts it.
        let barge_in = barge_in_ms > 0 && self.since_far <= BARGE_IN_HANGOVER;
        if !self.endpointer.in_speech() {
            self.endpointer
                .set_barge_in(barge_in.then_some(barge_in_ms));
            self.run.push(&verdict);
        }
        let event = self
            .endpointer
            .push(w, if verdict.voiced { p } else { 0.0 });
        if self.endpointer.in_speech() && !self.in_speech {
            self.report_onset(&dialog, barge_in);
        }
        if self.endpointer.in_speech() {
            self.run = RunLevels::default();
        }
        self.in_speech = self.endpointer.in_speech();
        if let Some(event) = event {
            self.on_event(dialog, event);
        }
        Ok(())
    }

    /// A window while no dialog listens: it only moves the endpointer on; a dialog that
    /// just stopped leaves no utterance, voiced run or guard stretch behind.
    fn idle(&mut self, samples: usize) {
        if self.was_active {
            self.endpointer.reset();
            self.run = RunLevels::default();
            self.guard.take_stretch();
        }
        self.was_active = false;
        self.in_speech = false;
        self.endpointer.skip(samples);
    }

    /// With barge-in (the dialog's Start asked for it) the VAD listens while the
    /// assistant speaks; what it heard of the residual echo then must not colour how
    /// it hears the user afterwards: its state from before is restored (as if it had
    /// not listened, which is what it does without barge-in). `far`: the assistant is
    /// heard, with barge-in.
    fn restore_vad(&mut self, far: bool) {
        match (far, &self.vad_before_far) {
            (true, None) => self.vad_before_far = Some(self.vad.state()),
            (false, Some(_)) => {
                if let Some(state) = self.vad_before_far.take()
                    && !self.endpointer.in_speech()
                {
                    self.vad.set_state(state);
                }
            }
            _ => {}
        }
    }

    /// The far end for the window just cut: the loudest of the echo span, and where the
    /// echo canceller's delay estimate puts this window's echo; `None` while the assistant
    /// is silent.
    fn far_levels(&self) -> Option<Far> {
        let span_db = self.far.level_db()?;
        let delay_ms = self.aec.as_ref().and_then(|ec| ec.stats().delay_ms);
        let echo_db = delay_ms.and_then(|ms| {
            let delay_frames = ms as usize * RATE as usize / 1000 / FRAME;
            self.far.echo_db(delay_frames, WINDOW.div_ceil(FRAME))
        });
        Some(Far {
            span_db,
            echo_db,
            correlation: None,
        })
    }

    /// `far` with how much of window `w` (just cut) is a copy of the far end at the echo
    /// canceller's delay estimate.
    fn with_correlation(&self, w: &[f32], far: Far) -> Far {
        let delay_ms = self.aec.as_ref().and_then(|ec| ec.stats().delay_ms);
        let correlation = delay_ms.and_then(|ms| {
            let delay = ms as usize * RATE as usize / 1000;
            self.far.echo_correlation(w, delay, self.window.len())
        });
        Far { correlation, ..far }
    }

    /// The echo guard's verdict on window `w` (VAD probability `p`; `far`: the far end's
    /// levels, with barge-in). Logs a window the VAD called speech while the assistant
    /// speaks, and once it stopped, what the guard saw meanwhile.
    fn judge(&mut self, w: &[f32], raw_db: f32, p: f32, far: Option<Far>, dialog: &str) -> Verdict {
        let threshold = self.endpointer.threshold();
        let vad_voiced = p >= threshold;
        let raw_db = self.aec.is_some().then_some(raw_db);
        let far = far.map(|f| {
            if vad_voiced {
                self.with_correlation(w, f)
            } else {
                f
            }
        });
        let verdict = self
            .guard
            .judge_with(w, raw_db, vad_voiced, p < threshold * QUIET_P, far);
        // One event per window while the assistant speaks: at debug those the VAD called
        // speech, at trace the others (with the measurement they made).
        macro_rules! window {
            ($level:ident, $event:literal, $message:literal) => {
                tracing::event!(
                    tracing::Level::$level,
                    event = $event,
                    p,
                    far_db = ?far.map(|f| f.span_db),
                    echo_db = ?far.and_then(|f| f.echo_db),
                    correlation = ?far.and_then(|f| f.correlation),
                    speech_db = verdict.speech_db,
                    raw_db = ?raw_db,
                    residual_db = ?verdict.residual_db,
                    voiced = verdict.voiced,
                    measured_db = ?verdict.measured_db,
                    echo_only = verdict.echo_only,
                    echo_path_db = ?self.guard.echo_path_gain_db(),
                    at_unix_us = self.at(self.endpointer.position()),
                    $message
                )
            };
        }
        match (far.is_some(), vad_voiced) {
            (true, true) => window!(
                DEBUG,
                "guard_window",
                "A window the VAD called speech while the assistant speaks"
            ),
            (true, false) => window!(
                TRACE,
                "guard_quiet_window",
                "A window the VAD did not call speech while the assistant speaks"
            ),
            (false, _) => {}
        }
        if far.is_none()
            && let Some(stretch) = self.guard.take_stretch()
        {
            tracing::info!(
                event = "echo_guard",
                dialog = %dialog,
                windows = stretch.windows,
                vad_voiced = stretch.vad_voiced,
                passed = stretch.passed,
                echo_only = stretch.echo_only,
                max_excess_db = ?stretch.max_excess_db.map(tenths),
                margin_db = self.guard.margin_db(),
                "The assistant stopped speaking: what the echo guard saw meanwhile"
            );
        }
        verdict
    }

    /// Tells listeners at once that the user talks (the follow-up window, or an
    /// interruption of the assistant).
    fn report_onset(&self, dialog: &str, barge_in: bool) {
        let speech_start_unix_us = self.at(self.endpointer.speech_start());
        if barge_in {
            tracing::info!(
                event = "stt_barge_in",
                dialog = %dialog,
                speech_db = self.run.speech_db(),
                residual_echo_db = self.run.residual_db(),
                onset_to_report_ms = (now_us() - speech_start_unix_us) / 1000,
                "Speech while the assistant speaks"
            );
        }
        let _ = self.shared.results.send(SttResult {
            dialog_id: dialog.to_owned(),
            speech_started: true,
            speech_start_unix_us,
            ts_unix_us: now_us(),
            barge_in,
            speech_db: self.run.speech_db(),
            residual_echo_db: self.run.residual_db(),
            ..SttResult::default()
        });
    }

    /// What the endpointer made of a window: a pause (smart or turn-model endpointing: the
    /// audio so far goes to the recognition thread, to be judged), speech back after one,
    /// or the end of the utterance (it goes to the recognition thread).
    fn on_event(&mut self, dialog: String, event: Event) {
        match event {
            Event::Resumed => {
                self.shared.set_pending(None);
                self.shared.set_quiet(None);
            }
            // The start of a silence: the recognition thread reads the audio so far now,
            // so its transcript is there when the pause is judged.
            Event::Quiet(utterance) => {
                self.shared
                    .set_quiet(Some((utterance.serial, utterance.speech_end)));
                let _ = self.jobs.send(Work::ReadAhead(Job {
                    dialog,
                    utterance,
                    epoch_us: self.epoch_us(),
                    partial: Some(self.pauses + 1),
                }));
            }
            // The pause judged last is still open: the recognition thread may end it on
            // the transcript it read there.
            Event::Late { serial } => {
                if self.shared.is_pending((serial, self.pauses)) {
                    let _ = self.jobs.send(Work::Late((serial, self.pauses)));
                }
            }
            Event::Pause(utterance) => {
                self.pauses += 1;
                self.shared
                    .set_pending(Some((utterance.serial, self.pauses)));
                let _ = self.jobs.send(
                    Job {
                        dialog,
                        utterance,
                        epoch_us: self.epoch_us(),
                        partial: Some(self.pauses),
                    }
                    .into(),
                );
            }
            Event::End(utterance) => {
                self.shared.set_pending(None);
                tracing::info!(
                    event = "stt_endpoint",
                    dialog = %dialog,
                    speech_ms = (utterance.speech_end - utterance.speech_start) * 1000 / u64::from(RATE),
                    speech_end_to_endpoint_ms = (now_us() - self.at(utterance.speech_end)) / 1000,
                    capture_lag_ms = (now_us() - self.at(self.position)) / 1000,
                    "End of utterance"
                );
                let _ = self.jobs.send(
                    Job {
                        dialog,
                        utterance,
                        epoch_us: self.epoch_us(),
                        partial: None,
                    }
                    .into(),
                );
            }
        }
    }

    /// Logs AEC3's statistics every 10 s.
    fn log_aec_stats(&mut self) {
        if let Some(ec) = &self.aec
            && self.last_stats.elapsed() >= Duration::from_secs(10)
        {
            self.last_stats = Instant::now();
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
