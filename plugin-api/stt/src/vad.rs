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
mod tests {
    use super::*;

    #[test]
    fn speech_then_silence_makes_one_utterance_with_preroll() {
        let mut ep = Endpointer::new(0.5, 500, 100, 10_000, 200, None, None);
        let w = vec![0.1; WINDOW];
        let mut out = Vec::new();
        // 1 s silence, 1 s speech, 1 s silence (32 ms windows).
        for (n, p) in [(31, 0.0), (31, 0.9), (31, 0.0)] {
            for _ in 0..n {
                if let Some(Event::End(u)) = ep.push(&w, p) {
                    out.push(u);
                }
            }
        }
        assert_eq!(out.len(), 1);
        let u = &out[0];
        let len_ms = u.samples.len() * 1000 / RATE;
        // speech (~1 s) + preroll (~0.2 s) + a short tail, not the whole 0.5 s of silence.
        assert!((1100..1500).contains(&len_ms), "{len_ms} ms");
        assert!(u.speech_end > u.speech_start);
    }

    #[test]
    fn a_long_pause_inside_is_shortened_for_the_transcriber() {
        let mut ep = Endpointer::new(0.5, 2000, 100, 10_000, 200, Some(150), None);
        let (speech, quiet) = (vec![0.5; WINDOW], vec![0.0; WINDOW]);
        let mut pauses = Vec::new();
        // 10 windows of speech, a 900 ms pause (28 windows), 10 more, then the end.
        for (n, voiced) in [(10, true), (28, false), (10, true), (70, false)] {
            for _ in 0..n {
                let w = if voiced { &speech } else { &quiet };
                match ep.push(w, if voiced { 0.9 } else { 0.0 }) {
                    Some(Event::Pause(u)) | Some(Event::End(u)) => pauses.push(u),
                    _ => {}
                }
            }
        }
        let first = &pauses[0];
        assert!(
            first.gaps.is_empty(),
            "nothing is cut before speech resumes"
        );
        assert_eq!(first.speech().len(), first.samples.len());
        let Some(last) = pauses.last() else {
            panic!("the utterance ended");
        };
        assert_eq!(last.gaps.len(), 1);
        let speech_len = last.speech().len();
        let kept_pause = speech_len - 20 * WINDOW - (last.samples.len() - 48 * WINDOW);
        assert_eq!(kept_pause, RATE * PAUSE_KEPT_MS / 1000);
        // Every voiced sample is kept, in order.
        assert_eq!(
            last.speech().iter().filter(|s| **s > 0.0).count(),
            20 * WINDOW
        );
        assert_eq!(last.speech().first(), Some(&0.5));
    }

    #[test]
    fn short_blips_are_not_speech() {
        let mut ep = Endpointer::new(0.5, 500, 200, 10_000, 200, Some(300), None);
        let w = vec![0.1; WINDOW];
        for i in 0..200 {
            let p = if i % 10 == 0 { 0.9 } else { 0.1 };
            assert!(ep.push(&w, p).is_none());
        }
        assert!(!ep.in_speech());
    }

    #[test]
    fn a_dip_just_under_the_threshold_does_not_break_the_onset() {
        let mut ep = Endpointer::new(0.5, 500, 128, 10_000, 200, None, None);
        let w = vec![0.1; WINDOW];
        // 0.58, 0.44, 0.69, 0.77: one run of four windows (128 ms), speech from the first.
        for p in [0.01, 0.58, 0.44, 0.69, 0.77] {
            ep.push(&w, p);
        }
        assert!(ep.in_speech());
        assert_eq!(ep.speech_start(), WINDOW as u64);
        // A run cannot begin under the threshold, and a deep dip ends it.
        let mut ep = Endpointer::new(0.5, 500, 128, 10_000, 200, None, None);
        for p in [0.44, 0.6, 0.2, 0.6, 0.6, 0.6] {
            ep.push(&w, p);
        }
        assert!(!ep.in_speech());
    }

    #[test]
    fn barge_in_starts_speech_after_its_own_minimum() {
        let mut ep = Endpointer::new(0.5, 500, 250, 10_000, 200, None, None);
        let w = vec![0.1; WINDOW];
        // 160 ms voiced is not speech by default (250 ms) …
        for _ in 0..5 {
            ep.push(&w, 0.9);
        }
        assert!(!ep.in_speech());
        ep.reset();
        // … but it is while the assistant speaks with barge_in_min_ms = 150.
        ep.set_barge_in(Some(150));
        for _ in 0..5 {
            ep.push(&w, 0.9);
        }
        assert!(ep.in_speech());
        assert_eq!(ep.position - ep.speech_start(), 5 * WINDOW as u64);
    }

    #[test]
    fn a_barge_in_keeps_the_preroll_too() {
        // An utterance over a reply kept only 100 ms before its voiced run for a while:
        // the echo guard often counts the user's first word as echo, and the acoustic
        // bench then lost it ("I visit." for "What time is it?"), 2 lines of 30 cut;
        // with the preroll, none in 60.
        let mut ep = Endpointer::new(0.5, 64, 250, 10_000, 300, None, None);
        let (echo, user) = (vec![0.01; WINDOW], vec![0.1; WINDOW]);
        let utterance = |ep: &mut Endpointer| {
            for _ in 0..20 {
                ep.push(&echo, 0.0);
            }
            for _ in 0..10 {
                ep.push(&user, 0.9);
            }
            loop {
                if let Some(Event::End(u)) = ep.push(&echo, 0.0) {
                    return u;
                }
            }
        };
        for barge_in in [None, Some(64)] {
            ep.set_barge_in(barge_in);
            let heard = utterance(&mut ep);
            let before = heard.samples.iter().position(|s| *s == 0.1).unwrap();
            // The preroll: 300 ms, to within a window.
            assert!(before <= RATE * 300 / 1000, "{barge_in:?}: {before}");
            assert!(
                before + WINDOW > RATE * 300 / 1000,
                "{barge_in:?}: {before}"
            );
        }
    }

    #[test]
    fn a_turn_pause_comes_after_turn_silence_ms_and_the_silence_wait_stays_the_fallback() {
        // endpoint = turn_model, turn_silence_ms = 200, smart_silence_ms = 600 (the late
        // check), vad_silence_ms = 2000.
        let mut ep = Endpointer::new(0.5, 2000, 100, 30_000, 200, Some(200), Some(600));
        let w = vec![0.1; WINDOW];
        for _ in 0..31 {
            assert!(ep.push(&w, 0.9).is_none());
        }
        let (mut pause, mut late, mut end) = (None, None, None);
        for i in 1..=80 {
            match ep.push(&w, 0.0) {
                Some(Event::Pause(u)) => pause = Some((i, u)),
                Some(Event::Late { serial }) => late = Some((i, serial)),
                Some(Event::End(_)) => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        // The first whole window past 200 ms (7 × 32 ms = 224 ms) …
        let (i, judged) = pause.expect("a pause");
        assert_eq!(i, 7);
        assert_eq!((judged.serial, judged.pause), (1, 1));
        // … with the speech and the 200 ms of silence after it, for the turn model.
        let after_speech = judged.samples.len() - 31 * WINDOW;
        assert_eq!(after_speech, RATE / 5, "samples after the speech");
        // The same pause again past 600 ms (19 × 32 ms), once.
        assert_eq!(late, Some((19, 1)));
        // Neither ended it: 2 s of silence ends it all the same (2016 ms).
        assert_eq!(end, Some(63));
    }

    #[test]
    fn pauses_are_numbered_within_their_utterance() {
        let mut ep = Endpointer::new(0.5, 2000, 100, 30_000, 200, Some(200), Some(600));
        let w = vec![0.1; WINDOW];
        let mut events = Vec::new();
        // Speech, a 300 ms pause, speech again, a 700 ms pause.
        for (voiced, windows) in [(true, 10), (false, 10), (true, 10), (false, 22)] {
            for _ in 0..windows {
                if let Some(e) = ep.push(&w, if voiced { 0.9 } else { 0.0 }) {
                    events.push(e);
                }
            }
        }
        let seen: Vec<String> = events
            .iter()
            .map(|e| match e {
                Event::Quiet(u) => format!("quiet {}", u.pause),
                Event::Pause(u) => format!("pause {}", u.pause),
                Event::Resumed => "resumed".to_owned(),
                Event::Late { .. } => "late".to_owned(),
                Event::End(_) => "end".to_owned(),
            })
            .collect();
        assert_eq!(
            seen,
            [
                "quiet 1", "pause 1", "resumed", "quiet 2", "pause 2", "late"
            ]
        );
    }

    #[test]
    fn smart_pauses_are_reported_once_and_speech_may_resume() {
        let mut ep = Endpointer::new(0.5, 2000, 100, 30_000, 200, Some(600), None);
        let w = vec![0.1; WINDOW];
        let mut events = Vec::new();
        // 1 s speech, 0.8 s pause, 1 s speech, 2.5 s silence (32 ms windows).
        for (n, p) in [(31, 0.9), (25, 0.0), (31, 0.9), (78, 0.0)] {
            for _ in 0..n {
                if let Some(e) = ep.push(&w, p) {
                    events.push(e);
                }
            }
        }
        let kinds: Vec<&str> = events
            .iter()
            .map(|e| match e {
                Event::Quiet(_) => "quiet",
                Event::Pause(_) => "pause",
                Event::Resumed => "resumed",
                Event::Late { .. } => "late",
                Event::End(_) => "end",
            })
            .collect();
        assert_eq!(
            kinds,
            ["quiet", "pause", "resumed", "quiet", "pause", "end"]
        );
        let (Event::Pause(first), Event::End(whole)) = (&events[1], &events[5]) else {
            unreachable!()
        };
        assert_eq!(first.serial, 1);
        assert_eq!(whole.serial, 1);
        assert!(whole.samples.len() > first.samples.len() * 2);
        assert_eq!(first.speech_start, whole.speech_start);
    }

    /// The start of each silence is read ahead of its pause: a gap shorter than the pause
    /// gives a quiet and speech back; a longer one a quiet, then the pause, on the same
    /// speech (the quiet's audio ends sooner after it).
    #[test]
    fn the_start_of_a_silence_is_reported_before_its_pause() {
        let mut ep = Endpointer::new(0.5, 2000, 100, 30_000, 200, Some(150), Some(600));
        let w = vec![0.1; WINDOW];
        let mut events = Vec::new();
        // Speech, a 96 ms gap, speech, then silence past the pause (32 ms windows).
        for (voiced, windows) in [(true, 10), (false, 3), (true, 10), (false, 6)] {
            for _ in 0..windows {
                if let Some(e) = ep.push(&w, if voiced { 0.9 } else { 0.0 }) {
                    events.push(e);
                }
            }
        }
        let [
            Event::Quiet(gap),
            Event::Resumed,
            Event::Quiet(quiet),
            Event::Pause(pause),
        ] = &events[..]
        else {
            panic!("{events:?}");
        };
        assert_eq!((gap.pause, quiet.pause, pause.pause), (1, 1, 1));
        assert_eq!(quiet.speech_end, pause.speech_end);
        assert!(gap.speech_end < quiet.speech_end);
        // One window of silence (32 ms) at the quiet, five at the pause.
        assert_eq!(pause.samples.len() - quiet.samples.len(), 4 * WINDOW);
        assert!(pause.samples.starts_with(&quiet.samples));
        // No quiet where the pause comes first (or with no pause at all).
        let mut silence_only = Endpointer::new(0.5, 2000, 100, 30_000, 200, None, None);
        let mut early = Endpointer::new(0.5, 2000, 100, 30_000, 200, Some(30), None);
        for (voiced, windows) in [(true, 10), (false, 10)] {
            for _ in 0..windows {
                let p = if voiced { 0.9 } else { 0.0 };
                for ep in [&mut silence_only, &mut early] {
                    let e = ep.push(&w, p);
                    assert!(!matches!(e, Some(Event::Quiet(_))), "{e:?}");
                }
            }
        }
        // An utterance past READ_AHEAD_MAX_MS is read at its pause only.
        let mut long = Endpointer::new(0.5, 2000, 100, 30_000, 200, Some(150), None);
        let mut kinds = Vec::new();
        for (voiced, windows) in [(true, 200), (false, 6)] {
            for _ in 0..windows {
                match long.push(&w, if voiced { 0.9 } else { 0.0 }) {
                    Some(Event::Quiet(_)) => kinds.push("quiet"),
                    Some(Event::Pause(_)) => kinds.push("pause"),
                    Some(_) => kinds.push("other"),
                    None => {}
                }
            }
        }
        assert_eq!(kinds, ["pause"], "6.4 s of speech");
    }
}
