//! Loading a plugin library through the ABI inside the test process.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;
use std::time::Duration;

use voicehost::config::Config;
use voicehost::plugin::{PluginLibrary, StartEnv};
use voicehost_plugin_api::HealthStatus;
use voicehost_tests::{artefact, free_port};

fn logger_slot(port: u16) -> voicehost::config::PluginSlot {
    let text = format!("[logger]\nport = {port}\n");
    let config = Config::parse(&text, std::path::Path::new("t.txt")).unwrap();
    config
        .plugin(voicehost::service::Service::Logger)
        .unwrap()
        .clone()
}

#[test]
fn unwritable_log_dir_gives_not_serving_with_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let library = PluginLibrary::load(&artefact("libvoicehost_plugin_logger.so")).unwrap();
    assert_eq!(library.info.kind.as_str(), "logger");
    assert_eq!(
        library.info.abi_version.as_str(),
        voicehost_plugin_api::ABI_VERSION
    );
    let env = StartEnv {
        bind_addr: "127.0.0.1".into(),
        log_dir: file.join("logs"),
        data_dir: PathBuf::from("models"),
    };
    let mut instance = library
        .start(
            &logger_slot(free_port()),
            &env,
            voicehost::applog::PLUGIN_LOG_SINK,
        )
        .unwrap();
    let report = instance.health();
    assert_eq!(report.status, HealthStatus::NotServing);
    assert!(
        report.detail.as_str().contains("cannot open")
            && report.detail.as_str().contains("log_dir"),
        "{}",
        report.detail
    );
    instance.stop(Duration::from_secs(2)).unwrap();
}

#[test]
fn non_loopback_bind_is_refused_by_the_plugin() {
    let library = PluginLibrary::load(&artefact("libvoicehost_plugin_logger.so")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = StartEnv {
        bind_addr: "0.0.0.0".into(),
        log_dir: dir.path().to_owned(),
        data_dir: PathBuf::from("models"),
    };
    let err = library
        .start(
            &logger_slot(free_port()),
            &env,
            voicehost::applog::PLUGIN_LOG_SINK,
        )
        .unwrap_err();
    assert!(err.to_string().contains("loopback only"), "{err}");
}

#[test]
fn a_non_plugin_library_is_refused() {
    let err =
        PluginLibrary::load(std::path::Path::new("/lib/x86_64-linux-gnu/libm.so.6")).unwrap_err();
    assert!(
        err.to_string().contains("exports no voicehost root module"),
        "{err}"
    );
    let err = PluginLibrary::load(std::path::Path::new("/nonexistent/libx.so")).unwrap_err();
    assert!(err.to_string().contains("no such file"), "{err}");
}
