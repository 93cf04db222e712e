//! `voicehost validate` and `voicehost run` on bad and shipped configs.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use voicehost_tests::{Setup, artefact, build_out_of_tree, plugin_info_json, workspace_root};

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

/// A plugin's own keys are checked against what the library in the slot declares: the
/// out-of-tree example's key with a bad value and a misspelt key are refused with their
/// lines, before anything starts; a key of Kokoro that the example does not have is unknown.
#[test]
fn plugin_keys_are_checked_against_the_library_that_will_be_loaded() {
    let example = build_out_of_tree(
        "plugins/examples/tts-espeak",
        "libvoicehost_tts_espeak.so",
        false,
    );
    let mut setup = Setup::new();
    setup.section(
        "tts",
        &[
            ("library", example.to_str().unwrap()),
            ("x_espeak_wpm", "fast"),
            ("x_espeak_voice", "en-gb"),
            ("speeed", "1.0"),
            ("voice", "af_heart"),
        ],
    );
    let (status, out) = setup.run_to_exit("validate", Duration::from_secs(30));
    assert_eq!(status.code(), Some(64), "{out}");
    let config = setup.dir.path().join("config.txt");
    let text = std::fs::read_to_string(&config).unwrap();
    let line = |key: &str| {
        text.lines()
            .position(|l| l.starts_with(&format!("{key} =")))
            .unwrap()
            + 1
    };
    let at = |key: &str| format!("{}:{}: [tts] {key}: ", config.display(), line(key));
    for (key, message) in [
        (
            "x_espeak_wpm",
            "invalid value \"fast\": expected an integer from 80 to 450",
        ),
        (
            "speeed",
            "unknown key; valid keys in [tts] for voicehost-tts-espeak:",
        ),
        ("voice", "unknown key"),
    ] {
        let expected = format!("{}{message}", at(key));
        assert!(out.contains(&expected), "expected {expected:?} in:\n{out}");
    }
    assert!(
        !out.contains(&at("x_espeak_voice")),
        "a good value passes: {out}"
    );
}

/// config/config.txt documents every key the built-in plugins declare, in their sections
/// (`voicehost plugin info --json` lists what each library declares).
#[test]
fn the_shipped_config_documents_every_key_the_plugins_declare() {
    let text = std::fs::read_to_string(workspace_root().join("config/config.txt")).unwrap();
    for (section, library) in [
        ("logger", "libvoicehost_plugin_logger.so"),
        ("kwd", "libvoicehost_plugin_kwd.so"),
        ("stt", "libvoicehost_plugin_stt.so"),
        ("llm", "libvoicehost_plugin_llm.so"),
        ("tts", "libvoicehost_plugin_tts.so"),
        ("wyoming", "libvoicehost_plugin_wyoming.so"),
    ] {
        let (_, json) = plugin_info_json(&artefact(library));
        let keys = json["plugin"]["config_keys"]
            .as_array()
            .unwrap_or_else(|| panic!("{library} declares its keys: {json}"));
        assert!(!keys.is_empty(), "{library}");
        // The section's text: from its header to the next one.
        let start = text.find(&format!("\n[{section}]")).unwrap();
        let body = &text[start + 1..];
        let body = &body[..body[1..].find("\n[").map_or(body.len(), |e| e + 1)];
        for key in keys {
            let name = key["name"].as_str().unwrap();
            assert!(
                body.contains(&format!("\n{name} =")) || body.contains(&format!("# {name} =")),
                "[{section}] {name} ({library}) is not documented in config/config.txt"
            );
        }
    }
}
