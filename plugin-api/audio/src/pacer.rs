//! Real-time pacing for outputs and inputs that are not a device.

use std::time::{Duration, Instant};

/// Lateness beyond which the stream counts as having been idle.
const IDLE: Duration = Duration::from_millis(50);

/// Keeps a stream of samples in step with the wall clock, with `lead` of buffering (a
/// device's buffer): writing more than `lead` ahead blocks until the clock catches up. When
/// the stream was idle (the clock passed the last sample), it restarts at "now".
#[derive(Debug, Clone)]
pub struct Pacer {
    rate: u32,
    lead: Duration,
    start: Instant,
    samples: u64,
}

impl Pacer {
    pub fn new(rate: u32, lead: Duration) -> Pacer {
        Pacer {
            rate: rate.max(1),
            lead,
            start: Instant::now(),
            samples: 0,
        }
    }

    fn position(&self) -> Duration {
        Duration::from_secs_f64(self.samples as f64 / f64::from(self.rate))
    }

    /// Accounts for `n` samples about to be written; returns when they may be.
    pub fn advance(&mut self, n: usize) {
        let now = Instant::now();
        if self.start + self.position() + IDLE < now {
            // Idle (or far behind): a device would have played silence meanwhile. Small
            // lateness is not idleness: resetting on it would let the stream drift.
            self.start = now;
            self.samples = 0;
        }
        self.samples += n as u64;
        let due = self.start + self.position();
        if let Some(ahead) = due.checked_duration_since(now + self.lead) {
            std::thread::sleep(ahead);
        }
    }

    /// Forgets what was written but `kept` samples from now on (an output that dropped
    /// what it held).
    pub fn restart(&mut self, kept: usize) {
        self.start = Instant::now();
        self.samples = kept as u64;
    }

    /// When the samples written so far will have finished playing.
    pub fn finished_at(&self) -> Instant {
        self.start + self.position()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_small_pieces_do_not_drift() {
        // 2 s in 10 ms pieces with no lead, like a WAV input: sleep overshoot must not add up.
        let mut p = Pacer::new(16_000, Duration::ZERO);
        let t = Instant::now();
        for _ in 0..200 {
            p.advance(160);
        }
        let took = t.elapsed();
        eprintln!("2 s in 200 pieces took {took:?}");
        // Sleeping 10 ms per piece from "now" would add every wake-up's lateness (≥ 5 ms a
        // piece on a busy machine, 1 s in all); the bound leaves room for a late wake-up.
        assert!(took < Duration::from_millis(3000), "drifted: {took:?}");
    }

    #[test]
    fn one_second_of_audio_takes_about_one_second() {
        let mut p = Pacer::new(1000, Duration::from_millis(50));
        let t = Instant::now();
        for _ in 0..20 {
            p.advance(50);
        }
        let took = t.elapsed();
        eprintln!("1 s of audio took {took:?}");
        assert!(took >= Duration::from_millis(900), "{took:?}");
        assert!(took < Duration::from_millis(3000), "{took:?}");
    }
}
