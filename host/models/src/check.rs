//! Checking model files on disk: size first, then the sha256, on every core at once (a warm
//! `voicehost models fetch` is mostly hashing, and must stay quick with a 650 MiB model).

use std::fs;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::manifest::ModelFile;
use super::progress::human_bytes;
use super::{FileState, ModelError, Store, sha256_file};

impl Store {
    /// Checks one file.
    pub fn file_state(&self, file: &ModelFile) -> Result<FileState, ModelError> {
        let mut states = self.file_states(&[file])?;
        Ok(states.pop().unwrap_or(FileState::Missing))
    }

    /// Checks `files`, one thread per core, largest first; the states come back in the
    /// order of `files`.
    pub fn file_states(&self, files: &[&ModelFile]) -> Result<Vec<FileState>, ModelError> {
        let mut order: Vec<usize> = (0..files.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(files[i].size));
        let total: u64 = files.iter().map(|f| f.size).sum();
        let task = self.progress.bytes(
            total,
            format!("checking {} file(s), {}", files.len(), human_bytes(total)),
        );
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, files.len().max(1));
        let next = AtomicUsize::new(0);
        let worker = || {
            let mut done = Vec::new();
            while let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                done.push((i, self.check(files[i], &|n| task.inc(n))));
            }
            done
        };
        let mut states: Vec<Option<FileState>> = vec![None; files.len()];
        let results = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect::<Vec<_>>()
        });
        for (i, state) in results.into_iter().flatten() {
            states[i] = Some(state?);
        }
        task.finish_quiet();
        states
            .into_iter()
            .zip(files)
            .map(|(state, file)| {
                state.ok_or_else(|| ModelError::Build {
                    path: file.path.clone(),
                    message: "checking it failed (a checker thread panicked)".to_owned(),
                })
            })
            .collect()
    }

    fn check(&self, file: &ModelFile, progress: &dyn Fn(u64)) -> Result<FileState, ModelError> {
        let path = self.path_of(file);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(FileState::Missing),
            Err(e) => return Err(ModelError::io(&path, e)),
        };
        if !meta.is_file() {
            return Ok(FileState::Corrupt("not a regular file".to_owned()));
        }
        if meta.len() != file.size {
            return Ok(FileState::Corrupt(format!(
                "{} bytes, expected {}",
                meta.len(),
                file.size
            )));
        }
        let Some(expected) = &file.sha256 else {
            return Ok(FileState::Unrecorded);
        };
        let (_, hash) = sha256_file(&path, progress)?;
        Ok(if &hash == expected {
            FileState::Present
        } else {
            FileState::Corrupt(format!("sha256 {hash}, expected {expected}"))
        })
    }
}
