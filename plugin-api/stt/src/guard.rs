//! The echo guard: while the assistant speaks, tells the user's voice from what is left of
//! the assistant's own voice after echo cancellation.
//!
//! What tts plays (its render reference) is the far end; the capture thread takes, for each
//! frame it captured, what played then (`played.rs`). While the far end is active, a window the VAD
//! calls speech is the user's only if it is not a copy of the far end, and it holds more
//! than the echo:
//!
//! - A copy: its correlation with the far end at the echo canceller's delay estimate is at
//!   least [`ECHO_CORRELATION`] (or [`RESIDUAL_CORRELATION`], when only the third test
//!   below says it is more than the echo). The canceller may suddenly remove less (AEC3's delay
//!   estimate moves: on the sound-server harness its residual rose 18 dB above the one
//!   measured, 1 s into a reply); that residual sounds like speech, so no window measures
//!   it, it clears any margin over what was measured, and the reply stopped for its own
//!   voice. Its levels could not tell it from a user as loud; its likeness to the far end
//!   does.
//! - More than the echo: once the echo path is known (the gain from the far end to the
//!   microphone *before* cancellation, measured in windows the VAD hears nothing in), a
//!   level before cancellation at least [`ABOVE_ECHO_DB`] over the echo that reaches the
//!   microphone (the far end's loudest over the echo span, plus that gain). The echo path is
//!   the room and the volume and holds whatever the canceller does: when it removes little
//!   for a whole reply, the residual measured is the echo itself, and the user 5-7 dB above
//!   the echo could not clear a margin over it.
//! - Or an echo-cancelled level `margin_db` above the residual echo expected: the far end's
//!   level plus the residual gain, the highest (cancelled − far end) ratio of the latest
//!   windows the VAD judged not to be speech. Until enough such windows have been seen (and
//!   never from the first windows of a stretch, before the echo has reached the microphone)
//!   the residual gain is 0 dB, as loud as the far end itself: a canceller that has not
//!   converged, or is not there, cannot let the assistant's voice through.
//!
//! A ratio is measured against the far end whose echo is in that window — the frames the
//! echo canceller's delay estimate points at — and only when those were loud: against the
//! loudest of the whole span, a window between two words of the echo read as a canceller
//! that removes 40 dB. Without a delay estimate (no echo canceller, or not yet) nothing is
//! measured. The echo path's gain is the loudest of its latest measurements but an eighth:
//! the first window of the user's words, before the VAD hears them, is sometimes one, and
//! taken for the echo it made the user sound like echo. It is remembered for a minute, so
//! it holds across gaps in playback and from one reply to the next; the residual is never
//! taken to be louder than it.
//!
//! A gap in playback (an underrun: the output played digital silence) may move the echo
//! relative to the far end (the output's buffer refills in a burst) until the canceller has
//! found it again. So after such a gap the residual is measured again, as at the start of a
//! stretch, and meanwhile it is taken [`GAP_ALLOWANCE_DB`] above what was measured before
//! the gap. Not as loud as the far end: the user who starts to talk just after an underrun
//! (while they talk no window is a measurement) must still be able to interrupt.

use std::collections::VecDeque;

use super::capture::{FRAME, RATE};
use super::vad::WINDOW;

/// Capture frames (10 ms) of far end that count for the echo in the current window: the
/// echo path's delay (speaker → microphone, output buffers) and room reverberation.
const ECHO_SPAN_FRAMES: usize = 30;
/// Far-end frames kept for the echo-aligned level: up to this delay (1 s) is followed.
const HISTORY_FRAMES: usize = 100;
/// Around the frames the delay points at: earlier ones still ring in the room (reverberation),
/// and the estimate is only so exact.
const ALIGN_BEFORE_FRAMES: usize = 3;
const ALIGN_AFTER_FRAMES: usize = 1;
/// VAD windows (32 ms) at the start of a stretch whose echo may not have arrived yet.
const ECHO_SPAN_WINDOWS: u64 = (ECHO_SPAN_FRAMES * FRAME / WINDOW) as u64 + 1;
/// Far-end frames below this level are silence.
const SILENT_DB: f32 = -55.0;
/// [`SILENT_DB`] as mean power.
const SILENT_POWER: f32 = 3.162e-6;
/// Samples either side of the echo canceller's delay estimate searched for the echo in a
/// window (20 ms): the estimate moves, and a window is cut between two capture frames.
const CORRELATION_SEARCH: usize = RATE as usize / 50;
/// A window the VAD calls speech whose correlation with the far end at the echo's delay
/// is at least this is the echo, whatever its level. On the sound-server harness the echo
/// the canceller let through correlated 0.54-0.93, the user talking over the reply 0.03-0.53
/// (the highest where the echo was as loud as they were).
pub const ECHO_CORRELATION: f32 = 0.6;
/// The same for a window that is not louder than the echo before cancellation, and so
/// counts as the user only by the canceller's residual measured before: that measurement
/// is what fails when the canceller suddenly removes less, so the window must look less
/// like the far end. A leak at 1 dB over the margin interrupted a reply on the acoustic
/// bench (its correlation was not logged); of the user's windows over three benches, this
/// turned away 3 of 129 more than [`ECHO_CORRELATION`] alone.
pub const RESIDUAL_CORRELATION: f32 = 0.4;
/// Residual-gain observations are taken while the far end is at least this loud (quiet
/// far-end passages give noisy ratios).
const OBSERVE_DB: f32 = -45.0;
/// How long (VAD windows) a residual-gain observation is remembered: 5 s, so that a pause
/// in the assistant's speech (a synthesis underrun, the gap between two replies) does not
/// make the guard start over.
const RESIDUAL_MEMORY: u64 = (5 * RATE as usize / WINDOW) as u64;
/// Observations needed before the residual gain is trusted (160 ms).
const MIN_OBSERVATIONS: usize = 5;
/// The residual gain is the loudest of this many latest observations (about 0.5 s of the
/// assistant's voice alone): the canceller's state now, not while it was converging at the
/// start of a reply — a CI run kept a −8.5 dB residual from then for 2 s, and the user
/// speaking at the far end's level could not interrupt.
const RECENT_OBSERVATIONS: usize = 16;
/// The residual gain while it is unknown: the echo as loud as the far end.
const UNKNOWN_RESIDUAL_GAIN_DB: f32 = 0.0;
/// The lowest residual gain believed: what the canceller does varies within a reply (AEC3's
/// ERLE went from 24 to 8 dB in one conversation on the sound-server harness), and a
/// measurement of -35 dB let a barely cancelled word of the echo interrupt the reply.
const MIN_RESIDUAL_GAIN_DB: f32 = -25.0;
/// After a gap in playback, until the residual is measured again: how far above the one
/// measured before it the residual is taken to be. Small: the residual is already the
/// loudest of 5 s of measurements, and while the user talks nothing is measured again —
/// with 10 dB a user as loud as the assistant's echo-free voice (speech -17 to -22 dBFS
/// against a far end of -15 to -24) passed 1 window of 35 and could not interrupt.
pub const GAP_ALLOWANCE_DB: f32 = 4.0;
/// How long (VAD windows) an echo-path observation is remembered: a minute.
const ECHO_PATH_MEMORY: u64 = (60 * RATE as usize / WINDOW) as u64;
/// Echo-path measurements kept: about 2 s of the assistant's voice alone.
const PATH_OBSERVATIONS: usize = 64;
/// How far (dB) above the echo reaching the microphone a window's level before cancellation
/// must be to hold more than that echo: the user's voice as loud as the echo adds 3 dB.
/// Echo on the sound-server harness reached up to 0.3 dB above its prediction; the user
/// interrupting was 5-7 dB above it.
pub const ABOVE_ECHO_DB: f32 = 3.0;
/// Capture frames of digital silence between sounds that make a gap in playback (50 ms):
/// an underrun, not a pause in speech (synthesised pauses are quiet, not zero).
const GAP_FRAMES: usize = 5;

/// Level of `samples` (full scale = 1.0), dBFS; -100 for digital silence.
pub fn level_db(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return -100.0;
    }
    let power = samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32;
    (10.0 * power.max(1e-10).log10()).max(-100.0)
}

/// The far end's level over the last [`ECHO_SPAN_FRAMES`] capture frames.
#[derive(Debug, Default)]
pub struct FarEnd {
    levels: VecDeque<f32>,
    /// The far end's samples, oldest first: at least the frames of `levels`.
    samples: Vec<f32>,
    /// Frames of digital silence since the far end last sounded.
    zeros: usize,
}

impl FarEnd {
    /// The far-end frame that goes with the capture frame just taken. True when it resumes
    /// playback after a gap ([`GAP_FRAMES`] of digital silence within the echo span).
    pub fn push(&mut self, frame: &[f32]) -> bool {
        let db = level_db(frame);
        let sounding = self.level_db().is_some();
        self.levels.push_back(db);
        if self.levels.len() > HISTORY_FRAMES {
            self.levels.pop_front();
        }
        self.samples.extend_from_slice(frame);
        if self.samples.len() > 2 * HISTORY_FRAMES * FRAME {
            let excess = self.samples.len() - HISTORY_FRAMES * FRAME;
            self.samples.drain(..excess);
        }
        if db <= -100.0 {
            self.zeros += 1;
            return false;
        }
        let resumed = sounding && self.zeros >= GAP_FRAMES && db > SILENT_DB;
        if db > SILENT_DB {
            self.zeros = 0;
        }
        resumed
    }

    /// The loudest far-end frame of the echo span; `None` when the assistant is silent.
    pub fn level_db(&self) -> Option<f32> {
        self.loudest(
            self.levels.len().saturating_sub(ECHO_SPAN_FRAMES),
            self.levels.len(),
        )
    }

    /// The loudest far-end frame whose echo is in the latest `window_frames` captured
    /// frames, given the echo path's `delay_frames`; `None` when those were silent or are
    /// no longer kept.
    pub fn echo_db(&self, delay_frames: usize, window_frames: usize) -> Option<f32> {
        let end = self.levels.len().checked_sub(delay_frames)? + ALIGN_AFTER_FRAMES;
        let start = end.checked_sub(window_frames + ALIGN_BEFORE_FRAMES + ALIGN_AFTER_FRAMES)?;
        self.loudest(start, end.min(self.levels.len()))
    }

    /// How much of `window` (echo-cancelled capture, `after` samples captured since its
    /// last) is a copy of the far end `delay` samples earlier, give or take
    /// [`CORRELATION_SEARCH`]: the highest normalised cross-correlation, 0 to 1. `None`
    /// when that far end was silent or is no longer kept.
    pub fn echo_correlation(&self, window: &[f32], delay: usize, after: usize) -> Option<f32> {
        let energy = |s: &[f32]| s.iter().map(|x| x * x).sum::<f32>();
        let window_energy = energy(window);
        if window_energy <= 0.0 {
            return None;
        }
        let len = window.len();
        let mut best = None;
        for d in delay.saturating_sub(CORRELATION_SEARCH)..=delay + CORRELATION_SEARCH {
            // The far-end sample whose echo is window[0].
            let Some(start) = self.samples.len().checked_sub(after + len + d) else {
                break;
            };
            let far = &self.samples[start..start + len];
            let far_energy = energy(far);
            if far_energy < len as f32 * SILENT_POWER {
                continue;
            }
            let dot: f32 = window.iter().zip(far).map(|(a, b)| a * b).sum();
            let r = dot.abs() / (window_energy * far_energy).sqrt();
            best = Some(best.map_or(r, |b: f32| b.max(r)));
        }
        best
    }

    fn loudest(&self, start: usize, end: usize) -> Option<f32> {
        self.levels
            .range(start..end)
            .copied()
            .filter(|db| *db > SILENT_DB)
            .reduce(f32::max)
    }
}

/// The far end as the guard sees one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Far {
    /// The loudest of the echo span ([`FarEnd::level_db`]): what the residual is expected
    /// against.
    pub span_db: f32,
    /// The far end whose echo is in this window ([`FarEnd::echo_db`]); `None` when it was
    /// silent or the delay is unknown: no measurement.
    pub echo_db: Option<f32>,
    /// How much of the window is a copy of that far end ([`FarEnd::echo_correlation`]);
    /// `None` when not known.
    pub correlation: Option<f32>,
}

/// The guard's verdict on one VAD window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// Speech for the endpointer: the VAD says so and, while the assistant speaks, the
    /// level clears the residual echo by the margin.
    pub voiced: bool,
    /// Level of the echo-cancelled window, dBFS.
    pub speech_db: f32,
    /// The residual echo expected in this window, dBFS; `None` when the assistant is silent.
    pub residual_db: Option<f32>,
    /// The residual gain (cancelled − far end, dB) this window measured, if it was a
    /// measurement.
    pub measured_db: Option<f32>,
    /// The VAD called it speech, but it is a copy of the far end.
    pub echo_only: bool,
}

/// What the guard saw during one stretch of the assistant speaking.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stretch {
    /// The window the stretch began with.
    first: u64,
    pub windows: u32,
    /// Windows the VAD called speech.
    pub vad_voiced: u32,
    /// Of those, the ones that cleared the residual echo.
    pub passed: u32,
    /// Of those, the ones that were a copy of the far end.
    pub echo_only: u32,
    /// The highest (level − expected residual) among the VAD-voiced windows, dB.
    pub max_excess_db: Option<f32>,
}

/// The guard's state (capture thread only).
#[derive(Debug)]
pub struct EchoGuard {
    margin_db: f32,
    /// Windows judged so far.
    window: u64,
    /// (window, cancelled − far) of windows the VAD judged not to be speech.
    observations: VecDeque<(u64, f32)>,
    /// (window, residual gain) measured before the last gap in playback, while the
    /// residual is measured again.
    before_gap: Option<(u64, f32)>,
    /// (window, microphone − far) of the same windows, before cancellation: the echo path.
    echo_path: VecDeque<(u64, f32)>,
    stretch: Option<Stretch>,
}

impl EchoGuard {
    pub fn new(margin_db: f32) -> EchoGuard {
        EchoGuard {
            margin_db,
            window: 0,
            observations: VecDeque::new(),
            before_gap: None,
            echo_path: VecDeque::new(),
            stretch: None,
        }
    }

    /// The residual gain (cancelled signal − far end) expected now, dB: what was measured,
    /// never above the echo path's gain.
    pub fn residual_gain_db(&self) -> f32 {
        let measured = if self.observations.len() < MIN_OBSERVATIONS {
            self.before_gap.map_or(UNKNOWN_RESIDUAL_GAIN_DB, |(_, g)| {
                (g + GAP_ALLOWANCE_DB).min(UNKNOWN_RESIDUAL_GAIN_DB)
            })
        } else {
            loudest(&self.observations)
                .map_or(UNKNOWN_RESIDUAL_GAIN_DB, |g| g.max(MIN_RESIDUAL_GAIN_DB))
        };
        self.echo_path_gain_db()
            .map_or(measured, |path| measured.min(path))
    }

    /// The echo path's gain (microphone before cancellation − far end), dB: the loudest of
    /// the measurements but an eighth; `None` until it was measured [`MIN_OBSERVATIONS`]
    /// times.
    pub fn echo_path_gain_db(&self) -> Option<f32> {
        if self.echo_path.len() < MIN_OBSERVATIONS {
            return None;
        }
        let mut gains: Vec<f32> = self.echo_path.iter().map(|(_, g)| *g).collect();
        gains.sort_by(|a, b| b.total_cmp(a));
        gains.get(gains.len() / 8).copied()
    }

    /// Judges the next echo-cancelled VAD window: `vad_voiced` is the VAD's call, `far` the
    /// far end's levels (`None`: the assistant is silent). Every window the VAD does not
    /// call speech may be a measurement.
    #[cfg(test)]
    pub fn judge(&mut self, window: &[f32], vad_voiced: bool, far: Option<Far>) -> Verdict {
        self.judge_with(window, None, vad_voiced, !vad_voiced, far)
    }

    /// [`EchoGuard::judge`], measuring only in windows the VAD is sure hold no speech
    /// (`vad_quiet`): the onset of the user's words, just under the VAD's threshold, taken
    /// for echo made the residual as loud as the user (seen on the sound-server harness),
    /// and the user could not interrupt. `raw_db`: the window's level before echo
    /// cancellation (the echo path is measured where it is given).
    pub fn judge_with(
        &mut self,
        window: &[f32],
        raw_db: Option<f32>,
        vad_voiced: bool,
        vad_quiet: bool,
        far: Option<Far>,
    ) -> Verdict {
        self.window += 1;
        let now = self.window;
        while self
            .observations
            .front()
            .is_some_and(|(w, _)| now - w > RESIDUAL_MEMORY)
        {
            self.observations.pop_front();
        }
        while self
            .echo_path
            .front()
            .is_some_and(|(w, _)| now - w > ECHO_PATH_MEMORY)
        {
            self.echo_path.pop_front();
        }
        if self.before_gap.is_some_and(|(w, _)| {
            now - w > RESIDUAL_MEMORY || self.observations.len() >= MIN_OBSERVATIONS
        }) {
            self.before_gap = None;
        }
        let speech_db = level_db(window);
        let Some(Far {
            span_db: far_db,
            echo_db,
            correlation,
        }) = far
        else {
            return Verdict {
                voiced: vad_voiced,
                speech_db,
                residual_db: None,
                measured_db: None,
                echo_only: false,
            };
        };
        let residual_db = far_db + self.residual_gain_db();
        let raw_echo_db = self.echo_path_gain_db().map(|path| far_db + path);
        let louder = raw_db
            .zip(raw_echo_db)
            .is_some_and(|(raw, echo)| raw >= echo + ABOVE_ECHO_DB);
        let below = |limit: f32| correlation.is_none_or(|c| c < limit);
        let voiced = vad_voiced
            && ((louder && below(ECHO_CORRELATION))
                || (speech_db >= residual_db + self.margin_db && below(RESIDUAL_CORRELATION)));
        let echo_only = vad_voiced && !below(ECHO_CORRELATION);
        let s = self.stretch.get_or_insert(Stretch {
            first: now,
            ..Stretch::default()
        });
        let mut measured_db = None;
        if let Some(echo_db) = echo_db.filter(|db| *db >= OBSERVE_DB)
            && vad_quiet
            && !vad_voiced
            && now - s.first >= ECHO_SPAN_WINDOWS
        {
            measured_db = Some(speech_db - echo_db);
            self.observations.push_back((now, speech_db - echo_db));
            if self.observations.len() > RECENT_OBSERVATIONS {
                self.observations.pop_front();
            }
            if let Some(raw_db) = raw_db {
                self.echo_path.push_back((now, raw_db - echo_db));
                if self.echo_path.len() > PATH_OBSERVATIONS {
                    self.echo_path.pop_front();
                }
            }
        }
        s.windows += 1;
        if vad_voiced {
            s.vad_voiced += 1;
            s.passed += u32::from(voiced);
            s.echo_only += u32::from(echo_only);
            let excess = speech_db - residual_db;
            s.max_excess_db = Some(s.max_excess_db.map_or(excess, |m| m.max(excess)));
        }
        Verdict {
            voiced,
            speech_db,
            residual_db: Some(residual_db),
            measured_db,
            echo_only,
        }
    }

    /// Playback resumed after a gap: what was measured of the residual no longer holds.
    pub fn playback_resumed(&mut self) {
        if self.observations.len() >= MIN_OBSERVATIONS {
            self.before_gap = Some((self.window, self.residual_gain_db()));
        }
        self.observations.clear();
        if let Some(s) = &mut self.stretch {
            // No measurement before the resumed echo has reached the microphone.
            s.first = self.window;
        }
    }

    /// The stretch of the assistant speaking that just ended, once (call on every window
    /// the assistant is silent in).
    pub fn take_stretch(&mut self) -> Option<Stretch> {
        self.stretch.take()
    }

    pub fn margin_db(&self) -> f32 {
        self.margin_db
    }
}

/// The loudest gain of `observations`.
fn loudest(observations: &VecDeque<(u64, f32)>) -> Option<f32> {
    observations.iter().map(|(_, g)| *g).reduce(f32::max)
}

/// The echo guard's verdicts on the current voiced run (the windows that may start an
/// utterance): its mean level and the highest residual echo expected during it.
#[derive(Debug, Default)]
pub struct RunLevels {
    windows: u32,
    sum_db: f32,
    residual_db: Option<f32>,
}

impl RunLevels {
    pub fn push(&mut self, v: &Verdict) {
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

    pub fn speech_db(&self) -> f32 {
        if self.windows == 0 {
            return -100.0;
        }
        tenths(self.sum_db / self.windows as f32)
    }

    /// -100 when the assistant was silent.
    pub fn residual_db(&self) -> f32 {
        self.residual_db.map_or(-100.0, tenths)
    }
}

/// A level in dB to one decimal, for the log.
pub fn tenths(db: f32) -> f32 {
    (db * 10.0).round() / 10.0
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
