//! The synthesis thread: text → the engine → the playback queue, in order. Engine work
//! never runs on the gRPC executor.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::Synthesizer;
use super::playback::{Chunk, Player};

/// One piece of text to speak.
#[derive(Debug)]
pub struct Job {
    pub utterance: u64,
    pub dialog: String,
    pub text: String,
    pub voice: String,
    /// The utterance ends with this piece.
    pub last: bool,
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

/// Cuts leading silence to 10 ms and trailing silence to `pause_ms`.
pub fn trim_silence(mut pcm: Vec<f32>, sample_rate: u32, pause_ms: u32) -> Vec<f32> {
    let rate = sample_rate as usize;
    let Some(first) = pcm.iter().position(|s| s.abs() > SILENCE) else {
        return Vec::new();
    };
    let last = pcm.iter().rposition(|s| s.abs() > SILENCE).unwrap_or(first);
    let end = (last + 1 + rate * pause_ms as usize / 1000).min(pcm.len());
    pcm.truncate(end);
    pcm.drain(..first.saturating_sub(rate / 100));
    pcm
}

/// Runs jobs until the sender is dropped. Pauses while more than `high_samples` are
/// queued for playback.
pub fn run<S: Synthesizer>(
    mut engine: S,
    jobs: mpsc::Receiver<Job>,
    player: Player,
    high_samples: usize,
) {
    let rate = u64::from(engine.sample_rate());
    while let Ok(job) = jobs.recv() {
        while player.queued_samples() > high_samples {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Stopped (StopSpeaking, a barge-in): the rest of it is not worth the CPU.
        if player.is_cancelled(job.utterance) {
            continue;
        }
        let started = Instant::now();
        let pcm = if job.text.trim().is_empty() {
            Vec::new()
        } else {
            match speak(&mut engine, &job.text, &job.voice) {
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
                audio_ms = pcm.len() as u64 * 1000 / rate,
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
        assert_eq!(out.len(), rate / 100 + rate + rate / 10);
        assert!(trim_silence(vec![0.0; 100], rate as u32, 100).is_empty());
    }
}
