//! Where the tests find things: the workspace root, the workspace-built binary and plugin
//! libraries in the target directory, and the fetched models.

use std::path::{Path, PathBuf};

/// `target/debug` (or whichever profile built the tests).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_owned()
}

/// Path of a workspace-built artefact, with a clear failure if it is missing.
pub fn artefact(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        path.display()
    );
    path
}

/// The workspace root (the directory holding `models/` and `config/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A file under the workspace's `models/`, with a clear failure if it was not fetched.
pub fn model(relative: &str) -> PathBuf {
    let path = workspace_root().join("models").join(relative);
    assert!(
        path.is_file(),
        "{} is missing: run `voicehost models fetch` (the README's set-up commands do)",
        path.display()
    );
    path
}

/// A file of an optional model (one the default `voicehost models fetch` leaves out),
/// fetched first with `voicehost models fetch --only NAME` when it is missing.
pub fn optional_model(name: &str, relative: &str) -> PathBuf {
    static FETCH: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    if !workspace_root().join("models").join(relative).is_file() {
        eprintln!("fetching the optional model {name}");
        let ok = std::process::Command::new(artefact("voicehost"))
            .args(["models", "fetch", "--only", name])
            .current_dir(workspace_root())
            .status()
            .unwrap()
            .success();
        assert!(ok, "`voicehost models fetch --only {name}` failed");
    }
    model(relative)
}

/// `voicehost plugin info --json LIBRARY`: whether it exited 0, and its report.
pub fn plugin_info_json(library: &Path) -> (bool, serde_json::Value) {
    let out = std::process::Command::new(artefact("voicehost"))
        .args(["plugin", "info", "--json"])
        .arg(library)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "plugin info {} printed no JSON ({e}):\n{}",
            library.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), json)
}
