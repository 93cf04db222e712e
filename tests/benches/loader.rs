//! Loader benchmark: boot time phased-parallel vs sequential for the same plugins, and the
//! hot-swap gap in both isolation modes.
//!
//! `cargo build --release --workspace && cargo bench -p voicehost-tests --bench loader`:
//! the bench runs the release-built host and fixture plugins from `target/release`.
//! The fixture plugins stand in for model plugins with fixed start costs: tts and llm take
//! `SLOW_MS` to start (model loading), stt and kwd `FAST_MS`.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use voicehost_proto::loader::v1::ReloadPluginRequest;
use voicehost_proto::loader::v1::loader_service_client::LoaderServiceClient;
use voicehost_tests::{Setup, app_events, artefact, channel, free_port, wait_for_text};

const SLOW_MS: &str = "800";
const FAST_MS: &str = "200";
const RUNS: usize = 3;

fn boot_ms(mode: &str) -> u64 {
    let mut setup = Setup::new();
    setup.loader("startup_mode", mode);
    for (slot, delay) in [
        ("tts", SLOW_MS),
        ("llm", SLOW_MS),
        ("stt", FAST_MS),
        ("kwd", FAST_MS),
    ] {
        setup.section(
            slot,
            &[
                ("library", "libvoicehost_fixture_misbehave.so"),
                ("port", &free_port().to_string()),
                ("x_fixture_start_delay_ms", delay),
            ],
        );
    }
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(60));
    let log = setup.log_dir().join("app.log");
    wait_for_text(&log, "startup_finished", Duration::from_secs(5));
    let ms = app_events(&log)
        .iter()
        .find(|e| e.event == "startup_finished")
        .map(|e| e.field("ms").parse().unwrap())
        .unwrap();
    host.terminate();
    ms
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Swaps tts between v1 and v2 `n` times while a client checks its health every 2 ms;
/// returns the longest observed outage of each swap, in ms.
async fn swap_gaps(isolation: &str, n: usize) -> Vec<u64> {
    let mut setup = Setup::new();
    let port = free_port();
    setup.section(
        "tts",
        &[
            ("library", "libvoicehost_fixture_misbehave.so"),
            ("port", &port.to_string()),
            ("isolation", isolation),
        ],
    );
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(60));
    let mut admin = LoaderServiceClient::new(channel(setup.admin_port));
    let mut health = HealthClient::new(channel(port));
    let mut gaps = Vec::new();
    for i in 0..n {
        let library = if i % 2 == 0 {
            "libvoicehost_fixture_v2.so"
        } else {
            "libvoicehost_fixture_misbehave.so"
        };
        let swap = admin.reload_plugin(ReloadPluginRequest {
            name: "tts".into(),
            library_path: artefact(library).display().to_string(),
            force: true,
        });
        tokio::pin!(swap);
        let mut down_since: Option<Instant> = None;
        let mut longest = Duration::ZERO;
        let mut done = false;
        while !done || down_since.is_some() {
            tokio::select! {
                r = &mut swap, if !done => { r.unwrap(); done = true; }
                () = tokio::time::sleep(Duration::from_millis(2)) => {}
            }
            let ok = tokio::time::timeout(
                Duration::from_millis(200),
                health.check(HealthCheckRequest::default()),
            )
            .await
            .is_ok_and(|r| r.is_ok_and(|r| r.get_ref().status == 1));
            match (ok, down_since) {
                (false, None) => down_since = Some(Instant::now()),
                (true, Some(t)) => {
                    longest = longest.max(t.elapsed());
                    down_since = None;
                }
                _ => {}
            }
        }
        gaps.push(longest.as_millis() as u64);
    }
    host.terminate();
    gaps
}

fn main() {
    println!(
        "voicehost loader benchmark (fixture plugins: tts/llm start in {SLOW_MS} ms, stt/kwd in {FAST_MS} ms; median of {RUNS})"
    );
    let parallel = median((0..RUNS).map(|_| boot_ms("phased_parallel")).collect());
    let sequential = median((0..RUNS).map(|_| boot_ms("sequential")).collect());
    println!("boot, phased_parallel: {parallel} ms");
    println!("boot, sequential:      {sequential} ms");
    println!(
        "ratio sequential / phased_parallel: {:.2}x",
        sequential as f64 / parallel as f64
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for isolation in ["process", "in_process"] {
        let gaps = runtime.block_on(swap_gaps(isolation, 6));
        println!(
            "hot-swap gap, {isolation}: median {} ms, max {} ms (6 swaps: {gaps:?})",
            median(gaps.clone()),
            gaps.iter().max().unwrap()
        );
    }
}
