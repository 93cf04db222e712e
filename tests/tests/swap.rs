//! Hot swap in both isolation modes: v1 → v2 while clients keep checking the port, the
//! other services never leave SERVING, and swaps to incompatible or crashing libraries
//! leave the running version in place. Also the swap on a changed library file.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use voicehost_proto::loader::v1::loader_service_client::LoaderServiceClient;
use voicehost_proto::loader::v1::{ReloadPluginRequest, ServiceState};
use voicehost_tests::{
    Setup, artefact, channel, free_port, service_info, wait_app_events, wait_for_text,
};

/// Checks `port` every 2 ms until `stop`; returns the longest run of failed checks.
async fn watch(port: u16, stop: Arc<AtomicBool>) -> Duration {
    let mut client = HealthClient::new(channel(port));
    let mut longest = Duration::ZERO;
    let mut down_since: Option<Instant> = None;
    while !stop.load(Ordering::SeqCst) {
        let ok = tokio::time::timeout(
            Duration::from_millis(200),
            client.check(HealthCheckRequest::default()),
        )
        .await
        .is_ok_and(|r| r.is_ok_and(|r| r.get_ref().status == 1));
        match (ok, down_since) {
            (false, None) => down_since = Some(Instant::now()),
            (true, Some(since)) => {
                longest = longest.max(since.elapsed());
                down_since = None;
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    if let Some(since) = down_since {
        longest = longest.max(since.elapsed());
    }
    longest
}

async fn swap_v1_to_v2_and_refuse_bad_builds(isolation: &str) {
    let mut setup = Setup::new();
    let tts = free_port();
    setup.section(
        "tts",
        &[
            ("library", "libvoicehost_fixture_misbehave.so"),
            ("port", &tts.to_string()),
            ("isolation", isolation),
        ],
    );
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(30));
    let mut admin = LoaderServiceClient::new(channel(setup.admin_port));
    assert_eq!(service_info(setup.admin_port, "tts").await.version, "0.1.0");

    let stop = Arc::new(AtomicBool::new(false));
    let tts_gap = tokio::spawn(watch(tts, stop.clone()));
    let logger_gap = tokio::spawn(watch(setup.logger_port, stop.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let swapped = admin
        .reload_plugin(ReloadPluginRequest {
            name: "tts".into(),
            library_path: artefact("libvoicehost_fixture_v2.so").display().to_string(),
            force: false,
        })
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::SeqCst);
    let (tts_gap, logger_gap) = (tts_gap.await.unwrap(), logger_gap.await.unwrap());
    assert_eq!(swapped.version, "2.0.0");
    assert_eq!(swapped.state(), ServiceState::Serving);
    assert_eq!(logger_gap, Duration::ZERO, "the logger never left SERVING");
    assert!(tts_gap < Duration::from_secs(2), "swap gap {tts_gap:?}");
    eprintln!("hot swap gap ({isolation}): {} ms", tts_gap.as_millis());
    let info = service_info(setup.admin_port, "tts").await;
    assert_eq!(info.version, "2.0.0");
    assert!(info.library_path.contains("v2") || isolation == "in_process");

    // Incompatible and crashing builds are refused; v2 keeps serving.
    for (library, code, why) in [
        (
            "libvoicehost_fixture_wrong_abi.so",
            Code::FailedPrecondition,
            "ABI types do not match",
        ),
        (
            "libvoicehost_fixture_abi_v2.so",
            Code::FailedPrecondition,
            "plugin ABI 2.0.0",
        ),
        (
            "libvoicehost_fixture_crashing.so",
            Code::Unavailable,
            "the previous one serves again",
        ),
    ] {
        let err = admin
            .reload_plugin(ReloadPluginRequest {
                name: "tts".into(),
                library_path: artefact(library).display().to_string(),
                force: true,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{library}: {err}");
        assert!(err.message().contains(why), "{library}: {err}");
        let info = service_info(setup.admin_port, "tts").await;
        assert_eq!(
            (info.state(), info.version.as_str()),
            (ServiceState::Serving, "2.0.0"),
            "after {library}"
        );
    }
    wait_app_events(
        &setup.log_dir().join("app.log"),
        &["swap_done", "swap_refused", "swap_failed"],
        Duration::from_secs(5),
    );
    host.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swap_in_a_worker_process() {
    swap_v1_to_v2_and_refuse_bad_builds("process").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swap_in_process() {
    swap_v1_to_v2_and_refuse_bad_builds("in_process").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_library_file_is_swapped_in() {
    let mut setup = Setup::new();
    let plugin = setup.dir.path().join("tts-plugin.so");
    std::fs::copy(artefact("libvoicehost_fixture_misbehave.so"), &plugin).unwrap();
    setup.loader("watch_plugins", "true");
    setup.section(
        "tts",
        &[
            ("library", plugin.to_str().unwrap()),
            ("port", &free_port().to_string()),
        ],
    );
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(30));
    // A build drops the new file next to the old and renames it over (atomic).
    let staged = setup.dir.path().join("tts-plugin.so.new");
    std::fs::copy(artefact("libvoicehost_fixture_v2.so"), &staged).unwrap();
    std::fs::rename(&staged, &plugin).unwrap();
    wait_for_text(
        &setup.log_dir().join("app.log"),
        "\"swap_done\"",
        Duration::from_secs(10),
    );
    assert_eq!(service_info(setup.admin_port, "tts").await.version, "2.0.0");
    host.terminate();
}
