//! How many CPU cores other programs leave free right now, for `threads = 0`:
//! whisper.cpp's threads spin-wait for each other, so a second thread makes a
//! transcription ~40 % faster when a core is free and many times slower when something
//! else holds it (`stt_wer` bench). A sampler thread reads the kernel's CPU time counters
//! (`/proc/stat`, and this process's own in `/proc/self/stat`) every [`PERIOD`]; each
//! transcription takes a thread per core that was idle or this process's over the last two
//! periods (what stt itself used, the last transcription among it, is there for the next).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// How often the counters are read.
const PERIOD: Duration = Duration::from_millis(200);
/// The most threads `threads = 0` gives one transcription: tiny and base gain little
/// beyond it.
pub const AUTO_MAX: usize = 4;
/// Idle capacity (in cores) that counts as a whole core: a core ~70 % idle is mostly free
/// (the capture thread and the wake-word model take a few percent of one).
const WHOLE_CORE: f32 = 0.7;

/// CPU time so far, in the kernel's ticks summed over every core.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Times {
    /// Idle (and waiting for I/O), or spent by this process.
    free: u64,
    total: u64,
}

/// Parses the first (`cpu`, all cores) line of `/proc/stat`: user, nice, system, idle,
/// iowait, irq, softirq, steal (guest time is counted in user already).
fn parse(stat: &str) -> Option<Times> {
    let line = stat.lines().next()?;
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let values: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if values.len() < 5 {
        return None;
    }
    Some(Times {
        free: values[3] + values[4],
        total: values.iter().sum(),
    })
}

/// A process's user and system time (ticks) from its `/proc/<pid>/stat`: the 14th and
/// 15th fields, counted after the command name's closing parenthesis (it may hold spaces).
fn parse_own(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

fn read() -> Option<Times> {
    let all = parse(&std::fs::read_to_string("/proc/stat").ok()?)?;
    let own = parse_own(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    Some(Times {
        free: all.free + own,
        total: all.total,
    })
}

/// Free cores between two readings, of `cores` in all.
fn idle_between(from: Times, to: Times, cores: usize) -> Option<f32> {
    let total = to.total.checked_sub(from.total).filter(|t| *t > 0)?;
    let free = to.free.saturating_sub(from.free).min(total);
    Some(free as f32 / total as f32 * cores as f32)
}

/// Threads for one transcription with `idle` cores free: one per whole free core, at
/// least 1, at most [`AUTO_MAX`].
pub fn threads_for(idle: f32) -> usize {
    ((idle + 1.0 - WHOLE_CORE).floor().max(1.0) as usize).min(AUTO_MAX)
}

/// The idle cores of the last two sampling periods, kept up to date by a thread of its
/// own while any clone lives.
#[derive(Debug, Clone)]
pub struct IdleCores {
    /// Free cores × 1000; `u32::MAX` until measured.
    idle_milli: Arc<AtomicU32>,
}

impl IdleCores {
    /// Starts the sampler; `None` where the counters cannot be read (not Linux), or no
    /// thread can be started.
    pub fn start() -> Option<IdleCores> {
        let first = read()?;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let idle_milli = Arc::new(AtomicU32::new(u32::MAX));
        let weak = Arc::downgrade(&idle_milli);
        std::thread::Builder::new()
            .name("vh-stt-cpu".to_owned())
            .spawn(move || {
                let mut readings = [first, first];
                loop {
                    std::thread::sleep(PERIOD);
                    let Some(owner) = weak.upgrade() else { return };
                    let Some(now) = read() else { return };
                    if let Some(idle) = idle_between(readings[0], now, cores) {
                        owner.store((idle * 1000.0) as u32, Ordering::Relaxed);
                    }
                    readings = [readings[1], now];
                }
            })
            .ok()?;
        Some(IdleCores { idle_milli })
    }

    /// Cores idle or this process's over the last ~0.4 s; `None` before the first
    /// measurement.
    pub fn now(&self) -> Option<f32> {
        match self.idle_milli.load(Ordering::Relaxed) {
            u32::MAX => None,
            milli => Some(milli as f32 / 1000.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_all_cores_line_is_read() {
        let stat = "cpu  100 5 50 800 20 1 2 3 7 0\ncpu0 50 2 25 400 10 0 1 1 3 0\nintr 1 2\n";
        assert_eq!(
            parse(stat),
            Some(Times {
                free: 820,
                total: 981
            })
        );
        assert_eq!(parse("intr 1 2\n"), None);
        assert_eq!(parse("cpu 1 2\n"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn idle_cores_are_the_idle_share_of_every_core() {
        let from = Times {
            free: 1000,
            total: 2000,
        };
        let to = Times {
            free: 1150,
            total: 2200,
        };
        assert_eq!(idle_between(from, to, 2), Some(1.5));
        assert_eq!(idle_between(to, to, 2), None, "no time passed");
    }

    #[test]
    fn a_process_time_is_read_past_its_name() {
        let stat =
            "4242 (vh worker (stt)) S 1 4242 4242 0 -1 4194560 900 0 0 0 170 30 0 0 20 0 9 0";
        assert_eq!(parse_own(stat), Some(200));
        assert_eq!(parse_own("4242 (x) S 1"), None);
    }

    #[test]
    fn a_thread_per_mostly_free_core() {
        assert_eq!(threads_for(0.0), 1);
        assert_eq!(threads_for(0.9), 1);
        assert_eq!(threads_for(1.4), 1);
        assert_eq!(threads_for(1.75), 2);
        assert_eq!(threads_for(2.0), 2);
        assert_eq!(threads_for(15.0), AUTO_MAX);
    }

    #[test]
    fn the_sampler_measures_this_machine() {
        let Some(idle) = IdleCores::start() else {
            return; // no /proc/stat here
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while idle.now().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f32;
        let now = idle.now().expect("a measurement within 10 s");
        assert!((0.0..=cores + 0.01).contains(&now), "{now} idle of {cores}");
    }
}
