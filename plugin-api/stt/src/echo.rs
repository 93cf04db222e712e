//! A simulated acoustic echo path for machines without a loudspeaker and microphone: what
//! tts plays (its render reference) reaches the capture signal `delay` later and scaled by
//! `gain`, as a speaker in the room would. Tests and demos use it to check that the
//! assistant never hears itself (AEC, kwd disabled while speaking) through a real path.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `input_echo = GAIN@DELAY_MS`, e.g. `0.5@120`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EchoPath {
    pub gain: f32,
    pub delay: Duration,
}

impl std::str::FromStr for EchoPath {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let usage = "expected off or GAIN@DELAY_MS with GAIN in (0, 2] and DELAY_MS in 0..=1000, \
                     e.g. 0.5@120";
        let (gain, delay) = s.split_once('@').ok_or_else(|| usage.to_owned())?;
        let gain: f32 = gain.trim().parse().map_err(|_| usage.to_owned())?;
        let delay: u64 = delay.trim().parse().map_err(|_| usage.to_owned())?;
        if !(gain > 0.0 && gain <= 2.0) || delay > 1000 {
            return Err(usage.to_owned());
        }
        Ok(EchoPath {
            gain,
            delay: Duration::from_millis(delay),
        })
    }
}

/// The delay line between the render reference (producer) and capture (consumer).
#[derive(Debug)]
pub struct EchoLine {
    path: EchoPath,
    rate: u32,
    state: Mutex<(VecDeque<f32>, Option<Instant>)>,
}

impl EchoLine {
    pub fn new(path: EchoPath, rate: u32) -> EchoLine {
        EchoLine {
            path,
            rate,
            state: Mutex::new((VecDeque::new(), None)),
        }
    }

    /// Played audio (mono, at the capture rate) as it leaves the speaker.
    pub fn played(&self, samples: &[f32]) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let (queue, last) = &mut *state;
        // After a pause the sound needs `delay` to reach the microphone again; during
        // playback the line keeps its length (capture drains it at the same pace).
        let resumed = last.is_none_or(|t| t.elapsed() > Duration::from_millis(200));
        if queue.is_empty() && resumed {
            let n = self.path.delay.as_micros() as usize * self.rate as usize / 1_000_000;
            queue.extend(std::iter::repeat_n(0.0, n));
        }
        queue.extend(samples.iter().map(|s| s * self.path.gain));
        *last = Some(Instant::now());
    }

    /// Adds the echo due now to one captured frame.
    pub fn mix_into(&self, frame: &mut [f32]) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let n = frame.len().min(state.0.len());
        for (s, e) in frame.iter_mut().zip(state.0.drain(..n)) {
            *s = (*s + e).clamp(-1.0, 1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_with_the_usage() {
        let p: EchoPath = "0.5@120".parse().unwrap();
        assert_eq!(p.delay, Duration::from_millis(120));
        for bad in ["0.5", "x@1", "0@10", "0.5@5000", "3@1"] {
            assert!(
                bad.parse::<EchoPath>()
                    .unwrap_err()
                    .contains("GAIN@DELAY_MS")
            );
        }
    }

    #[test]
    fn played_audio_comes_back_late_and_scaled() {
        let line = EchoLine::new("0.5@10".parse().unwrap(), 16_000);
        line.played(&[1.0; 160]);
        let mut first = [0.0f32; 160];
        line.mix_into(&mut first);
        assert!(
            first.iter().all(|s| *s == 0.0),
            "the first 10 ms are the delay"
        );
        let mut second = [0.1f32; 160];
        line.mix_into(&mut second);
        assert!(second.iter().all(|s| (*s - 0.6).abs() < 1e-6));
        let mut third = [0.0f32; 160];
        line.mix_into(&mut third);
        assert!(third.iter().all(|s| *s == 0.0), "nothing more was played");
    }
}
