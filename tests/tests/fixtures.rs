//! The host against plugins that misbehave: each failure is survived or reported clearly.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::TcpListener;
use std::time::{Duration, Instant};

use voicehost_proto::loader::v1::ServiceState;
use voicehost_proto::logger::v1::WriteAppRequest;
use voicehost_proto::logger::v1::logger_service_client::LoggerServiceClient;
use voicehost_tests::{Setup, channel, service_info, serving};

const EXIT_WITHIN: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_behaved_plugin_loads_starts_serves_and_stops() {
    let mut setup = Setup::new();
    let port = setup.fixture("ok", &[]);
    let mut host = setup.spawn();
    host.wait_ready();
    assert!(serving(port, "").await);
    let tts = service_info(setup.admin_port, "tts").await;
    assert_eq!(tts.state(), ServiceState::Serving);
    assert_eq!(tts.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(tts.features, vec!["fixture".to_owned()]);
    let status = host.terminate();
    assert!(status.success(), "{}", host.output());
    let out = host.output();
    let tts_stop = out
        .find("service_stopped service=tts")
        .expect("tts stopped");
    let logger_stop = out
        .find("service_stopped service=logger")
        .expect("logger stopped");
    assert!(tts_stop < logger_stop, "logger stops last:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_in_a_plugin_call_does_not_kill_the_host() {
    let mut setup = Setup::new();
    let port = setup.fixture("panic_rpc", &[]);
    let mut host = setup.spawn();
    host.wait_ready();
    let mut fixture = LoggerServiceClient::new(channel(port));
    for _ in 0..3 {
        let err = fixture
            .write_app(WriteAppRequest::default())
            .await
            .expect_err("the handler panics");
        // The handler's task dies, so the server resets the stream.
        assert_eq!(err.code(), tonic::Code::Cancelled, "{err}");
    }
    assert!(host.child.try_wait().unwrap().is_none(), "host still runs");
    assert!(
        serving(port, "").await,
        "the plugin keeps serving other calls"
    );
    assert!(
        serving(setup.logger_port, "").await,
        "other plugins unaffected"
    );
    let status = host.terminate();
    assert!(status.success(), "{}", host.output());
}

/// Runs a host with the fixture in `mode` and expects a non-zero exit whose output says
/// `expected`.
/// The phase is retried (quickly here) before the failure is FATAL.
fn expect_start_failure(mode: &str, extra: &[(&str, &str)], expected: &str) -> String {
    let mut setup = Setup::new();
    setup.loader("restart_backoff_ms", "100,100,100");
    setup.fixture(mode, extra);
    let started = Instant::now();
    let (status, out) = setup.run_to_exit("run", EXIT_WITHIN);
    assert!(!status.success(), "mode {mode} must fail:\n{out}");
    assert!(
        out.contains(expected),
        "mode {mode}: expected {expected:?} in:\n{out}"
    );
    assert!(out.contains("tts"), "the failing service is named:\n{out}");
    assert!(started.elapsed() < EXIT_WITHIN);
    out
}

#[test]
fn start_failure_is_reported() {
    expect_start_failure("fail_start", &[], "fixture asked to fail in start()");
}

#[test]
fn panic_in_start_is_caught_and_reported() {
    expect_start_failure(
        "panic_start",
        &[],
        "plugin panicked in start(): fixture panics in start() as configured",
    );
}

#[test]
fn hang_in_start_times_out() {
    let started = Instant::now();
    expect_start_failure(
        "hang_start",
        &[("start_timeout_ms", "1000")],
        "start did not finish within 1000 ms",
    );
    // Four attempts of 1 s each, 100 ms apart.
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn not_serving_plugin_is_reported_with_its_reason() {
    expect_start_failure(
        "not_serving",
        &[],
        "reported NOT_SERVING: fixture reports NOT_SERVING as configured",
    );
}

#[test]
fn panic_in_health_is_caught_and_reported() {
    expect_start_failure(
        "panic_health",
        &[],
        "plugin panicked in health(): fixture panics in health() as configured",
    );
}

#[test]
fn bad_fixture_mode_is_a_config_error_naming_the_key() {
    expect_start_failure(
        "sideways",
        &[],
        "[tts] x_fixture_mode = \"sideways\" is invalid",
    );
}

fn expect_refused(library: &str, expected: &str) {
    let mut setup = Setup::new();
    let port = voicehost_tests::free_port().to_string();
    setup.section("tts", &[("library", library), ("port", &port)]);
    let (status, out) = setup.run_to_exit("run", EXIT_WITHIN);
    assert!(!status.success(), "{out}");
    assert!(out.contains("refusing plugin"), "{out}");
    assert!(out.contains(library), "names the file:\n{out}");
    assert!(out.contains(expected), "expected {expected:?} in:\n{out}");
    assert!(
        !out.contains("service_serving"),
        "nothing starts before every library is verified:\n{out}"
    );
}

#[test]
fn wrong_abi_layout_is_refused() {
    expect_refused(
        "libvoicehost_fixture_wrong_abi.so",
        "its ABI types do not match this host's",
    );
}

#[test]
fn future_abi_major_is_refused() {
    expect_refused(
        "libvoicehost_fixture_abi_v2.so",
        &format!(
            "it implements plugin ABI 2.0.0, this host implements ABI {}",
            voicehost_plugin_api::ABI_VERSION
        ),
    );
}

#[test]
fn port_in_use_names_port_and_holder() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let mut setup = Setup::new();
    setup.section(
        "tts",
        &[
            ("library", "libvoicehost_fixture_misbehave.so"),
            ("port", &port.to_string()),
        ],
    );
    let (status, out) = setup.run_to_exit("run", EXIT_WITHIN);
    assert!(!status.success(), "{out}");
    assert!(
        out.contains(&format!(
            "port {port} on 127.0.0.1 is already in use by pid {}",
            std::process::id()
        )),
        "{out}"
    );
}
