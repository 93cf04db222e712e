//! Tests of the recognition thread's judgement at pauses (recognize.rs): the turn model
//! first, then the transcript so far; what their verdicts do to the utterance, and the
//! silence wait as the fallback.
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::TryRecvError;
use voicehost_audio::Pacing;
use voicehost_plugin_runtime::{BoxError, EngineMeta, PluginConfig, PluginError};

use super::super::turn::TurnCheck;
use super::super::{Transcriber, Transcript};
use super::*;

/// What the first sample of an utterance makes [`Counter`] say: a sentence that reads
/// complete ("16000 samples.") rather than one that trails off ("16000 samples and").
const READS_COMPLETE: f32 = 1.0;
/// ... and one that reads complete only perhaps ("16000 samples like?").
const READS_LIKELY: f32 = 2.0;

/// Text: how many samples it heard, complete or trailing off as the first sample says.
/// Counts its transcriptions.
#[derive(Debug, Clone, Default)]
struct Counter(Arc<Mutex<u32>>);

impl Transcriber for Counter {
    type Config = ();
    const META: EngineMeta = EngineMeta {
        name: "counter",
        version: "0",
        features: &[],
    };

    fn configure(_: &PluginConfig) -> Result<(), PluginError> {
        Ok(())
    }

    fn load(_: &()) -> Result<Self, BoxError> {
        Ok(Counter::default())
    }

    fn transcribe(&mut self, samples: &[f32]) -> Result<Option<Transcript>, BoxError> {
        *self.0.lock().unwrap() += 1;
        let first = samples.first().copied();
        let end = if first == Some(READS_COMPLETE) {
            "."
        } else if first == Some(READS_LIKELY) {
            // "… samples like?": a question on a stranded preposition.
            " like?"
        } else {
            " and"
        };
        Ok(Some(Transcript {
            text: format!("{} samples{end}", samples.len()),
            no_speech_prob: 0.0,
        }))
    }
}

/// A turn model whose verdict is written into the audio: its last sample is the
/// probability. Counts its checks.
#[derive(Debug, Clone, Default)]
struct Scripted(Arc<Mutex<u32>>);

impl TurnModel for Scripted {
    fn check(&mut self, audio: &[f32]) -> Result<TurnCheck, String> {
        *self.0.lock().unwrap() += 1;
        Ok(TurnCheck {
            probability: audio.last().copied().ok_or("no audio")?,
            features: Duration::ZERO,
            model: Duration::ZERO,
        })
    }
}

const DIALOG: &str = "00000000000000aa";

struct Rig {
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Work>,
    results: tokio::sync::broadcast::Receiver<SttResult>,
    /// The turn model's checks (`None`: smart endpointing, no model).
    checks: Option<Arc<Mutex<u32>>>,
    transcriptions: Arc<Mutex<u32>>,
}

/// Turn-model endpointing from `threshold` (`None`: smart endpointing).
fn rig_with(threshold: Option<f32>) -> Rig {
    let shared = Arc::new(Shared::new(Pacing::Fast, None));
    *shared.dialog.lock().unwrap() = Some(DIALOG.to_owned());
    let results = shared.results.subscribe();
    let model = Scripted::default();
    let checks = threshold.map(|_| Arc::clone(&model.0));
    let judge = match threshold {
        Some(threshold) => Judge::Turn {
            model: Box::new(model),
            threshold,
        },
        None => Judge::Text,
    };
    let counter = Counter::default();
    let transcriptions = Arc::clone(&counter.0);
    let jobs = spawn(counter, judge, Arc::clone(&shared));
    Rig {
        shared,
        jobs,
        results,
        checks,
        transcriptions,
    }
}

fn rig() -> Rig {
    rig_with(Some(0.5))
}

/// `n` samples of utterance `serial` whose turn model verdict is `p`, and whose transcript
/// reads complete when `reads` says so.
fn utterance(serial: u64, n: usize, p: f32, reads: Reads) -> Utterance {
    let mut samples = vec![0.1; n];
    match reads {
        Reads::Complete => samples[0] = READS_COMPLETE,
        Reads::Likely => samples[0] = READS_LIKELY,
        Reads::Unfinished => {}
    }
    samples[n - 1] = p;
    Utterance {
        samples,
        speech_start: 0,
        speech_end: n as u64,
        serial,
        pause: 0,
        gaps: Vec::new(),
    }
}

/// How the transcript of a test utterance reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reads {
    Complete,
    /// Complete only perhaps ([`Reading::Likely`](crate::complete::Reading::Likely)).
    Likely,
    Unfinished,
}

impl Rig {
    /// Capture's side of a pause: the pause becomes the pending one, its audio is sent.
    fn pause(&self, serial: u64, pause: u64, n: usize, p: f32, reads: Reads) {
        self.shared.set_pending(Some((serial, pause)));
        let utterance = Utterance {
            pause: pause as u32,
            ..utterance(serial, n, p, reads)
        };
        self.send(utterance, Some(pause));
    }

    /// A first pause (16,000 samples, the model at `p`) that is held: no final at the
    /// pause, and the held transcript as the final, at once, when the pause lasts to the
    /// late check.
    fn held_until_late_check(&mut self, p: f32, reads: Reads) -> SttResult {
        self.pause(1, 1, 16_000, p, reads);
        assert!(self.final_within(NOTHING).is_none(), "not at the pause");
        self.jobs.send(Work::Late((1, 1))).unwrap();
        self.final_within(SOON).expect("a final at the late check")
    }

    fn send(&self, utterance: Utterance, partial: Option<u64>) {
        self.jobs
            .send(
                Job {
                    dialog: DIALOG.to_owned(),
                    utterance,
                    epoch_us: 0,
                    partial,
                }
                .into(),
            )
            .unwrap();
    }

    /// The next final, waiting at most `within` (generous: the machine may be busy).
    fn final_within(&mut self, within: Duration) -> Option<SttResult> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            match self.results.try_recv() {
                Ok(r) if r.is_final => return Some(r),
                Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => panic!("{e}"),
            }
        }
        None
    }

    fn checks(&self) -> u32 {
        *self.checks.as_ref().expect("a turn model").lock().unwrap()
    }

    fn transcriptions(&self) -> u32 {
        *self.transcriptions.lock().unwrap()
    }

    /// Waits (at most [`SOON`]) until the thread made `checks` checks and `transcriptions`
    /// transcriptions, and asserts it did.
    fn wait_for(&self, checks: u32, transcriptions: u32) {
        let deadline = Instant::now() + SOON;
        while (self.checks(), self.transcriptions()) != (checks, transcriptions)
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            (self.checks(), self.transcriptions()),
            (checks, transcriptions)
        );
    }
}

const SOON: Duration = Duration::from_secs(10);
const NOTHING: Duration = Duration::from_millis(300);

#[test]
fn a_complete_turn_that_reads_complete_ends_the_utterance_at_the_pause() {
    let mut rig = rig();
    rig.pause(1, 1, 16_000, 0.9, Reads::Complete);
    let r = rig.final_within(SOON).expect("a final at the pause");
    assert_eq!(r.text, "16000 samples.", "the audio up to the pause");
    assert_eq!(rig.shared.take_claimed(), Some(1), "capture drops the rest");
    // The silence wait's end of the same utterance comes later: it is dropped.
    rig.send(utterance(1, 40_000, 0.9, Reads::Complete), None);
    assert!(
        rig.final_within(NOTHING).is_none(),
        "one final per utterance"
    );
    assert_eq!(rig.checks(), 1, "the silence wait's end is not judged");
    assert_eq!(rig.transcriptions(), 1, "nor transcribed again");
}

#[test]
fn a_complete_turn_whose_transcript_trails_off_keeps_listening() {
    // "Set a timer for" with a falling pitch: the model hears a finished turn, the text
    // check does not.
    let mut rig = rig();
    rig.pause(1, 1, 16_000, 0.9, Reads::Unfinished);
    assert!(
        rig.final_within(NOTHING).is_none(),
        "the transcript reads unfinished: keep listening"
    );
    rig.wait_for(1, 1);
    assert_eq!(rig.shared.take_claimed(), None, "the utterance goes on");
    assert!(
        rig.shared.is_pending((1, 1)),
        "still the pause capture waits on"
    );
    // "… ten minutes.": the next pause, both complete.
    rig.shared.set_pending(None);
    rig.pause(1, 2, 40_000, 0.8, Reads::Complete);
    let r = rig.final_within(SOON).expect("a final at the second pause");
    assert_eq!(r.text, "40000 samples.", "the whole utterance, both parts");
    assert_eq!((rig.checks(), rig.transcriptions()), (2, 2));
}

#[test]
fn an_unfinished_turn_goes_on_though_its_text_reads_complete() {
    let mut rig = rig();
    // The text reads complete (it is read while the model listens); the model's verdict
    // alone keeps the utterance going.
    rig.pause(1, 1, 16_000, 0.2, Reads::Complete);
    assert!(
        rig.final_within(NOTHING).is_none(),
        "incomplete: keep listening"
    );
    assert_eq!((rig.checks(), rig.transcriptions()), (1, 1));
    // Speech came back, then a second pause, which both find complete.
    rig.shared.set_pending(None);
    rig.pause(1, 2, 30_000, 0.7, Reads::Complete);
    let r = rig.final_within(SOON).expect("a final at the second pause");
    assert_eq!(r.text, "30000 samples.", "the whole utterance, both parts");
    assert_eq!((rig.checks(), rig.transcriptions()), (2, 2));
}

#[test]
fn a_transcript_that_reads_complete_ends_the_turn_at_the_late_check() {
    let mut rig = rig();
    // The model hears the turn go on; the transcript reads complete: held, not final.
    let r = rig.held_until_late_check(0.2, Reads::Complete);
    assert_eq!(r.text, "16000 samples.");
    assert_eq!(rig.transcriptions(), 1, "read once, at the pause");
    // The utterance's own end (capture's silence wait) is not a second final.
    rig.send(utterance(1, 48_000, 0.1, Reads::Complete), None);
    assert!(rig.final_within(NOTHING).is_none());
}

#[test]
fn a_transcript_that_reads_likely_complete_waits_for_the_late_check_though_the_model_agrees() {
    let mut rig = rig();
    // "Turn the light on." (then "in the kitchen."): the model hears a finished turn, but
    // the words may go on.
    let r = rig.held_until_late_check(0.9, Reads::Likely);
    assert_eq!(r.text, "16000 samples like?");
    assert_eq!((rig.checks(), rig.transcriptions()), (1, 1));
}

#[test]
fn the_late_check_ends_nothing_when_speech_came_back_or_the_text_trailed_off() {
    let mut rig = rig();
    rig.pause(1, 1, 16_000, 0.2, Reads::Complete);
    rig.wait_for(1, 1);
    // Speech came back before the late check: that pause is over.
    rig.shared.set_pending(None);
    rig.jobs.send(Work::Late((1, 1))).unwrap();
    assert!(rig.final_within(NOTHING).is_none(), "speech came back");
    // A pause whose transcript trails off is not held.
    rig.pause(1, 2, 24_000, 0.2, Reads::Unfinished);
    rig.wait_for(2, 2);
    rig.jobs.send(Work::Late((1, 2))).unwrap();
    assert!(rig.final_within(NOTHING).is_none(), "trails off");
    // The silence wait ends it.
    rig.shared.set_pending(None);
    rig.send(utterance(1, 48_000, 0.1, Reads::Unfinished), None);
    assert!(rig.final_within(SOON).is_some());
}

#[test]
fn the_silence_wait_ends_what_the_judges_never_called_complete() {
    let mut rig = rig();
    rig.pause(1, 1, 16_000, 0.1, Reads::Complete);
    assert!(rig.final_within(NOTHING).is_none());
    rig.shared.set_pending(None);
    rig.pause(1, 2, 24_000, 0.9, Reads::Unfinished);
    assert!(rig.final_within(NOTHING).is_none());
    // vad_silence_ms later the endpointer ends the utterance: it is transcribed as is.
    rig.shared.set_pending(None);
    rig.send(utterance(1, 48_000, 0.1, Reads::Unfinished), None);
    let r = rig.final_within(SOON).expect("the fallback final");
    assert_eq!(r.text, "48000 samples and");
    assert_eq!(rig.checks(), 2, "the end is not judged");
    assert_eq!(rig.transcriptions(), 3, "both pauses and the end");
}

#[test]
fn a_verdict_on_a_pause_that_speech_already_ended_is_not_used() {
    let mut rig = rig();
    // Speech resumed before the recognition thread took the pause's audio.
    rig.shared.set_pending(None);
    rig.send(utterance(1, 16_000, 0.9, Reads::Complete), Some(1));
    assert!(
        rig.final_within(NOTHING).is_none(),
        "a stale pause ends nothing"
    );
    assert_eq!(rig.checks(), 0, "and costs no check");
    assert_eq!(rig.transcriptions(), 0, "nor a transcription");
    // The next utterance is judged as usual.
    rig.pause(2, 2, 8_000, 0.95, Reads::Complete);
    assert_eq!(
        rig.final_within(SOON).expect("a final").text,
        "8000 samples."
    );
}

#[test]
fn the_threshold_is_inclusive_and_configurable() {
    let mut rig = rig_with(Some(0.8));
    rig.pause(1, 1, 16_000, 0.79, Reads::Complete);
    assert!(rig.final_within(NOTHING).is_none(), "under 0.8");
    rig.pause(1, 2, 20_000, 0.8, Reads::Complete);
    assert!(rig.final_within(SOON).is_some(), "at 0.8");
}

#[test]
fn smart_endpointing_ends_at_a_pause_whose_transcript_reads_complete() {
    let mut rig = rig_with(None);
    rig.pause(1, 1, 16_000, 0.0, Reads::Unfinished);
    assert!(rig.final_within(NOTHING).is_none(), "reads unfinished");
    rig.shared.set_pending(None);
    rig.pause(1, 2, 30_000, 0.0, Reads::Complete);
    let r = rig.final_within(SOON).expect("a final at the second pause");
    assert_eq!(r.text, "30000 samples.");
    assert_eq!(rig.transcriptions(), 2);
    assert_eq!(rig.shared.take_claimed(), Some(1));
}

#[test]
fn smart_endpointing_takes_a_transcript_that_reads_likely_complete() {
    // Its pause is already the longer one that turn-model endpointing waits for.
    let mut rig = rig_with(None);
    rig.pause(1, 1, 16_000, 0.0, Reads::Likely);
    let r = rig.final_within(SOON).expect("a final at the pause");
    assert_eq!(r.text, "16000 samples like?");
}

#[test]
fn the_silence_wait_takes_the_transcript_read_at_the_last_pause_when_nothing_was_said_since() {
    let mut rig = rig();
    // The pause's verdict: the turn goes on (on a busy machine it may also come after the
    // silence wait).
    rig.pause(1, 1, 24_000, 0.1, Reads::Unfinished);
    assert!(rig.final_within(NOTHING).is_none());
    rig.wait_for(1, 1);
    // The silence wait ends it: the same speech (its end unchanged), more silence after.
    rig.shared.set_pending(None);
    let mut end = utterance(1, 40_000, 0.1, Reads::Unfinished);
    end.speech_end = 24_000;
    rig.send(end, None);
    let r = rig.final_within(SOON).expect("the fallback final");
    assert_eq!(r.text, "24000 samples and", "the pause's transcript");
    assert_eq!(rig.transcriptions(), 1, "not read again");
    // Speech after the pause: the end is read anew.
    rig.pause(2, 1, 24_000, 0.1, Reads::Unfinished);
    rig.wait_for(2, 2);
    rig.shared.set_pending(None);
    rig.send(utterance(2, 40_000, 0.1, Reads::Unfinished), None);
    let r = rig.final_within(SOON).expect("the fallback final");
    assert_eq!(r.text, "40000 samples and");
    assert_eq!(rig.transcriptions(), 3);
}

#[test]
fn a_pause_takes_the_transcript_read_ahead_of_it_unless_speech_came_between() {
    let mut rig = rig();
    let read_ahead = |rig: &Rig, utterance: Utterance| {
        rig.jobs
            .send(Work::ReadAhead(Job {
                dialog: DIALOG.to_owned(),
                utterance,
                epoch_us: 0,
                partial: Some(1),
            }))
            .unwrap();
    };
    // The start of the silence: the audio so far is read at once.
    rig.shared.set_quiet(Some((1, 20_000)));
    read_ahead(&rig, utterance(1, 20_000, 0.1, Reads::Complete));
    rig.wait_for(0, 1);
    // Its pause, on the same speech with more silence after it: only the turn model runs,
    // and the transcript read ahead ends the utterance.
    let mut at_pause = utterance(1, 24_000, 0.9, Reads::Complete);
    at_pause.speech_end = 20_000;
    at_pause.pause = 1;
    rig.shared.set_pending(Some((1, 1)));
    rig.send(at_pause, Some(1));
    let r = rig.final_within(SOON).expect("the pause's final");
    assert_eq!(r.text, "20000 samples.", "the transcript read ahead");
    rig.wait_for(1, 1);
    // Speech came back before the next read ahead had its turn: it is not read, and the
    // pause after that speech reads its own audio.
    rig.shared.set_quiet(None);
    read_ahead(&rig, utterance(2, 10_000, 0.1, Reads::Complete));
    rig.pause(2, 1, 30_000, 0.9, Reads::Complete);
    let r = rig.final_within(SOON).expect("the second pause's final");
    assert_eq!(r.text, "30000 samples.");
    assert_eq!(rig.transcriptions(), 2, "the stale read ahead was skipped");
}
