//! The files the logger owns: app.log with size rotation, and dialog transcripts.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `app.log` and its rotated predecessors `app.log.1` (newest) … `app.log.<keep>`.
#[derive(Debug)]
pub struct AppLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    keep: u32,
}

impl AppLog {
    /// Creates (or resets) the log and removes rotated files of an earlier run.
    pub fn open(dir: &Path, name: &str, max_bytes: u64, keep: u32) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let path = dir.join(name);
        for n in 1..=keep.max(1) + 100 {
            let old = rotated(&path, n);
            if old.exists() {
                fs::remove_file(old)?;
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)?;
        Ok(Self {
            path,
            file,
            size: 0,
            max_bytes,
            keep,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line (a newline is added), rotating first if it would not fit.
    pub fn write_line(&mut self, line: &str) -> io::Result<()> {
        let len = line.len() as u64 + 1;
        if self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.file.write_all(&buf)?;
        self.size += len;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.keep > 0 {
            let oldest = rotated(&self.path, self.keep);
            if oldest.exists() {
                fs::remove_file(&oldest)?;
            }
            for n in (1..self.keep).rev() {
                let from = rotated(&self.path, n);
                if from.exists() {
                    fs::rename(&from, rotated(&self.path, n + 1))?;
                }
            }
            fs::rename(&self.path, rotated(&self.path, 1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Dialog ids: 16 lowercase hex digits, so an id can never name another path.
pub fn is_dialog_id(id: &str) -> bool {
    id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Open dialog transcripts.
#[derive(Debug)]
pub struct Dialogs {
    dir: PathBuf,
    open: HashMap<String, File>,
}

/// Transcripts kept open at once; older ones are reopened from disk when written again.
const MAX_OPEN: usize = 32;

impl Dialogs {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            open: HashMap::new(),
        }
    }

    /// Creates a new transcript file, returning its id and path.
    pub fn create(&mut self) -> io::Result<(String, PathBuf)> {
        for _ in 0..8 {
            let id = new_id();
            let path = self
                .dir
                .join(format!("dialog_{}_{id}.log", timestamp_for_name()));
            match OpenOptions::new().create_new(true).append(true).open(&path) {
                Ok(file) => {
                    if self.open.len() >= MAX_OPEN {
                        self.open.clear();
                    }
                    self.open.insert(id.clone(), file);
                    return Ok((id, path));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("could not create a unique dialog file"))
    }

    /// Appends `line` to dialog `id`. `Ok(false)` when no such dialog exists.
    pub fn append(&mut self, id: &str, line: &str) -> io::Result<bool> {
        if !is_dialog_id(id) {
            return Ok(false);
        }
        if !self.open.contains_key(id) {
            let Some(path) = self.find(id)? else {
                return Ok(false);
            };
            if self.open.len() >= MAX_OPEN {
                self.open.clear();
            }
            let file = OpenOptions::new().append(true).open(path)?;
            self.open.insert(id.to_owned(), file);
        }
        let Some(file) = self.open.get_mut(id) else {
            return Ok(false);
        };
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        // One write per line, unbuffered: once acknowledged, it is in the file.
        file.write_all(&buf)?;
        Ok(true)
    }

    /// The transcript of `id` on disk (after a logger restart), if any.
    fn find(&self, id: &str) -> io::Result<Option<PathBuf>> {
        let suffix = format!("_{id}.log");
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("dialog_") && name.ends_with(&suffix) {
                return Ok(Some(entry.path()));
            }
        }
        Ok(None)
    }
}

fn new_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// `20261121T053000` (UTC), for file names.
fn timestamp_for_name() -> String {
    let text = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    text.trim_end_matches('Z').replace(['-', ':'], "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_log_rotates_and_trims() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AppLog::open(dir.path(), "app.log", 100, 2).unwrap();
        for i in 0..20 {
            log.write_line(&format!("line {i:02} ........................"))
                .unwrap();
        }
        let p = dir.path();
        assert!(p.join("app.log").exists());
        assert!(p.join("app.log.1").exists());
        assert!(p.join("app.log.2").exists());
        assert!(!p.join("app.log.3").exists(), "keep = 2 trims older files");
        let current = fs::read_to_string(p.join("app.log")).unwrap();
        assert!(current.len() <= 100);
        assert!(current.ends_with("line 19 ........................\n"));
        let prev = fs::read_to_string(p.join("app.log.1")).unwrap();
        assert!(prev.contains("line 17"));
    }

    #[test]
    fn app_log_is_reset_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AppLog::open(dir.path(), "app.log", 1000, 2).unwrap();
        log.write_line("old").unwrap();
        fs::write(dir.path().join("app.log.1"), "older").unwrap();
        let _log = AppLog::open(dir.path(), "app.log", 1000, 2).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("app.log")).unwrap(), "");
        assert!(!dir.path().join("app.log.1").exists());
    }

    #[test]
    fn dialogs_append_in_order_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut dialogs = Dialogs::new(dir.path());
        let (id, path) = dialogs.create().unwrap();
        assert!(is_dialog_id(&id));
        assert!(dialogs.append(&id, "USER: hi").unwrap());
        let mut fresh = Dialogs::new(dir.path());
        assert!(fresh.append(&id, "ASSISTANT: hello").unwrap());
        assert_eq!(
            fs::read_to_string(path).unwrap(),
            "USER: hi\nASSISTANT: hello\n"
        );
        assert!(!fresh.append("0123456789abcdef", "USER: x").unwrap());
        assert!(!fresh.append("../../etc/passwd", "USER: x").unwrap());
    }
}
