//! The synthesis thread: text → the engine → the playback queue, in order, or back to a
//! caller (`Synthesize`). Engine work never runs on the gRPC executor.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use voicehost_plugin_runtime::SpeechGate;

use super::Synthesizer;
use super::playback::{Chunk, Player};

/// What the synthesis thread does.
#[derive(Debug)]
pub enum Job {
    /// Speech for the playback queue.
    Speak(SpeakJob),
    /// Audio for a caller, played nowhere.
    Return(ReturnJob),
}

/// One piece of text to speak.
#[derive(Debug)]
pub struct SpeakJob {
    pub utterance: u64,
    pub dialog: String,
    pub text: String,
    pub voice: String,
    /// The utterance ends with this piece.
    pub last: bool,
}

/// One piece of text whose audio goes back to the caller through `reply` ([`speak`]'s
/// result); skipped when the caller stopped waiting before it was its turn.
#[derive(Debug)]
pub struct ReturnJob {
    pub text: String,
    pub voice: String,
    pub reply: oneshot::Sender<Result<Vec<f32>, String>>,
}

/// How often held speech checks whether the playback queue has room again.
const ROOM_POLL: Duration = Duration::from_millis(20);

/// The jobs received and not yet run. Speech waits while the playback queue is above its
/// high watermark; audio for a caller never waits for it (it is played nowhere), so it
/// overtakes held speech. Each kind keeps its order.
#[derive(Debug)]
struct Queue {
    jobs: mpsc::Receiver<Job>,
    held: VecDeque<SpeakJob>,
}

impl Queue {
    fn new(jobs: mpsc::Receiver<Job>) -> Queue {
        Queue {
            jobs,
            held: VecDeque::new(),
        }
    }

    /// The next job to run, where `full()` says whether the playback queue is above its high
    /// watermark; `None` once the sender is gone.
    fn next(&mut self, full: impl Fn() -> bool) -> Option<Job> {
        loop {
            if !self.held.is_empty() && !full() {
                return self.held.pop_front().map(Job::Speak);
            }
            let job = if self.held.is_empty() {
                self.jobs.recv().ok()?
            } else {
                match self.jobs.recv_timeout(ROOM_POLL) {
                    Ok(job) => job,
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                }
            };
            match job {
                Job::Return(job) => return Some(Job::Return(job)),
                Job::Speak(job) => self.held.push_back(job),
            }
        }
    }
}

/// Audio of `text` from the engine, without leading silence (so speech starts at once) and
/// with a pause after it that fits its last punctuation.
pub fn speak<S: Synthesizer>(engine: &mut S, text: &str, voice: &str) -> Result<Vec<f32>, String> {
    let pcm = engine
        .synthesize(text, voice)
        .map_err(|e| format!("{} failed to speak {text:?}: {e}", S::META.name))?;
    let pause_ms = match text.trim_end().chars().last() {
        Some('.' | '!' | '?' | '…' | ';' | ':') => 250,
        Some(',' | '—') => 100,
        _ => 30,
    };
    Ok(trim_silence(pcm, engine.sample_rate(), pause_ms))
}

/// Synthesises the cached phrases with the default voice.
pub fn phrase_cache<S: Synthesizer>(
    engine: &mut S,
    phrases: &[String],
    voice: &str,
) -> Result<HashMap<String, Vec<f32>>, String> {
    let mut cache = HashMap::new();
    for phrase in phrases {
        let pcm = speak(engine, phrase, voice)?;
        cache.insert(phrase.clone(), pcm);
    }
    Ok(cache)
}

/// Amplitude below which an engine's output counts as silence (about -46 dBFS).
const SILENCE: f32 = 0.005;

/// Silence kept before the first sample above [`SILENCE`]: what precedes that sample is
/// inaudible, and every millisecond kept is one more before the user hears anything.
const LEAD_MS: usize = 2;

/// Cuts leading silence to [`LEAD_MS`] and trailing silence to `pause_ms`.
pub fn trim_silence(mut pcm: Vec<f32>, sample_rate: u32, pause_ms: u32) -> Vec<f32> {
    let rate = sample_rate as usize;
    let Some(first) = pcm.iter().position(|s| s.abs() > SILENCE) else {
        return Vec::new();
    };
    let last = pcm.iter().rposition(|s| s.abs() > SILENCE).unwrap_or(first);
    let end = (last + 1 + rate * pause_ms as usize / 1000).min(pcm.len());
    pcm.truncate(end);
    pcm.drain(..first.saturating_sub(rate * LEAD_MS / 1000));
    pcm
}

/// Runs jobs until the sender is dropped. Speech pauses while more than `high_samples`
/// are queued for playback. Each job holds `gate` closed while it runs, so that the llm
/// does not generate beside the synthesis (`voicehost_plugin_runtime::gate`).
pub fn run<S: Synthesizer>(
    mut engine: S,
    jobs: mpsc::Receiver<Job>,
    player: Player,
    high_samples: usize,
    gate: Option<SpeechGate>,
) {
    let mut queue = Queue::new(jobs);
    while let Some(job) = queue.next(|| player.queued_samples() > high_samples) {
        let _closed = gate.as_ref().and_then(SpeechGate::close);
        match job {
            Job::Speak(job) => play(&mut engine, &player, job),
            Job::Return(job) => give_back(&mut engine, job),
        }
    }
}

/// Synthesises `job` into the playback queue.
fn play<S: Synthesizer>(engine: &mut S, player: &Player, job: SpeakJob) {
    // Stopped (StopSpeaking, a barge-in): the rest of it is not worth the CPU.
    if player.is_cancelled(job.utterance) {
        return;
    }
    let started = Instant::now();
    let pcm = if job.text.trim().is_empty() {
        Vec::new()
    } else {
        match speak(engine, &job.text, &job.voice) {
            Ok(pcm) => pcm,
            Err(e) => {
                tracing::error!(event = "tts_error", utterance = job.utterance, error = %e, text = %job.text, "Synthesis failed");
                Vec::new()
            }
        }
    };
    if !pcm.is_empty() {
        tracing::debug!(
            utterance = job.utterance,
            chars = job.text.len(),
            audio_ms = pcm.len() as u64 * 1000 / u64::from(engine.sample_rate()),
            ms = started.elapsed().as_millis() as u64,
            "Clause synthesised"
        );
    }
    player.push(Chunk {
        utterance: job.utterance,
        dialog: job.dialog,
        pcm,
        last: job.last,
    });
}

/// Synthesises `job` for its caller, unless the caller is gone.
fn give_back<S: Synthesizer>(engine: &mut S, job: ReturnJob) {
    if job.reply.is_closed() {
        return;
    }
    let _ = job.reply.send(speak(engine, &job.text, &job.voice));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_trimmed_to_a_short_lead_and_the_pause() {
        let rate = 24_000;
        let mut pcm = vec![0.0; rate / 2];
        pcm.extend(vec![0.3; rate]);
        pcm.extend(vec![0.001; rate / 2]);
        let out = trim_silence(pcm, rate as u32, 100);
        assert_eq!(out.len(), rate * LEAD_MS / 1000 + rate + rate / 10);
        assert!(trim_silence(vec![0.0; 100], rate as u32, 100).is_empty());
    }

    fn speech(text: &str) -> Job {
        Job::Speak(SpeakJob {
            utterance: 1,
            dialog: String::new(),
            text: text.to_owned(),
            voice: String::new(),
            last: false,
        })
    }

    fn text_of(job: Option<Job>) -> String {
        match job {
            Some(Job::Speak(j)) => format!("speak {}", j.text),
            Some(Job::Return(j)) => format!("return {}", j.text),
            None => "none".to_owned(),
        }
    }

    /// Says, for each text, whether the llm would find the speech gate closed.
    struct Probe {
        gate: SpeechGate,
    }

    impl Synthesizer for Probe {
        type Config = ();
        const META: voicehost_plugin_runtime::EngineMeta = voicehost_plugin_runtime::EngineMeta {
            name: "probe",
            version: "0",
            features: &[],
        };
        fn configure(
            _: &voicehost_plugin_runtime::PluginConfig,
        ) -> Result<(), voicehost_plugin_runtime::PluginError> {
            Ok(())
        }
        fn load(_: &()) -> Result<Self, voicehost_plugin_runtime::BoxError> {
            Err("made by the test".into())
        }
        fn sample_rate(&self) -> u32 {
            16_000
        }
        fn default_voice(_: &()) -> String {
            String::new()
        }
        fn synthesize(
            &mut self,
            _: &str,
            _: &str,
        ) -> Result<Vec<f32>, voicehost_plugin_runtime::BoxError> {
            let closed = if self.gate.is_closed() { 0.5 } else { 0.25 };
            Ok(vec![closed; 1600])
        }
    }

    #[test]
    fn the_gate_is_closed_while_a_job_is_synthesised_and_open_after() {
        let dir = tempfile::tempdir().unwrap();
        let sink = voicehost_audio::open_output(
            &voicehost_audio::OutputSpec::Null,
            16_000,
            voicehost_audio::Pacing::Fast,
            voicehost_audio::ProbeMode::Off,
        )
        .unwrap();
        let player = Player::start(sink, 16_000, 0);
        let llm = SpeechGate::open(dir.path()).unwrap();
        let gate = SpeechGate::open(dir.path()).unwrap();
        let (tx, rx) = mpsc::channel();
        let probe = Probe {
            gate: SpeechGate::open(dir.path()).unwrap(),
        };
        let synth = std::thread::spawn(move || run(probe, rx, player, usize::MAX, Some(gate)));
        let (reply, audio) = oneshot::channel();
        tx.send(Job::Return(ReturnJob {
            text: "one".to_owned(),
            voice: String::new(),
            reply,
        }))
        .unwrap();
        let pcm = audio.blocking_recv().unwrap().unwrap();
        assert_eq!(pcm[0], 0.5, "the engine ran with the gate closed");
        // The audio is sent from within the job; the gate opens as the job ends.
        drop(tx);
        synth.join().unwrap();
        assert!(!llm.is_closed(), "the gate opened after the job");
    }

    #[test]
    fn audio_for_a_caller_overtakes_speech_held_by_a_full_playback_queue() {
        let (tx, rx) = mpsc::channel();
        let mut queue = Queue::new(rx);
        let mut replies = Vec::new();
        tx.send(speech("one")).unwrap();
        for text in ["a", "b"] {
            let (reply, rx) = oneshot::channel();
            replies.push(rx);
            tx.send(Job::Return(ReturnJob {
                text: text.to_owned(),
                voice: String::new(),
                reply,
            }))
            .unwrap();
        }
        tx.send(speech("two")).unwrap();
        let full = std::sync::atomic::AtomicBool::new(true);
        let is_full = || full.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(text_of(queue.next(is_full)), "return a");
        assert_eq!(text_of(queue.next(is_full)), "return b");
        // Only speech is left and the queue is full: it waits (polling) until there is room.
        let mut order = Vec::new();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(ROOM_POLL * 3);
                full.store(false, std::sync::atomic::Ordering::SeqCst);
            });
            order.push(text_of(queue.next(is_full)));
        });
        order.push(text_of(queue.next(is_full)));
        assert_eq!(order, ["speak one", "speak two"]);
        drop(tx);
        assert_eq!(text_of(queue.next(|| false)), "none");
    }
}
