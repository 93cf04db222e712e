//! The far end on the clock it is heard by. tts stamps each render-reference frame with
//! when it will be played; capture asks, for each frame it captured, for what played just
//! after (see [`FAR_END_LEAD`]). The echo canceller then sees the far end a constant time
//! ahead of its echo, whatever how far ahead of playback tts wrote it or how promptly each
//! side ran: taking frames in arrival order, that time moved by tens of milliseconds from
//! one reply to the next (AEC3's delay estimate went from 48 to 96 ms in one bench run),
//! and the canceller had to find the echo again each time.
//!
//! Times are ticks: samples at [`RATE`] since the Unix epoch.

use std::collections::VecDeque;

use super::capture::RATE;

/// Ticks per millisecond.
const TICKS_PER_MS: i64 = RATE as i64 / 1000;
/// The far end that goes with a frame captured at t is what played from t + this: sound
/// reaches the microphone after it is played, never before, and the play and capture times
/// are estimates (the sound server's latency reports) good to a few milliseconds. The echo
/// canceller cannot cancel an echo that comes before its far end.
pub const FAR_END_LEAD: i64 = 10 * TICKS_PER_MS;
/// A frame timed this close to where the line ends continues it: the output's estimate of
/// when a frame plays moves a little from one frame to the next (the sound server's latency
/// report), and following it would shift the far end under the canceller.
pub const CONTINUES: i64 = 5 * TICKS_PER_MS;
/// Far end kept at most (1 s): a stalled capture thread or a line timed far ahead.
const MAX_SAMPLES: usize = RATE as usize;

/// `us` microseconds since the Unix epoch as ticks.
pub fn ticks(us: i64) -> i64 {
    us * TICKS_PER_MS / 1000
}

/// `ticks` as microseconds since the Unix epoch.
pub fn micros(ticks: i64) -> i64 {
    ticks * 1000 / TICKS_PER_MS
}

/// The far end still to be heard, in play order, from `start` on.
#[derive(Debug, Default)]
pub struct PlayedLine {
    samples: VecDeque<f32>,
    /// When `samples[0]` plays.
    start: i64,
}

impl PlayedLine {
    fn end(&self) -> i64 {
        self.start + self.samples.len() as i64
    }

    /// Far-end `samples` whose first plays at `at`. Silence between two pieces is played as
    /// silence; a piece that starts before the line ends replaces the rest of it (an output
    /// that dropped what it held when the user interrupted it never played that).
    pub fn push(&mut self, at: i64, samples: &[f32]) {
        let end = self.end();
        if self.samples.is_empty() {
            self.start = at;
        } else if (at - end).abs() <= CONTINUES {
            // The same stream, timed a little differently: kept sample-exact.
        } else if at > end + MAX_SAMPLES as i64 {
            // Far end not taken for a long while (capture stalled): it is past.
            self.samples.clear();
            self.start = at;
        } else if at > end {
            self.samples
                .extend(std::iter::repeat_n(0.0, (at - end) as usize));
        } else if at > self.start {
            self.samples.truncate((at - self.start) as usize);
        } else {
            self.samples.clear();
            self.start = at;
        }
        self.samples.extend(samples.iter().copied());
        let excess = self.samples.len().saturating_sub(MAX_SAMPLES);
        self.samples.drain(..excess);
        self.start += excess as i64;
    }

    /// The `n` samples of far end played from `at` on (silence where nothing played); what
    /// played before `at` is dropped.
    pub fn take(&mut self, at: i64, n: usize) -> Vec<f32> {
        if self.start < at {
            let gone = ((at - self.start) as usize).min(self.samples.len());
            self.samples.drain(..gone);
            self.start = if self.samples.is_empty() {
                at
            } else {
                self.start + gone as i64
            };
        }
        let silent = (self.start - at).clamp(0, n as i64) as usize;
        let mut out = vec![0.0; silent];
        let played = (n - silent).min(self.samples.len());
        out.extend(self.samples.drain(..played));
        self.start += played as i64;
        out.resize(n, 0.0);
        out
    }
}

/// When the next captured frame was captured, in ticks: a count of the samples read, set
/// by the wall clock when the input starts and whenever the two part by more than the input
/// can explain (a device whose clock runs apart from the system's, or samples lost).
#[derive(Debug, Default)]
pub struct CaptureClock {
    next: Option<i64>,
    /// The smallest lag seen in this stretch of reads, and how many reads it has.
    min_lag: i64,
    reads: u32,
}

/// Reads per stretch over which the smallest lag is taken (about 5 s).
const LAG_READS: u32 = 500;
/// The smallest lag of a stretch above which the clock is set again: the input's own
/// buffering is a period or two.
const MAX_LAG: i64 = 60 * TICKS_PER_MS;
/// How far the clock may run ahead of the samples before it is set back: a read that came
/// sooner after its samples than the first did is not worth moving the far end for.
const AHEAD_SLACK: i64 = 5 * TICKS_PER_MS;

impl CaptureClock {
    /// A read ended at `now` (ticks) with `pending` samples not yet made into frames, the
    /// last of them captured just now (or a little earlier: the input's latency).
    pub fn read(&mut self, now: i64, pending: usize) {
        let first = now - pending as i64;
        let Some(next) = self.next else {
            self.set(first);
            return;
        };
        // How long ago the pending samples were captured, by this clock.
        let lag = first - next;
        if lag < -AHEAD_SLACK {
            // Captured in the future: the clock runs ahead.
            self.set(first);
            return;
        }
        self.min_lag = self.min_lag.min(lag.max(0));
        self.reads += 1;
        if self.reads >= LAG_READS {
            if self.min_lag > MAX_LAG {
                self.next = Some(next + self.min_lag);
            }
            self.min_lag = i64::MAX;
            self.reads = 0;
        }
    }

    /// Sets the clock by the wall clock: the next frame was captured at `at`; a new stretch
    /// of reads begins.
    fn set(&mut self, at: i64) {
        self.next = Some(at);
        self.min_lag = i64::MAX;
        self.reads = 0;
    }

    /// The capture time of the next frame of `len` samples; the clock moves past it.
    pub fn frame(&mut self, len: usize) -> i64 {
        let at = self.next.unwrap_or_default();
        self.next = Some(at + len as i64);
        at
    }

    /// When the first sample made into a frame was captured, in microseconds since the
    /// Unix epoch, as the clock places the samples now, `framed` samples having been made
    /// into frames (the sample at n was captured n / [`RATE`] s after it); `None` before
    /// the first read. A count of samples from the start alone parts from the wall clock as
    /// the device's clock and the system's do (0.2-0.27 ms a second on the acoustic bench's
    /// sound server: seconds in a day) and with every sample lost; this stays within the
    /// input's buffering of it.
    pub fn epoch_us(&self, framed: u64) -> Option<i64> {
        let framed = i64::try_from(framed).unwrap_or(i64::MAX);
        self.next.map(|next| micros(next - framed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(from: usize, n: usize) -> Vec<f32> {
        (from..from + n).map(|i| i as f32).collect()
    }

    #[test]
    fn the_far_end_comes_out_at_the_time_it_plays() {
        let mut line = PlayedLine::default();
        line.push(1000, &ramp(1, 160));
        line.push(1160, &ramp(161, 160));
        // Asked 40 samples before it plays: silence, then the first samples.
        let out = line.take(960, 160);
        assert_eq!(&out[..40], &[0.0; 40]);
        assert_eq!(&out[40..], &ramp(1, 120)[..]);
        // The next frame carries on exactly.
        assert_eq!(line.take(1120, 160), ramp(121, 160));
        // Asked after it played: what played before is gone.
        let out = line.take(1300, 160);
        assert_eq!(&out[..20], &ramp(301, 20)[..]);
        assert_eq!(&out[20..], &[0.0; 140]);
    }

    #[test]
    fn a_frame_timed_a_little_off_continues_the_line_sample_exact() {
        let mut line = PlayedLine::default();
        line.push(0, &ramp(1, 160));
        line.push(160 + CONTINUES, &ramp(161, 160));
        line.push(320 - CONTINUES, &ramp(321, 160));
        assert_eq!(line.take(0, 480), ramp(1, 480));
    }

    #[test]
    fn silence_between_replies_and_an_interrupted_reply_play_as_they_did() {
        let mut line = PlayedLine::default();
        line.push(0, &ramp(1, 160));
        // The next reply plays 100 samples after the first ended.
        line.push(260, &ramp(1001, 160));
        let out = line.take(0, 420);
        assert_eq!(&out[..160], &ramp(1, 160)[..]);
        assert_eq!(&out[160..260], &[0.0; 100]);
        assert_eq!(&out[260..], &ramp(1001, 160)[..]);
        // Written ahead, then dropped: the next piece starts where the output cut it.
        line.push(1000, &ramp(1, 320));
        line.push(1100, &ramp(2001, 160));
        let out = line.take(1000, 260);
        assert_eq!(&out[..100], &ramp(1, 100)[..]);
        assert_eq!(&out[100..], &ramp(2001, 160)[..]);
        // One a second or more past the line's end starts it again.
        line.push(1360, &ramp(1, 160));
        line.push(1520 + MAX_SAMPLES as i64 + 1, &ramp(7001, 10));
        assert_eq!(line.take(1520 + MAX_SAMPLES as i64 + 1, 10), ramp(7001, 10));
        // A piece timed before the whole line replaces it.
        line.push(5000, &ramp(1, 160));
        line.push(4000, &ramp(501, 10));
        assert_eq!(line.take(4000, 10), ramp(501, 10));
        assert_eq!(line.take(4010, 10), vec![0.0; 10]);
    }

    #[test]
    fn the_line_keeps_at_most_a_second() {
        let mut line = PlayedLine::default();
        for i in 0..200 {
            line.push(i * 160, &vec![1.0; 160]);
        }
        assert_eq!(line.samples.len(), MAX_SAMPLES);
        assert_eq!(line.start, 200 * 160 - MAX_SAMPLES as i64);
    }

    /// An hour of 10 ms reads from a device whose clock runs `ppm` apart from the wall
    /// clock, with `lost` samples lost (an overrun) half-way: the worst error of the
    /// clock's time for the newest sample (ms, + late), outside the first 10 s after the
    /// loss.
    fn worst_error_ms(ppm: f64, lost: usize) -> (f64, f64) {
        let mut clock = CaptureClock::default();
        let (mut delivered, mut owed, mut framed) = (0u64, 0.0f64, 0u64);
        let (mut early, mut late) = (0.0f64, 0.0f64);
        let reads = 360_000i64;
        for i in 1..=reads {
            let now = 1_000_000_000 + i * 160;
            owed += 160.0 * (1.0 + ppm / 1e6);
            let mut n = owed as u64;
            owed -= n as f64;
            if i == reads / 2 {
                n = n.saturating_sub(lost as u64);
            }
            delivered += n;
            clock.read(now, (delivered - framed) as usize);
            while delivered - framed >= 160 {
                clock.frame(160);
                framed += 160;
            }
            let Some(epoch) = clock.epoch_us(framed) else {
                panic!("no time after a read");
            };
            let t = epoch + micros(delivered as i64);
            let settling = (reads / 2..reads / 2 + 1_000).contains(&i);
            if !settling {
                let error = (micros(now) - t) as f64 / 1000.0;
                early = early.min(error);
                late = late.max(error);
            }
        }
        (early, late)
    }

    #[test]
    fn sample_times_stay_on_the_wall_clock_for_an_hour_of_a_drifting_or_lossy_device() {
        for (ppm, lost) in [(250.0, 0), (-250.0, 0), (0.0, 8_000), (100.0, 8_000)] {
            let (early, late) = worst_error_ms(ppm, lost);
            println!("{ppm} ppm, {lost} samples lost: {early:.1} to {late:.1} ms");
            // A count of samples alone would be 900 ms off at 250 ppm, 500 ms after the loss.
            assert!(
                early >= -6.0 && late <= 70.0,
                "{ppm} ppm, {lost} lost: {early:.1} to {late:.1} ms from the wall clock"
            );
        }
    }

    #[test]
    fn the_capture_clock_counts_samples_and_follows_the_wall_clock_when_they_part() {
        let mut clock = CaptureClock::default();
        // 30 ms read at 10 ms past: 480 samples pending, the first captured at 160 - 480.
        clock.read(10 * TICKS_PER_MS, 480);
        assert_eq!(clock.frame(160), -320);
        assert_eq!(clock.frame(160), -160);
        // Reads late by a busy thread do not move it.
        for i in 0..LAG_READS as i64 {
            clock.read(i * 160 + 800, 160);
            clock.frame(160);
        }
        assert_eq!(clock.frame(160), LAG_READS as i64 * 160);
        // A clock a little ahead of the samples is left; one that ran further ahead is set
        // back at once.
        let next = LAG_READS as i64 * 160 + 160;
        clock.read(next + 160 - AHEAD_SLACK, 160);
        assert_eq!(clock.frame(160), next);
        let next = next + 160;
        clock.read(next + 160 - AHEAD_SLACK - 1, 160);
        assert_eq!(clock.frame(160), next - AHEAD_SLACK - 1);
        // One that fell behind by more than an input buffers is set after a stretch.
        let mut c = CaptureClock::default();
        c.read(0, 0);
        for i in 1..=LAG_READS as i64 {
            c.frame(160);
            c.read(i * 160 + MAX_LAG + 500, 0);
        }
        assert_eq!(c.frame(160), LAG_READS as i64 * 160 + MAX_LAG + 500);
    }
}
