//! Progress reporting: indicatif bars (on stderr) while a step runs when stderr is a
//! terminal; one plain line on stdout per finished step either way.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

/// Creates tasks; decides once whether stderr is a terminal.
#[derive(Debug, Clone)]
pub struct Progress {
    tty: bool,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// A task measured in bytes, `total` expected.
    pub fn bytes(&self, total: u64, message: String) -> Task {
        self.bytes_since(total, message, Instant::now())
    }

    /// [`Progress::bytes`] for a step that began at `started` (its line reports the time
    /// since then).
    pub fn bytes_since(&self, total: u64, message: String, started: Instant) -> Task {
        let bar = self.tty.then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{msg:48!} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {eta:>4}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(message.clone());
            bar
        });
        Task {
            bar,
            message,
            total,
            started,
        }
    }

    /// A line of its own, between tasks.
    pub fn line(&self, text: &str) {
        println!("{text}");
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

/// One step with a byte count.
#[derive(Debug)]
pub struct Task {
    bar: Option<ProgressBar>,
    message: String,
    total: u64,
    started: Instant,
}

impl Task {
    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    pub fn set(&self, pos: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(pos);
        }
    }

    /// Ends the task with an outcome line: `<message>: <outcome> (size, seconds)`.
    pub fn finish(self, outcome: &str) {
        let line = format!(
            "{}: {outcome} ({}, {:.1} s)",
            self.message,
            human_bytes(self.total),
            self.started.elapsed().as_secs_f64()
        );
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        println!("{line}");
    }

    /// Ends the task with `<message>: failed (seconds)`; the error follows separately.
    pub fn fail(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        println!(
            "{}: failed ({:.1} s)",
            self.message,
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Ends the task without a line (nothing worth reporting happened).
    pub fn finish_quiet(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `12.3 MiB`-style size.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
