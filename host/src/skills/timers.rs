//! The timers: set in a dialog by the timer skill, kept by the dialog manager across
//! dialogs, rung by its alarm task (`dialog::alarm`) when they end.
//!
//! A timer runs until its end, then rings until it is silenced ("stop", "cancel the timer")
//! or the alarm gives up (`[dialog] timer_alarm_timeout_ms`). Every method takes the
//! moment it acts at, so tests run on a fake clock.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Timers at once, at most.
pub const MAX_TIMERS: usize = 20;
/// The longest timer.
pub const MAX_LENGTH: Duration = Duration::from_secs(24 * 3600);
/// The shortest timer.
pub const MIN_LENGTH: Duration = Duration::from_secs(1);

/// One timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    /// Counts from 1, in the order they were set.
    pub id: u32,
    /// As it was set.
    pub length: Duration,
    pub ends: Instant,
}

/// A timer that has ended and rings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ringing {
    pub timer: Timer,
    /// How often the alarm has been said so far.
    pub rings: u32,
}

/// Why a timer was not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetError {
    TooShort,
    TooLong,
    TooMany,
}

#[derive(Debug, Default)]
struct Board {
    running: Vec<Timer>,
    ringing: Vec<Ringing>,
    next_id: u32,
}

/// The timers, shared by the dialogs (which set, list and cancel them) and the alarm task
/// (which rings them).
#[derive(Debug, Default)]
pub struct Timers {
    board: Mutex<Board>,
    changed: Notify,
}

impl Timers {
    fn board(&self) -> MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Tells the alarm task to look again (the timers changed, or a dialog ended).
    pub fn touch(&self) {
        self.changed.notify_one();
    }

    /// Resolves after the timers changed (set, cancelled, silenced) since the last call.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Starts a timer of `length` at `now`.
    pub fn set(&self, length: Duration, now: Instant) -> Result<Timer, SetError> {
        if length < MIN_LENGTH {
            return Err(SetError::TooShort);
        }
        if length > MAX_LENGTH {
            return Err(SetError::TooLong);
        }
        let mut b = self.board();
        if b.running.len() + b.ringing.len() >= MAX_TIMERS {
            return Err(SetError::TooMany);
        }
        b.next_id += 1;
        let timer = Timer {
            id: b.next_id,
            length,
            ends: now + length,
        };
        b.running.push(timer.clone());
        drop(b);
        self.touch();
        Ok(timer)
    }

    /// The running timers with the time each has left at `now`, the first to end first.
    pub fn running(&self, now: Instant) -> Vec<(Timer, Duration)> {
        let mut all: Vec<(Timer, Duration)> = self
            .board()
            .running
            .iter()
            .map(|t| (t.clone(), t.ends.saturating_duration_since(now)))
            .collect();
        all.sort_by_key(|(t, _)| t.ends);
        all
    }

    /// Cancels the running timers `which` picks; returns them.
    pub fn cancel(&self, which: impl Fn(&Timer) -> bool) -> Vec<Timer> {
        let mut b = self.board();
        let (gone, kept) = std::mem::take(&mut b.running).into_iter().partition(which);
        b.running = kept;
        drop(b);
        self.touch();
        gone
    }

    /// The timers that ring.
    pub fn ringing(&self) -> Vec<Ringing> {
        self.board().ringing.clone()
    }

    /// Silences every ringing timer; returns them.
    pub fn silence(&self) -> Vec<Ringing> {
        let gone = std::mem::take(&mut self.board().ringing);
        self.touch();
        gone
    }

    /// Timers that have ended by `now` start ringing; returns them.
    pub fn take_due(&self, now: Instant) -> Vec<Timer> {
        let mut b = self.board();
        let (due, running): (Vec<Timer>, Vec<Timer>) = std::mem::take(&mut b.running)
            .into_iter()
            .partition(|t| t.ends <= now);
        b.running = running;
        b.ringing
            .extend(due.iter().cloned().map(|timer| Ringing { timer, rings: 0 }));
        due
    }

    /// Timers that have rung for `after` by `now` stop ringing; returns them.
    pub fn expire(&self, now: Instant, after: Duration) -> Vec<Ringing> {
        let mut b = self.board();
        let (gone, ringing): (Vec<Ringing>, Vec<Ringing>) = std::mem::take(&mut b.ringing)
            .into_iter()
            .partition(|r| r.timer.ends + after <= now);
        b.ringing = ringing;
        gone
    }

    /// The alarm was said for the ringing timers `ids`.
    pub fn rang(&self, ids: &[u32]) {
        for r in self.board().ringing.iter_mut() {
            if ids.contains(&r.timer.id) {
                r.rings += 1;
            }
        }
    }

    /// When the next running timer ends.
    pub fn next_end(&self) -> Option<Instant> {
        self.board().running.iter().map(|t| t.ends).min()
    }

    /// No timer runs or rings.
    pub fn is_idle(&self) -> bool {
        let b = self.board();
        b.running.is_empty() && b.ringing.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn timers_run_ring_and_are_silenced_on_a_fake_clock() {
        let timers = Timers::default();
        let t0 = Instant::now();
        let five = timers.set(5 * S, t0).unwrap();
        let three = timers.set(3 * S, t0 + S).unwrap();
        assert_eq!((five.id, three.id), (1, 2));
        assert_eq!(timers.next_end(), Some(t0 + 4 * S));
        let left: Vec<(u32, Duration)> = timers
            .running(t0 + 2 * S)
            .into_iter()
            .map(|(t, left)| (t.id, left))
            .collect();
        assert_eq!(left, [(2, 2 * S), (1, 3 * S)], "the first to end first");

        assert!(timers.take_due(t0 + 3 * S).is_empty());
        assert_eq!(timers.take_due(t0 + 4 * S), std::slice::from_ref(&three));
        assert_eq!(
            timers.ringing(),
            [Ringing {
                timer: three.clone(),
                rings: 0
            }]
        );
        timers.rang(&[2]);
        assert_eq!(timers.ringing()[0].rings, 1);
        assert_eq!(timers.next_end(), Some(t0 + 5 * S));
        assert!(!timers.is_idle());

        assert_eq!(timers.silence().len(), 1);
        assert!(timers.ringing().is_empty());
        assert_eq!(timers.running(t0 + 4 * S).len(), 1, "the other one runs on");
        assert_eq!(timers.cancel(|_| true), [five]);
        assert!(timers.is_idle());
        assert_eq!(timers.next_end(), None);
    }

    #[test]
    fn an_alarm_nobody_stops_gives_up() {
        let timers = Timers::default();
        let t0 = Instant::now();
        timers.set(S, t0).unwrap();
        timers.take_due(t0 + S);
        assert!(timers.expire(t0 + 60 * S, 60 * S).is_empty());
        assert_eq!(timers.expire(t0 + 61 * S, 60 * S).len(), 1);
        assert!(timers.is_idle());
    }

    #[test]
    fn limits() {
        let timers = Timers::default();
        let t0 = Instant::now();
        assert_eq!(
            timers.set(Duration::from_millis(500), t0),
            Err(SetError::TooShort)
        );
        assert_eq!(timers.set(MAX_LENGTH + S, t0), Err(SetError::TooLong));
        for _ in 0..MAX_TIMERS {
            timers.set(MAX_LENGTH, t0).unwrap();
        }
        assert_eq!(timers.set(S, t0), Err(SetError::TooMany));
    }

    #[tokio::test]
    async fn a_change_wakes_the_alarm_task() {
        let timers = Timers::default();
        timers.set(S, Instant::now()).unwrap();
        // The permit is kept until the task waits.
        tokio::time::timeout(S, timers.changed()).await.unwrap();
    }
}
