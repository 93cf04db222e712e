//! `voicehost validate` and `voicehost run` on bad and shipped configs.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use voicehost_tests::{Setup, artefact};

#[test]
fn invalid_key_in_stt_exits_64_with_file_line_key() {
    let mut setup = Setup::new();
    setup.section("stt", &[("enabled", "false"), ("aec_enabld", "true")]);
    for cmd in ["validate", "run"] {
        let (status, out) = setup.run_to_exit(cmd, Duration::from_secs(10));
        assert_eq!(status.code(), Some(64), "{cmd}: {out}");
        let config = setup.dir.path().join("config.txt");
        let line = std::fs::read_to_string(&config)
            .unwrap()
            .lines()
            .position(|l| l.starts_with("aec_enabld"))
            .unwrap()
            + 1;
        let expected = format!("{}:{line}: [stt] aec_enabld: unknown key", config.display());
        assert!(
            out.contains(&expected),
            "{cmd}: expected {expected:?} in:\n{out}"
        );
    }
}

#[test]
fn shipped_config_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(artefact("voicehost"))
        .current_dir(&root)
        .args(["validate", "--config", "config/config.txt"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
