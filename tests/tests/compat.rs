//! Plugin compatibility across versions: `voicehost plugin info` on the built-in plugins, on
//! a plugin built against an older compatible plugin-api (0.1.0, the frozen ABI 1.0 contract
//! in `plugins/fixtures/abi-1.0`, a cargo project of its own, built here into the
//! workspace's target directory), on the refused fixtures and on files that are no plugin
//! at all; and the loader itself on the 0.1.0 plugin.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use voicehost::plugin::PluginLibrary;
use voicehost_plugin_api::ABI_VERSION;
use voicehost_plugin_api::abi::PLUGIN_API_VERSION;
use voicehost_tests::{Setup, artefact, build_out_of_tree, build_project, workspace_root};

/// Builds `plugins/fixtures/abi-1.0` once per test run; returns its plugin library.
fn abi_1_0_plugin() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        build_out_of_tree(
            "plugins/fixtures/abi-1.0",
            "libvoicehost_fixture_abi_1_0.so",
            true,
        )
    })
}

/// `voicehost plugin info FILE` as text and as JSON: (exit code, text, JSON).
fn plugin_info(file: &Path) -> (i32, String, Value) {
    let run = |json: bool| {
        let mut cmd = Command::new(artefact("voicehost"));
        cmd.args(["plugin", "info"]).arg(file);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap(), format!("{text}{stderr}"))
    };
    let (code, text) = run(false);
    let (json_code, json) = run(true);
    assert_eq!(code, json_code, "{text}\n{json}");
    let value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    (code, text, value)
}

/// The line of `label` in the text output, after the label.
fn line<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{label}:")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {label}: line in\n{text}"))
}

#[test]
fn built_in_plugins_are_loadable_and_describe_themselves() {
    // One feature each that another service relies on.
    for (kind, feature) in [
        ("logger", "app_log_rotation"),
        ("tts", "render_reference"),
        ("stt", "audio_frames"),
    ] {
        let file = artefact(&format!("libvoicehost_plugin_{kind}.so"));
        let (code, text, json) = plugin_info(&file);
        assert_eq!(code, 0, "{text}");
        assert_eq!(line(&text, "loadable"), "yes", "{text}");
        assert_eq!(
            line(&text, "ABI"),
            format!("{ABI_VERSION} (host: {ABI_VERSION})")
        );
        assert_eq!(
            line(&text, "plugin-api"),
            format!("{PLUGIN_API_VERSION} (host: {PLUGIN_API_VERSION})")
        );
        assert_eq!(line(&text, "kind"), format!("{kind} (a slot of this host)"));

        assert_eq!(json["loadable"], true);
        assert_eq!(json["error"], Value::Null);
        assert_eq!(json["abi_version"], ABI_VERSION);
        assert_eq!(json["host"]["abi_version"], ABI_VERSION);
        assert_eq!(json["host"]["plugin_api_version"], PLUGIN_API_VERSION);
        let p = &json["plugin"];
        assert_eq!(p["name"], format!("voicehost-plugin-{kind}"));
        assert_eq!(p["kind"], kind);
        assert_eq!(p["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(p["plugin_api_version"], PLUGIN_API_VERSION);
        assert_eq!(p["proto_package"], format!("voicehost.{kind}.v1"));
        assert_eq!(p["kind_is_slot"], true);
        assert_eq!(p["proto_package_matches"], true);
        assert!(
            p["features"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == feature),
            "{kind} lists {feature}: {p}"
        );
    }
    assert_eq!(ABI_VERSION, "1.0.0");
}

#[test]
fn a_plugin_built_for_abi_1_0_still_loads() {
    let (code, text, json) = plugin_info(abi_1_0_plugin());
    assert_eq!(code, 0, "{text}");
    assert_eq!(line(&text, "name"), "voicehost-fixture-abi-1-0");
    assert_eq!(line(&text, "kind"), "tts (a slot of this host)");
    assert_eq!(line(&text, "ABI"), format!("1.0.0 (host: {ABI_VERSION})"));
    assert_eq!(
        line(&text, "plugin-api"),
        format!("0.1.0 (host: {PLUGIN_API_VERSION})")
    );
    assert_eq!(
        line(&text, "proto package"),
        "voicehost.tts.v1 (what this host speaks to tts)"
    );
    assert_eq!(line(&text, "loadable"), "yes");
    assert_eq!(json["loadable"], true);
    assert_eq!(json["abi_version"], "1.0.0");
    assert_eq!(json["plugin"]["plugin_api_version"], "0.1.0");
    assert_eq!(json["plugin"]["features"][0], "abi-1.0-fixture");
}

#[test]
fn the_loader_accepts_the_plugin_api_0_1_0_plugin_and_reads_api_versions() {
    let old = PluginLibrary::load(abi_1_0_plugin()).unwrap();
    assert_eq!(old.info.name.as_str(), "voicehost-fixture-abi-1-0");
    assert_eq!(old.info.abi_version.as_str(), "1.0.0");
    assert_eq!(old.api_version.as_deref(), Some("0.1.0"));
    old.check_kind("tts").unwrap();

    let current = PluginLibrary::load(&artefact("libvoicehost_plugin_logger.so")).unwrap();
    assert_eq!(current.api_version.as_deref(), Some(PLUGIN_API_VERSION));
}

#[test]
fn the_host_starts_the_abi_1_0_plugin_in_a_worker() {
    // Loading and the kind check pass in the worker; only the fixture's start refuses.
    let mut setup = Setup::new();
    setup.loader("restart_backoff_ms", "100,100,100");
    let port = voicehost_tests::free_port().to_string();
    let library = abi_1_0_plugin().display().to_string();
    setup.section("tts", &[("library", &library), ("port", &port)]);
    let (status, out) = setup.run_to_exit("run", Duration::from_secs(20));
    assert!(!status.success(), "{out}");
    assert!(out.contains("fixture: info only"), "{out}");
    assert!(!out.contains("refusing plugin"), "{out}");
}

#[test]
fn a_wrong_layout_is_refused_naming_the_types() {
    let (code, text, json) = plugin_info(&artefact("libvoicehost_fixture_wrong_abi.so"));
    assert_eq!(code, 1, "{text}");
    assert_eq!(
        line(&text, "loadable"),
        format!(
            "no — its ABI types do not match this host's (mismatched type in PluginMod: \
             expected PluginMod, found WrongMod); rebuild it against voicehost-plugin-api \
             {PLUGIN_API_VERSION} (ABI {ABI_VERSION})"
        )
    );
    assert_eq!(line(&text, "ABI"), format!("1.0.0 (host: {ABI_VERSION})"));
    assert!(!text.contains("name:"), "{text}");
    assert_eq!(json["loadable"], false);
    assert_eq!(json["plugin"], Value::Null);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .starts_with("its ABI types do not match")
    );
}

#[test]
fn another_abi_major_is_refused_naming_both_versions() {
    let (code, text, json) = plugin_info(&artefact("libvoicehost_fixture_abi_v2.so"));
    assert_eq!(code, 1, "{text}");
    assert!(
        line(&text, "loadable").starts_with(&format!(
            "no — it implements plugin ABI 2.0.0, this host implements ABI {ABI_VERSION}; \
             a plugin loads only when its ABI major version is the host's (1.x, any minor)"
        )),
        "{text}"
    );
    assert_eq!(json["abi_version"], "2.0.0");
    assert_eq!(json["loadable"], false);
}

#[test]
fn files_that_are_no_plugin_are_named_clearly() {
    let dir = tempfile::tempdir().unwrap();

    let missing = dir.path().join("libmissing.so");
    let (code, text, json) = plugin_info(&missing);
    assert_eq!(code, 1, "{text}");
    assert!(
        line(&text, "loadable").starts_with("no — no such file"),
        "{text}"
    );
    assert_eq!(json["abi_version"], Value::Null);

    let not_elf = dir.path().join("libnotes.so");
    std::fs::write(&not_elf, "these are notes, not a shared library\n").unwrap();
    let (code, text, _) = plugin_info(&not_elf);
    assert_eq!(code, 1, "{text}");
    assert!(
        line(&text, "loadable").starts_with("no — the dynamic loader cannot open it ("),
        "{text}"
    );
    assert!(
        text.contains("a plugin is a shared library (.so)"),
        "{text}"
    );

    // A plugin cut short (a copy that stopped, a build still writing it): refused from its
    // ELF headers, before anything maps it.
    let whole = std::fs::read(artefact("libvoicehost_plugin_tts.so")).unwrap();
    let cut = dir.path().join("libcut.so");
    std::fs::write(&cut, &whole[..whole.len() / 3]).unwrap();
    let (code, text, json) = plugin_info(&cut);
    assert_eq!(code, 1, "{text}");
    assert!(
        line(&text, "loadable").starts_with("no — the file is incomplete"),
        "{text}"
    );
    assert_eq!(json["abi_version"], Value::Null, "{text}");

    // A real shared library that exports no voicehost root module.
    let libm = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
    ]
    .into_iter()
    .map(Path::new)
    .find(|p| p.is_file());
    if let Some(libm) = libm {
        let (code, text, _) = plugin_info(libm);
        assert_eq!(code, 1, "{text}");
        assert!(
            line(&text, "loadable").starts_with("no — it exports no voicehost root module"),
            "{text}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["plugin", "info"][..],
        &["plugin"],
        &["plugin", "info", "a", "b"],
    ] {
        let out = Command::new(artefact("voicehost"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

/// The last commit of voicehost-plugin-api 0.1.1, the release before the crate was split
/// into the ABI crate, the runtime and the SDKs.
const RELEASE_0_1_1: &str = "976df5fb7d";

/// A plugin built on voicehost-plugin-api 0.1.1 — the espeak example exactly as that
/// release had it (from git; only its package name is changed, so that its library does
/// not replace today's example in the shared target directory) — still loads in this host,
/// declares no config keys, and gets only slot and `x_` keys.
#[test]
fn a_plugin_built_on_plugin_api_0_1_1_still_loads() {
    let root = workspace_root();
    let git = |args: &[&str]| Command::new("git").current_dir(&root).args(args).output();
    let has_release = git(&["cat-file", "-e", &format!("{RELEASE_0_1_1}^{{commit}}")])
        .is_ok_and(|o| o.status.success());
    if !has_release {
        // A shallow clone: the release is not there to build.
        eprintln!("SKIPPED: commit {RELEASE_0_1_1} (plugin-api 0.1.1) is not in this clone");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let archive = git(&["archive", "--format=tar", RELEASE_0_1_1]).unwrap();
    assert!(archive.status.success());
    let mut untar = Command::new("tar")
        .args(["-x", "-C"])
        .arg(dir.path())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut untar.stdin.take().unwrap(), &archive.stdout).unwrap();
    assert!(untar.wait().unwrap().success());
    let example = dir.path().join("plugins/examples/tts-espeak");
    let manifest = example.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("version = \"0.1.1\""), "{text}");
    std::fs::write(
        &manifest,
        text.replace(
            "name = \"voicehost-tts-espeak\"",
            "name = \"voicehost-tts-espeak-0-1-1\"",
        ),
    )
    .unwrap();
    let library = build_project(&example, "libvoicehost_tts_espeak_0_1_1.so", false);

    let (code, text, json) = plugin_info(&library);
    assert_eq!(code, 0, "{text}");
    assert_eq!(json["loadable"], true, "{json}");
    assert_eq!(json["plugin"]["plugin_api_version"], "0.1.1", "{json}");
    assert!(json["plugin"]["config_keys"].is_null(), "{json}");
    assert!(text.contains("none declared"), "{text}");

    // Its x_ keys reach it; a key it cannot have declared is refused, saying why.
    let mut setup = Setup::new();
    setup.section(
        "tts",
        &[
            ("library", library.to_str().unwrap()),
            ("x_espeak_wpm", "150"),
            ("speed", "1.0"),
        ],
    );
    let (status, out) = setup.run_to_exit("validate", Duration::from_secs(30));
    assert_eq!(status.code(), Some(64), "{out}");
    assert!(
        out.contains(
            "[tts] speed: unknown key: voicehost-tts-espeak-0-1-1 declares no config keys"
        ),
        "{out}"
    );
    assert!(!out.contains("x_espeak_wpm"), "{out}");
}
