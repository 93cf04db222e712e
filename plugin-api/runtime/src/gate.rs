//! The speech gate: speech the user is waiting to hear is synthesised before more text is
//! generated.
//!
//! On a machine whose few cores every service shares, the llm goes on writing a reply while
//! tts synthesises its first clause, and the two slow each other down: llama.cpp's threads
//! spin-wait for each other whenever one of them is preempted. On two cores the first clause
//! took 140-250 ms to synthesise beside the llm and about 100 ms alone; the text after it was
//! not needed for another second, while the clause played.
//!
//! So tts closes the gate while it synthesises ([`SpeechGate::close`]) and the llm, between
//! two tokens, waits while it is closed ([`SpeechGate::wait`]). The gate is an advisory file
//! lock (`flock`) on [`FILE_NAME`] in the log directory that every service of one host is
//! given: it works across plugin processes and within one, and the kernel opens it when a
//! holder dies.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The lock file's name in the log directory.
pub const FILE_NAME: &str = "speech-gate.lock";

/// How often a waiter looks at the gate again.
const POLL: Duration = Duration::from_millis(2);

/// One service's handle on the gate. Each handle is its own lock owner, so two handles in
/// one process exclude each other like two processes.
#[derive(Debug)]
pub struct SpeechGate {
    file: File,
    path: PathBuf,
}

/// The gate closed by one handle until this is dropped.
#[derive(Debug)]
#[must_use = "the gate opens again when this is dropped"]
pub struct Closed<'a> {
    gate: &'a SpeechGate,
}

impl SpeechGate {
    /// Opens (creating) the gate in `log_dir`, the directory the host gives every service.
    pub fn open(log_dir: &Path) -> io::Result<SpeechGate> {
        let path = log_dir.join(FILE_NAME);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(SpeechGate { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the gate until the returned guard is dropped; waits while another handle has
    /// it closed. `None` (and the work goes on ungated) if the lock cannot be taken at all.
    pub fn close(&self) -> Option<Closed<'_>> {
        self.file.lock().ok().map(|()| Closed { gate: self })
    }

    /// Whether another handle has the gate closed now.
    pub fn is_closed(&self) -> bool {
        match self.file.try_lock_shared() {
            Ok(()) => {
                let _ = self.file.unlock();
                false
            }
            Err(_) => true,
        }
    }

    /// Waits while the gate is closed: at most `max`, and only while `wanted()` (e.g. the
    /// client is still there). Returns how long it waited: zero when it did not (the gate
    /// was open, or the waiter no longer wanted).
    pub fn wait(&self, max: Duration, wanted: impl Fn() -> bool) -> Duration {
        let start = Instant::now();
        let mut waited = Duration::ZERO;
        while self.is_closed() && waited < max && wanted() {
            std::thread::sleep(POLL);
            waited = start.elapsed();
        }
        waited
    }
}

impl Drop for Closed<'_> {
    fn drop(&mut self) {
        let _ = self.gate.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gate's directory and two handles on it, tts's and the llm's.
    fn tts_and_llm() -> (tempfile::TempDir, SpeechGate, SpeechGate) {
        let dir = tempfile::tempdir().unwrap();
        let tts = SpeechGate::open(dir.path()).unwrap();
        let llm = SpeechGate::open(dir.path()).unwrap();
        (dir, tts, llm)
    }

    #[test]
    fn a_closed_gate_holds_a_waiter_until_it_opens() {
        let (_dir, tts, llm) = tts_and_llm();
        assert!(!llm.is_closed());
        assert_eq!(llm.wait(Duration::from_secs(5), || true), Duration::ZERO);

        let closed = tts.close().unwrap();
        assert!(llm.is_closed());
        let waiter = std::thread::spawn(move || llm.wait(Duration::from_secs(30), || true));
        std::thread::sleep(Duration::from_millis(200));
        drop(closed);
        let waited = waiter.join().unwrap();
        println!("waited {waited:?} for a gate closed 200 ms");
        assert!(waited >= Duration::from_millis(190), "{waited:?}");
        assert!(waited < Duration::from_secs(20), "{waited:?}");
    }

    #[test]
    fn a_waiter_gives_up_at_its_limit_or_when_no_longer_wanted() {
        let (_dir, tts, llm) = tts_and_llm();
        let _closed = tts.close().unwrap();

        let waited = llm.wait(Duration::from_millis(100), || true);
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
        assert_eq!(llm.wait(Duration::from_secs(30), || false), Duration::ZERO);
        assert!(llm.is_closed(), "waiting does not open the gate");
    }

    #[test]
    fn the_gate_opens_when_its_holder_goes_away() {
        let (dir, tts, llm) = tts_and_llm();
        let closed = tts.close().unwrap();
        assert!(llm.is_closed());
        std::mem::forget(closed); // never unlocked: the handle's file closes below
        drop(tts);
        assert!(!llm.is_closed());
        assert_eq!(llm.path(), dir.path().join(FILE_NAME));
    }

    #[test]
    fn a_missing_directory_is_an_error_that_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nowhere");
        let e = SpeechGate::open(&missing).unwrap_err();
        assert!(e.to_string().contains("nowhere"), "{e}");
    }
}
