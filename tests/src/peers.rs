//! The reference implementations some tests and benchmarks compare against, run from a
//! Python virtual environment of their own.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::workspace_root;

/// Python for the reference implementations the benchmarks and the kwd parity test compare
/// against: `peers-venv` in `$VOICEHOST_CACHE` (default `~/.cache/voicehost`), created and
/// given `packages` (pinned `name==version`, from PyPI) when `import` fails.
pub fn peer_python(import: &str, packages: &[&str]) -> PathBuf {
    let cache = std::env::var_os("VOICEHOST_CACHE").map_or_else(
        || {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap()
                .join(".cache/voicehost")
        },
        PathBuf::from,
    );
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
