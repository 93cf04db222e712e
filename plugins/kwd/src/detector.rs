//! From scores to detections: a threshold per model and one cooldown for all.
//!
//! A detection fires when a model's score rises to its threshold after more than
//! [`REARM_SAMPLES`] below it, and no detection fired within the cooldown. One
//! utterance of the wake word keeps the score high for up to about a second (the
//! classifier sees 1.28 s) with an occasional one-chunk dip, and fires once; a second
//! utterance within the cooldown is dropped; one after it fires again. Time is counted in
//! audio samples, so the result depends on the audio alone.

/// A fired detection.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Index of the model in the engine's order.
    pub model: usize,
    pub score: f32,
}

/// How long (samples at 16 kHz: 240 ms, three of openWakeWord's 80 ms chunks) a score
/// must stay below its threshold before it can fire again.
pub const REARM_SAMPLES: u64 = 3 * 1280;

#[derive(Debug, Clone)]
pub struct Detector {
    thresholds: Vec<f32>,
    cooldown_samples: u64,
    /// Per model: where its score was last at or above the threshold (`None`: not since
    /// the start).
    last_above: Vec<Option<u64>>,
    /// Sample position of the last detection.
    last: Option<u64>,
}

impl Detector {
    /// `thresholds` per model, `cooldown_ms` of audio after a detection.
    pub fn new(thresholds: Vec<f32>, cooldown_ms: u64, rate: u32) -> Detector {
        Detector {
            last_above: vec![None; thresholds.len()],
            thresholds,
            cooldown_samples: cooldown_ms * u64::from(rate) / 1000,
            last: None,
        }
    }

    /// Forgets the previous scores and detections (after a gap in the audio).
    pub fn reset(&mut self) {
        self.last_above.fill(None);
        self.last = None;
    }

    /// Looks at the scores at sample `position` (the end of the audio they were computed
    /// from); returns the detection they fire, the highest-scoring model when several rise
    /// together.
    pub fn observe(&mut self, position: u64, scores: &[f32]) -> Option<Detection> {
        let cooled = self
            .last
            .is_none_or(|last| position.saturating_sub(last) >= self.cooldown_samples);
        let mut fired: Option<Detection> = None;
        for (model, (&score, &threshold)) in scores.iter().zip(&self.thresholds).enumerate() {
            let above = score >= threshold;
            let rising = above
                && self.last_above[model]
                    .is_none_or(|at| position.saturating_sub(at) > REARM_SAMPLES);
            if above {
                self.last_above[model] = Some(position);
            }
            if rising && cooled && fired.as_ref().is_none_or(|f| score > f.score) {
                fired = Some(Detection { model, score });
            }
        }
        if fired.is_some() {
            self.last = Some(position);
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: u64 = 1280;

    fn run(detector: &mut Detector, scores: &[f32]) -> Vec<u64> {
        scores
            .iter()
            .enumerate()
            .filter_map(|(i, &s)| {
                let at = (i as u64 + 1) * CHUNK;
                detector.observe(at, &[s]).map(|_| i as u64)
            })
            .collect()
    }

    #[test]
    fn one_utterance_fires_once() {
        let mut d = Detector::new(vec![0.6], 1000, 16_000);
        assert_eq!(
            run(&mut d, &[0.0, 0.2, 0.7, 0.99, 0.95, 0.8, 0.1, 0.0]),
            [2]
        );
    }

    #[test]
    fn a_second_rise_within_the_cooldown_is_dropped_and_one_after_fires() {
        // 12.5 chunks per second: a rise 10 chunks later is within 1 s, 25 chunks later not.
        let mut scores = vec![0.0; 40];
        scores[2] = 0.9;
        scores[12] = 0.9;
        scores[37] = 0.9;
        let mut d = Detector::new(vec![0.6], 1000, 16_000);
        assert_eq!(run(&mut d, &scores), [2, 37]);
    }

    #[test]
    fn a_score_that_stays_high_past_the_cooldown_does_not_fire_again() {
        let mut d = Detector::new(vec![0.6], 100, 16_000);
        assert_eq!(run(&mut d, &[0.9; 30]), [0]);
    }

    #[test]
    fn a_zero_cooldown_still_fires_once_per_rise() {
        let mut d = Detector::new(vec![0.5], 0, 16_000);
        assert_eq!(run(&mut d, &[0.9, 0.9, 0.1, 0.1, 0.1, 0.9]), [0, 5]);
    }

    #[test]
    fn a_one_chunk_dip_is_still_the_same_utterance() {
        let mut d = Detector::new(vec![0.6], 1000, 16_000);
        let mut scores = vec![0.9; 15];
        scores[0] = 0.0;
        scores.extend([0.3, 0.9, 0.9, 0.1, 0.0, 0.0]);
        assert_eq!(run(&mut d, &scores), [1]);
    }

    #[test]
    fn the_threshold_is_per_model_and_the_cooldown_is_shared() {
        let mut d = Detector::new(vec![0.9, 0.3], 1000, 16_000);
        assert_eq!(d.observe(CHUNK, &[0.5, 0.1]), None);
        assert_eq!(
            d.observe(2 * CHUNK, &[0.5, 0.4]),
            Some(Detection {
                model: 1,
                score: 0.4
            })
        );
        // The other model rising within the cooldown is the same utterance.
        assert_eq!(d.observe(3 * CHUNK, &[0.95, 0.4]), None);
    }

    #[test]
    fn the_highest_score_wins_when_models_rise_together() {
        let mut d = Detector::new(vec![0.5, 0.5], 1000, 16_000);
        let fired = d.observe(CHUNK, &[0.7, 0.8]);
        assert_eq!(fired.map(|f| f.model), Some(1));
    }

    #[test]
    fn re_arming_is_counted_in_audio_not_in_observations() {
        // Scores every 30 ms (microWakeWord's step): a 210 ms dip is the same utterance,
        // 270 ms below the threshold re-arms it.
        const STEP: u64 = 480;
        let mut d = Detector::new(vec![0.6], 0, 16_000);
        let mut scores = vec![0.9; 3];
        scores.extend([0.1; 7]);
        scores.extend([0.9; 3]);
        scores.extend([0.1; 9]);
        scores.push(0.9);
        let fired: Vec<usize> = scores
            .iter()
            .enumerate()
            .filter(|(i, s)| d.observe((*i as u64 + 1) * STEP, &[**s]).is_some())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(fired, [0, 22]);
    }
}
