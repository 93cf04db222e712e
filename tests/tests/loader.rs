//! The loader end to end: phases and their parallelism, rollback and retry, FATAL exits,
//! restarts with backoff, the VRAM guard, admin RPCs, `voicehost ctl`, and no orphan
//! worker processes. Real plugin libraries (the misbehaving fixture) over real gRPC.
//! The file is long because each test starts its own host and checks app.log event by
//! event; the tests stay together to share the fixture and app.log helpers at the top.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tonic::Code;
use voicehost_proto::loader::v1::loader_service_client::LoaderServiceClient;
use voicehost_proto::loader::v1::{
    GetPidsRequest, ReloadPluginRequest, ServiceRequest, ServiceState,
};
use voicehost_tests::{
    AppLine, HostProc, Setup, app_events, artefact, channel, free_port, service_info,
    wait_app_events, wait_for_text, workers_on_port,
};

const FIXTURE: &str = "libvoicehost_fixture_misbehave.so";

/// Adds the fixture in `slot` with `keys`; returns its port.
fn fixture(setup: &mut Setup, slot: &str, keys: &[(&str, &str)]) -> u16 {
    let port = free_port();
    let port_s = port.to_string();
    let mut all = vec![("library", FIXTURE), ("port", port_s.as_str())];
    all.extend_from_slice(keys);
    setup.section(slot, &all);
    port
}

/// All four model slots with the fixture; tts and llm take `delay_ms` to start.
fn four_slots(setup: &mut Setup, delay_ms: &str, isolation: &str) -> [u16; 4] {
    let slow = [
        ("x_fixture_start_delay_ms", delay_ms),
        ("isolation", isolation),
    ];
    let fast = [("isolation", isolation)];
    [
        fixture(setup, "tts", &slow),
        fixture(setup, "llm", &slow),
        fixture(setup, "stt", &fast),
        fixture(setup, "kwd", &fast),
    ]
}

fn find<'a>(events: &'a [AppLine], event: &str, service: &str) -> &'a AppLine {
    events
        .iter()
        .find(|e| e.event == event && e.field("service") == service)
        .unwrap_or_else(|| panic!("no {event} for {service} in app.log"))
}

fn count(events: &[AppLine], event: &str, service: &str) -> usize {
    events
        .iter()
        .filter(|e| e.event == event && e.field("service") == service)
        .count()
}

fn ready(setup: &Setup) -> HostProc {
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(30));
    wait_for_text(&app_log(setup), "host_ready", Duration::from_secs(5));
    host
}

fn app_log(setup: &Setup) -> std::path::PathBuf {
    setup.log_dir().join("app.log")
}

#[test]
fn phase_one_starts_in_parallel_and_later_phases_wait() {
    let mut setup = Setup::new();
    four_slots(&mut setup, "600", "process");
    let mut host = ready(&setup);
    let log = app_log(&setup);
    wait_for_text(&log, "host_ready", Duration::from_secs(5));
    let ev = app_events(&log);
    let at = |event: &str, svc: &str| find(&ev, event, svc).ts.clone();
    // tts and llm overlap: each started before the other was serving.
    assert!(at("service_starting", "tts") < at("service_serving", "llm"));
    assert!(at("service_starting", "llm") < at("service_serving", "tts"));
    // Phase 2 only after both are serving; phase 3 after phase 2.
    let phase1_done = at("service_serving", "tts").max(at("service_serving", "llm"));
    assert!(at("service_starting", "stt") >= phase1_done);
    assert!(at("service_starting", "kwd") >= at("service_serving", "stt"));
    for phase in ["0", "1", "2", "3"] {
        assert!(
            ev.iter()
                .any(|e| e.event == "phase_finished" && e.fields["phase"] == phase),
            "phase {phase} finished"
        );
    }
    let p1 = ev
        .iter()
        .find(|e| e.event == "phase_finished" && e.fields["phase"] == "1")
        .unwrap();
    let ms: u64 = p1.field("ms").parse().unwrap();
    assert!(
        (600..1150).contains(&ms),
        "phase 1 takes one start delay, not two: {ms} ms"
    );
    assert!(ev.iter().any(|e| e.event == "startup_finished"));
    // The warm-up greeting is attempted once tts serves (the fixture has no TtsService).
    assert!(ev.iter().any(|e| e.event.starts_with("warmup_")));
    host.terminate();
}

#[test]
fn sequential_mode_starts_one_service_at_a_time() {
    let mut setup = Setup::new();
    setup.loader("startup_mode", "sequential");
    four_slots(&mut setup, "300", "process");
    let mut host = ready(&setup);
    let ev = wait_app_events(&app_log(&setup), &["host_ready"], Duration::from_secs(5));
    assert!(
        find(&ev, "service_starting", "llm").ts >= find(&ev, "service_serving", "tts").ts,
        "llm waits for tts in sequential mode"
    );
    host.terminate();
}

#[test]
fn a_failed_phase_is_rolled_back_and_retried() {
    let mut setup = Setup::new();
    setup.loader("restart_backoff_ms", "200,200,200");
    let marker = setup.dir.path().join("llm-failed-once");
    let marker = marker.to_str().unwrap().to_owned();
    fixture(&mut setup, "tts", &[]);
    fixture(&mut setup, "llm", &[("x_fixture_fail_marker", &marker)]);
    let mut host = ready(&setup);
    let ev = wait_app_events(&app_log(&setup), &["host_ready"], Duration::from_secs(5));
    let failed = ev
        .iter()
        .position(|e| e.event == "phase_failed" && e.fields["phase"] == "1")
        .expect("phase 1 failed once");
    // Rollback: tts (which had started) was stopped before the retry.
    assert!(
        ev[failed..]
            .iter()
            .any(|e| e.event == "service_stopped" && e.field("service") == "tts")
            || ev[..failed]
                .iter()
                .any(|e| e.event == "service_stopped" && e.field("service") == "tts"),
        "tts rolled back"
    );
    assert!(
        ev[failed..]
            .iter()
            .any(|e| e.event == "phase_finished" && e.fields["phase"] == "1"),
        "the retry succeeded"
    );
    host.terminate();
}

#[test]
fn a_phase_that_keeps_failing_is_fatal_and_leaves_no_workers() {
    let mut setup = Setup::new();
    setup.loader("restart_backoff_ms", "100,100,100");
    let tts = fixture(&mut setup, "tts", &[]);
    let stt = fixture(&mut setup, "stt", &[("x_fixture_mode", "fail_start")]);
    let mut host = setup.spawn();
    let status = host
        .wait_exit(Duration::from_secs(30))
        .expect("voicehost exits after the retries");
    assert!(!status.success());
    let out = host.output();
    assert!(
        out.contains("FATAL: phase 2 (stt) failed 4 time(s)"),
        "clear message: {out}"
    );
    let ev = app_events(&app_log(&setup));
    assert_eq!(
        ev.iter()
            .filter(|e| e.event == "phase_failed" && e.fields["phase"] == "2")
            .count(),
        4
    );
    assert!(ev.iter().any(|e| e.event == "fatal"), "FATAL in app.log");
    // Phase 1 stayed up during phase 2's retries: tts started once.
    assert_eq!(count(&ev, "service_starting", "tts"), 1);
    assert!(workers_on_port(tts).is_empty() && workers_on_port(stt).is_empty());
}

#[test]
fn phase_one_timeout_is_rolled_back_and_fatal_after_the_retries() {
    let mut setup = Setup::new();
    setup
        .loader("restart_backoff_ms", "100,100,100")
        .loader("parallel_phase_timeout_ms", "500");
    fixture(&mut setup, "tts", &[("x_fixture_start_delay_ms", "2000")]);
    let llm = fixture(&mut setup, "llm", &[]);
    let mut host = setup.spawn();
    let status = host.wait_exit(Duration::from_secs(30)).unwrap();
    assert!(!status.success());
    assert!(host.output().contains("parallel_phase_timeout_ms = 500"));
    let ev = app_events(&app_log(&setup));
    assert_eq!(
        ev.iter()
            .filter(|e| e.event == "phase_failed" && e.fields["phase"] == "1")
            .count(),
        4
    );
    assert!(workers_on_port(llm).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_is_restarted_with_backoff_then_marked_failed() {
    let mut setup = Setup::new();
    setup.loader("health_interval_ms", "100");
    fixture(&mut setup, "tts", &[]);
    let llm = fixture(&mut setup, "llm", &[]);
    let mut host = ready(&setup);
    let mut admin = LoaderServiceClient::new(channel(setup.admin_port));
    let mut pid = service_info(setup.admin_port, "tts").await.pid;
    let mut waits = Vec::new();
    for attempt in 1..=4u32 {
        // SAFETY: kill(2) with SIGKILL on a pid the host reported as tts's worker.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let killed = Instant::now();
        if attempt == 4 {
            break;
        }
        let deadline = killed + Duration::from_secs(15);
        loop {
            let info = service_info(setup.admin_port, "tts").await;
            if info.state() == ServiceState::Serving && info.pid != pid && info.pid != 0 {
                assert_eq!(info.restarts, attempt);
                pid = info.pid;
                break;
            }
            assert!(Instant::now() < deadline, "tts not restarted: {info:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        waits.push(killed.elapsed());
    }
    // The 4th crash within a minute: FAILED, not restarted.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = service_info(setup.admin_port, "tts").await;
        if info.state() == ServiceState::Failed {
            assert!(
                info.last_error.contains("gave up after 3 restarts"),
                "{info:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "tts not marked failed: {info:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Backoff 1 s, 3 s, 5 s (plus detection and start time).
    for (wait, backoff) in waits.iter().zip([1, 3, 5]) {
        let backoff = Duration::from_secs(backoff);
        assert!(
            *wait >= backoff && *wait < backoff + Duration::from_secs(2),
            "restart after {wait:?}, backoff {backoff:?}"
        );
    }
    let ev = app_events(&app_log(&setup));
    let backoffs: Vec<&str> = ev
        .iter()
        .filter(|e| e.event == "service_restarted")
        .map(|e| e.field("backoff_ms"))
        .collect();
    assert_eq!(backoffs, ["1000", "3000", "5000"]);
    assert!(
        ev.iter()
            .any(|e| e.event == "service_failed" && e.level == "ERROR")
    );
    // The other services never noticed.
    let llm_info = service_info(setup.admin_port, "llm").await;
    assert_eq!(llm_info.state(), ServiceState::Serving);
    assert_eq!(llm_info.restarts, 0);
    // `ctl start` brings a failed service back.
    let started = admin
        .start_service(ServiceRequest { name: "tts".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.state(), ServiceState::Serving);
    host.terminate();
    assert!(workers_on_port(llm).is_empty(), "no orphan workers");
}

#[test]
fn a_panic_inside_an_in_process_plugin_is_restarted() {
    let mut setup = Setup::new();
    setup
        .loader("health_interval_ms", "100")
        .loader("restart_backoff_ms", "100,100,100");
    fixture(
        &mut setup,
        "tts",
        &[
            ("isolation", "in_process"),
            ("x_fixture_panic_after_ms", "300"),
        ],
    );
    let mut host = ready(&setup);
    let log = app_log(&setup);
    wait_for_text(&log, "\"service_failed\"", Duration::from_secs(15));
    let ev = app_events(&log);
    assert_eq!(count(&ev, "service_restarted", "tts"), 3);
    let crash = find(&ev, "service_crashed", "tts");
    assert!(crash.field("reason").contains("a worker thread panicked"));
    // The host itself is fine.
    host.terminate();
}

#[test]
fn vram_guard_passes_fails_and_skips() {
    // Too little free memory on a (simulated) GPU: FATAL before phase 1, nothing started.
    let mut setup = Setup::new();
    setup
        .system("min_vram_mb", "64000")
        .env("VOICEHOST_SIMULATED_GPU_FREE_MB", "24000");
    fixture(&mut setup, "tts", &[]);
    let mut host = setup.spawn();
    let status = host.wait_exit(Duration::from_secs(20)).unwrap();
    assert!(!status.success());
    assert!(
        host.output()
            .contains("only 24000 MiB of GPU memory is free on simulated GPU"),
        "{}",
        host.output()
    );
    let ev = app_events(&app_log(&setup));
    assert!(ev.iter().any(|e| e.event == "fatal"));
    assert_eq!(count(&ev, "service_starting", "tts"), 0);

    // Enough memory: checked and passed at boot and between phases.
    let mut setup = Setup::new();
    setup
        .system("min_vram_mb", "8000")
        .env("VOICEHOST_SIMULATED_GPU_FREE_MB", "24000");
    fixture(&mut setup, "tts", &[]);
    fixture(&mut setup, "stt", &[]);
    let mut host = ready(&setup);
    let ev = wait_app_events(&app_log(&setup), &["host_ready"], Duration::from_secs(5));
    let ok: Vec<&str> = ev
        .iter()
        .filter(|e| e.event == "vram_ok")
        .map(|e| e.field("phase"))
        .collect();
    assert_eq!(ok, ["1", "2"]);
    host.terminate();

    // No NVIDIA driver here: auto skips with a notice, required is FATAL.
    let mut setup = Setup::new();
    fixture(&mut setup, "tts", &[]);
    let mut host = ready(&setup);
    wait_app_events(
        &app_log(&setup),
        &["vram_check_skipped"],
        Duration::from_secs(5),
    );
    host.terminate();

    let mut setup = Setup::new();
    setup.system("gpu", "required");
    fixture(&mut setup, "tts", &[]);
    let mut host = setup.spawn();
    assert!(!host.wait_exit(Duration::from_secs(20)).unwrap().success());
    assert!(
        host.output()
            .contains("gpu = required, but no NVIDIA driver")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_rpcs_manage_services_and_refuse_bad_input() {
    let mut setup = Setup::new();
    let tts = fixture(&mut setup, "tts", &[]);
    let mut host = ready(&setup);
    let mut admin = LoaderServiceClient::new(channel(setup.admin_port));

    for bad in ["", "nope", "TTS"] {
        let err = admin
            .stop_service(ServiceRequest { name: bad.into() })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}");
        assert!(
            err.message()
                .contains("logger, tts, llm, stt, kwd, wyoming"),
            "{err}"
        );
    }
    let err = admin
        .start_service(ServiceRequest { name: "llm".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("disabled"), "{err}");
    let err = admin
        .reload_plugin(ReloadPluginRequest {
            name: "tts".into(),
            library_path: "/no/such/plugin.so".into(),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("/no/such/plugin.so"));

    let stopped = admin
        .stop_service(ServiceRequest { name: "tts".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stopped.state(), ServiceState::Stopped);
    assert!(workers_on_port(tts).is_empty());
    let started = admin
        .start_service(ServiceRequest { name: "tts".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.state(), ServiceState::Serving);
    let restarted = admin
        .restart_service(ServiceRequest { name: "tts".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(restarted.state(), ServiceState::Serving);
    assert_ne!(restarted.pid, started.pid, "a new worker");
    assert_eq!(restarted.library_sha256.len(), 64);

    let pids = admin
        .get_pids(GetPidsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pids.host_pid, host.pid());
    let tts_pid = pids.services.iter().find(|s| s.name == "tts").unwrap().pid;
    assert_eq!(
        workers_on_port(tts),
        [tts_pid],
        "GetPids shows the real worker"
    );

    // voicehost ctl against the same host.
    let ctl = |args: &[&str]| {
        std::process::Command::new(artefact("voicehost"))
            .arg("ctl")
            .arg("--admin")
            .arg(format!("127.0.0.1:{}", setup.admin_port))
            .args(args)
            .output()
            .unwrap()
    };
    let status = ctl(&["status"]);
    assert!(status.status.success());
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.starts_with("SERVICE"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("tts ") && l.contains("serving") && l.contains("process"))
    );
    let bad = ctl(&["restart", "nope"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("valid services"));
    assert!(ctl(&["pids"]).status.success());
    host.terminate();

    // No host: a clear error.
    let none = std::process::Command::new(artefact("voicehost"))
        .args([
            "ctl",
            "--admin",
            &format!("127.0.0.1:{}", free_port()),
            "status",
        ])
        .output()
        .unwrap();
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no voicehost is running"));
}

#[test]
fn shutdown_stops_in_reverse_phase_order_and_leaves_no_workers() {
    let mut setup = Setup::new();
    let ports = four_slots(&mut setup, "0", "process");
    let mut host = ready(&setup);
    assert!(host.terminate().success());
    for port in ports {
        assert!(
            workers_on_port(port).is_empty(),
            "worker on {port} left behind"
        );
    }
    let ev = app_events(&app_log(&setup));
    let stops: Vec<&str> = ev
        .iter()
        .filter(|e| e.event == "service_stopped")
        .map(|e| e.field("service"))
        .collect();
    // The logger stops last, after app.log was flushed: its own stop is not in the file.
    assert_eq!(stops[..2], ["kwd", "stt"]);
    assert!(stops[2..4].contains(&"tts") && stops[2..4].contains(&"llm"));
}
