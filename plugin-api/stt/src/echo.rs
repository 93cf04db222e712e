//! A simulated acoustic echo path for machines without a loudspeaker and microphone: what
//! tts plays (its render reference) reaches the capture signal `delay` later and scaled by
//! `gain`, as a speaker in the room would. Tests and demos use it to check that the
//! assistant never hears itself (AEC, kwd disabled while speaking) through a real path.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

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

/// The echo path on the capture clock: each captured frame gets the far end that went
/// with the frame `delay` earlier, scaled by `gain`. Clocking it by capture (not by when
/// the render reference arrives) keeps the delay constant across gaps in playback and
/// bursts of the reference, as a loudspeaker and microphone in one room do.
#[derive(Debug)]
pub struct EchoLine {
    gain: f32,
    /// The far end in flight: `delay` of it, oldest first.
    line: Mutex<VecDeque<f32>>,
}

impl EchoLine {
    pub fn new(path: EchoPath, rate: u32) -> EchoLine {
        let n = path.delay.as_micros() as usize * rate as usize / 1_000_000;
        EchoLine {
            gain: path.gain,
            line: Mutex::new(std::iter::repeat_n(0.0, n).collect()),
        }
    }

    /// Adds the echo due now to one captured frame; `far` is the far end (what played)
    /// that goes with this frame, as long as the frame.
    pub fn mix_into(&self, frame: &mut [f32], far: &[f32]) {
        let Ok(mut line) = self.line.lock() else {
            return;
        };
        line.extend(far.iter().map(|s| s * self.gain));
        let n = frame.len().min(line.len());
        for (s, e) in frame.iter_mut().zip(line.drain(..n)) {
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
    fn played_audio_comes_back_late_and_scaled_with_a_constant_delay() {
        let line = EchoLine::new("0.5@10".parse().unwrap(), 16_000);
        let mut first = [0.0f32; 160];
        line.mix_into(&mut first, &[1.0; 160]);
        assert!(
            first.iter().all(|s| *s == 0.0),
            "the first 10 ms are the delay"
        );
        let mut second = [0.1f32; 160];
        line.mix_into(&mut second, &[0.0; 160]);
        assert!(second.iter().all(|s| (*s - 0.6).abs() < 1e-6));
        // A gap in playback (silence as far end) keeps the delay: what plays after it
        // comes back 10 ms later again.
        for _ in 0..7 {
            let mut gap = [0.0f32; 160];
            line.mix_into(&mut gap, &[0.0; 160]);
            assert!(gap.iter().all(|s| *s == 0.0));
        }
        let mut resumed = [0.0f32; 160];
        line.mix_into(&mut resumed, &[0.4; 160]);
        assert!(resumed.iter().all(|s| *s == 0.0), "still 10 ms late");
        let mut after = [0.0f32; 160];
        line.mix_into(&mut after, &[0.0; 160]);
        assert!(after.iter().all(|s| (*s - 0.2).abs() < 1e-6));
    }
}
