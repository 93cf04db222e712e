//! Utterance endpointing on the VAD's speech probabilities ([`super::silero`]).

use std::collections::VecDeque;

pub use super::silero::WINDOW;

/// How far under the threshold a window may dip without breaking the voiced run that
/// starts an utterance.
const ONSET_DIP: f32 = 0.15;
const RATE: usize = 16_000;
/// A pause inside an utterance longer than this is shortened to it for the transcriber
/// (half of it kept after the words before, half before the words after): Whisper
/// (tiny.en) hears a hesitant "And what about | Germany?" better without the long silence
/// inside, and sooner.
const PAUSE_KEPT_MS: usize = 200;
/// Smart or turn-model endpointing: the audio so far is read this far into a silence,
/// ahead of the pause that judges it (one VAD window), so the transcript is ready when
/// the pause comes, or soon after. On the acoustic bench one window gave end of speech →
/// final text 230-250 ms (median of 12), two windows 260-290.
const READ_AHEAD_MS: usize = 32;
/// Only an utterance this long so far is read ahead; a longer one is read at its pause. A
/// reading that speech cuts short is wasted, costs more the longer the audio, and when the
/// utterance then ends it holds up the reading that counts: the 9 s JFK sentence's final
/// came 180 ms later with every silence read ahead, a short request's 80 ms sooner.
const READ_AHEAD_MAX_MS: usize = 5_000;

/// A finished utterance.
#[derive(Debug, Clone)]
pub struct Utterance {
    pub samples: Vec<f32>,
    /// Offsets (in samples since capture start) where speech began and ended.
    pub speech_start: u64,
    pub speech_end: u64,
    /// Which utterance of this endpointer it is (counts from 1).
    pub serial: u64,
    /// At a pause: which pause of the utterance it is (counts from 1); 0 at its end.
    pub pause: u32,
    /// Ranges of `samples` (sorted, apart) inside long pauses, left out of [`Self::speech`].
    pub gaps: Vec<(usize, usize)>,
}

impl Utterance {
    /// The audio to transcribe: the samples without the [`gaps`](Self::gaps), i.e. every
    /// pause inside the utterance shortened to [`PAUSE_KEPT_MS`].
    pub fn speech(&self) -> std::borrow::Cow<'_, [f32]> {
        if self.gaps.is_empty() {
            return std::borrow::Cow::Borrowed(&self.samples);
        }
        let mut kept = Vec::with_capacity(self.samples.len());
        let mut from = 0;
        for &(start, end) in &self.gaps {
            kept.extend_from_slice(&self.samples[from..start.min(self.samples.len())]);
            from = end.min(self.samples.len()).max(from);
        }
        kept.extend_from_slice(&self.samples[from..]);
        std::borrow::Cow::Owned(kept)
    }
}

/// What one window did to the utterance being collected.
#[derive(Debug)]
pub enum Event {
    /// `pause` of silence inside an utterance (smart or turn-model endpointing): the audio
    /// so far, to be judged. The utterance goes on.
    Pause(Utterance),
    /// The first [`READ_AHEAD_MS`] of a silence inside an utterance (smart or turn-model
    /// endpointing, whose pause comes later): the audio so far, to be read ahead of the
    /// pause. The utterance goes on.
    Quiet(Utterance),
    /// Speech came back after a [`Event::Quiet`] or an [`Event::Pause`].
    Resumed,
    /// The pause of utterance `serial` grew to the late check's length (turn-model
    /// endpointing: where the transcript alone may end the utterance) with no speech.
    Late { serial: u64 },
    /// The utterance ended: `silence` without speech, or `max_len`.
    End(Utterance),
}

/// Endpointing on VAD probabilities: speech starts after `min_speech` of voiced windows
/// (with `preroll` of audio before it kept), and ends after `silence` without speech, or at
/// `max_len`.
#[derive(Debug)]
pub struct Endpointer {
    threshold: f32,
    silence: usize,
    /// Smart or turn-model endpointing: report a pause after this much silence.
    pause: Option<usize>,
    paused: bool,
    /// Where [`Event::Quiet`] comes (before `pause`), and whether it came in this silence.
    read_ahead: Option<usize>,
    quiet: bool,
    /// Turn-model endpointing: report the same pause again after this much silence.
    late: Option<usize>,
    late_sent: bool,
    /// The pauses of the utterance being collected.
    pauses: u32,
    serial: u64,
    min_speech: usize,
    /// While the assistant speaks (barge-in): the voiced run that starts an utterance.
    barge_in: Option<usize>,
    max_len: usize,
    preroll: VecDeque<f32>,
    preroll_len: usize,
    current: Option<Vec<f32>>,
    /// The long pauses inside `current` so far ([`Utterance::gaps`]).
    gaps: Vec<(usize, usize)>,
    voiced_run: usize,
    since_voice: usize,
    speech_start: u64,
    last_voice: u64,
    position: u64,
}

impl Endpointer {
    pub fn new(
        threshold: f32,
        silence_ms: u32,
        min_speech_ms: u32,
        max_ms: u32,
        preroll_ms: u32,
        pause_ms: Option<u32>,
        late_ms: Option<u32>,
    ) -> Self {
        let ms = |m: u32| RATE * m as usize / 1000;
        let read_ahead = RATE * READ_AHEAD_MS / 1000;
        Endpointer {
            threshold,
            silence: ms(silence_ms),
            pause: pause_ms.map(ms),
            paused: false,
            read_ahead: pause_ms
                .map(ms)
                .filter(|p| *p > read_ahead)
                .map(|_| read_ahead),
            quiet: false,
            late: late_ms.map(ms),
            late_sent: false,
            pauses: 0,
            serial: 0,
            min_speech: ms(min_speech_ms),
            barge_in: None,
            max_len: ms(max_ms),
            preroll: VecDeque::new(),
            preroll_len: ms(preroll_ms),
            current: None,
            gaps: Vec::new(),
            voiced_run: 0,
            since_voice: 0,
            speech_start: 0,
            last_voice: 0,
            position: 0,
        }
    }

    /// Samples pushed or skipped so far: where the next window begins.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The speech probability from which a window counts as voiced.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// True while an utterance is being collected.
    pub fn in_speech(&self) -> bool {
        self.current.is_some()
    }

    /// Barge-in: while `Some`, a voiced run of this many ms starts an utterance instead of
    /// `min_speech_ms` (the assistant is speaking and the user may interrupt it).
    pub fn set_barge_in(&mut self, min_ms: Option<u32>) {
        self.barge_in = min_ms.map(|m| RATE * m as usize / 1000);
    }

    /// Where the utterance being collected began (samples since the first window).
    pub fn speech_start(&self) -> u64 {
        self.speech_start
    }

    /// The serial of the utterance being collected (or of the last one).
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The audio collected so far, with at most 200 ms of the silence after the speech.
    fn snapshot(&self, samples: &[f32]) -> Utterance {
        let keep = samples
            .len()
            .saturating_sub(self.since_voice.saturating_sub(RATE / 5));
        Utterance {
            samples: samples[..keep].to_vec(),
            speech_start: self.speech_start,
            speech_end: self.last_voice,
            serial: self.serial,
            pause: 0,
            gaps: self.gaps.clone(),
        }
    }

    /// Feeds one window and its speech probability; reports pauses and ends.
    pub fn push(&mut self, window: &[f32], probability: f32) -> Option<Event> {
        let voiced = probability >= self.threshold;
        self.position += window.len() as u64;
        match self.current.as_mut() {
            None => {
                self.preroll.extend(window.iter().copied());
                let min_speech = self.barge_in.unwrap_or(self.min_speech);
                let excess = self
                    .preroll
                    .len()
                    .saturating_sub(self.preroll_len + self.min_speech.max(min_speech));
                self.preroll.drain(..excess);
                // Hysteresis, as Silero's own iterator does: a run that has begun goes on
                // through a window just under the threshold (a soft consonant at the onset).
                let goes_on = self.voiced_run > 0 && probability >= self.threshold - ONSET_DIP;
                self.voiced_run = if voiced || goes_on {
                    self.voiced_run + window.len()
                } else {
                    0
                };
                if self.voiced_run >= min_speech {
                    self.serial += 1;
                    self.paused = false;
                    self.quiet = false;
                    self.pauses = 0;
                    self.speech_start = self.position - self.voiced_run as u64;
                    self.last_voice = self.position;
                    self.since_voice = 0;
                    self.gaps.clear();
                    // The voiced run and `preroll_ms` before it (the buffer holds more
                    // while the assistant speaks: its voiced run is shorter).
                    let kept = self.voiced_run + self.preroll_len;
                    let skip = self.preroll.len().saturating_sub(kept);
                    self.current = Some(self.preroll.drain(..).skip(skip).collect());
                }
                None
            }
            Some(samples) => {
                samples.extend_from_slice(window);
                if voiced {
                    // The pause this window ends, less what is kept of it.
                    let keep = RATE * PAUSE_KEPT_MS / 1000;
                    if self.since_voice > keep {
                        let end = samples.len() - window.len();
                        let start = end - self.since_voice;
                        self.gaps.push((start + keep / 2, end - keep / 2));
                    }
                    self.since_voice = 0;
                    self.last_voice = self.position;
                } else {
                    self.since_voice += window.len();
                }
                if self.since_voice >= self.silence || samples.len() >= self.max_len {
                    self.voiced_run = 0;
                    self.paused = false;
                    self.quiet = false;
                    let samples = self.current.take().unwrap_or_default();
                    return Some(Event::End(self.snapshot(&samples)));
                }
                if voiced && (self.paused || self.quiet) {
                    self.paused = false;
                    self.quiet = false;
                    return Some(Event::Resumed);
                }
                if let Some(read_ahead) = self.read_ahead
                    && !self.quiet
                    && !self.paused
                    && self.since_voice >= read_ahead
                    && samples.len() <= RATE * READ_AHEAD_MAX_MS / 1000
                {
                    self.quiet = true;
                    let so_far = self.current.take().unwrap_or_default();
                    let utterance = Utterance {
                        pause: self.pauses + 1,
                        ..self.snapshot(&so_far)
                    };
                    self.current = Some(so_far);
                    return Some(Event::Quiet(utterance));
                }
                if let Some(pause) = self.pause
                    && !self.paused
                    && self.since_voice >= pause
                {
                    self.paused = true;
                    self.late_sent = false;
                    self.pauses += 1;
                    // The utterance goes on: lend its audio to the snapshot, then put it back.
                    let so_far = self.current.take().unwrap_or_default();
                    let utterance = Utterance {
                        pause: self.pauses,
                        ..self.snapshot(&so_far)
                    };
                    self.current = Some(so_far);
                    return Some(Event::Pause(utterance));
                }
                if let Some(late) = self.late
                    && self.paused
                    && !self.late_sent
                    && self.since_voice >= late
                {
                    self.late_sent = true;
                    return Some(Event::Late {
                        serial: self.serial,
                    });
                }
                None
            }
        }
    }

    /// Audio that was not listened to (no dialog): positions stay capture positions.
    pub fn skip(&mut self, samples: usize) {
        self.position += samples as u64;
    }

    /// Drops any partial utterance (dialog stopped, or a final at a pause took it).
    pub fn reset(&mut self) {
        self.current = None;
        self.gaps.clear();
        self.voiced_run = 0;
        self.paused = false;
        self.quiet = false;
        self.preroll.clear();
    }
}

#[cfg(test)]
#[path = "vad_tests.rs"]
mod tests;
