//! The llm plugin end to end: the embedded llama.cpp on SmolLM2-135M-Instruct, the dialog
//! log, history, cancellation and bad input; and the Ollama bridge against a small HTTP
//! server in the test that speaks Ollama's NDJSON chat protocol.
//! The file is long because it holds that fake Ollama server beside the llama.cpp tests;
//! both backends are tested through the same request and reply helpers.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;
use tonic::Code;
use voicehost_plugin_runtime::SpeechGate;
use voicehost_proto::llm::v1::llm_service_client::LlmServiceClient;
use voicehost_proto::llm::v1::{CompleteRequest, LlmChunk};
use voicehost_proto::logger::v1::NewDialogRequest;
use voicehost_proto::logger::v1::logger_service_client::LoggerServiceClient;
use voicehost_tests::{
    AppLine, HostProc, Setup, app_events, channel, free_port, model, wait_app_events,
};

const SYSTEM: &str = "You are a helpful voice assistant. Answer in one short sentence.";

/// A Modelfile for the fetched SmolLM2 in `dir`, plus `extra` lines.
fn modelfile(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("Modelfile");
    let gguf = model("SmolLM2-135M-Instruct.Q4_1.gguf");
    std::fs::write(
        &path,
        format!(
            "FROM {}\nSYSTEM \"\"\"{SYSTEM}\"\"\"\nPARAMETER temperature 0\n{extra}",
            gguf.display()
        ),
    )
    .unwrap();
    path
}

/// A host with the logger and the embedded llm.
fn llm_host(extra_modelfile: &str) -> (Setup, HostProc, u16) {
    let mut setup = Setup::new();
    let port = free_port();
    let mf = modelfile(setup.dir.path(), extra_modelfile);
    setup.section(
        "llm",
        &[
            ("port", &port.to_string()),
            ("start_timeout_ms", "120000"),
            ("modelfile", mf.to_str().unwrap()),
        ],
    );
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(180));
    (setup, host, port)
}

fn ask(text: &str, dialog: &str, turn: u32) -> CompleteRequest {
    CompleteRequest {
        text: text.into(),
        dialog_id: dialog.into(),
        turn,
        max_tokens: 0,
        context: String::new(),
        prefill_only: false,
    }
}

/// Every chunk of a reply.
async fn reply(
    llm: &mut LlmServiceClient<tonic::transport::Channel>,
    req: CompleteRequest,
) -> Vec<LlmChunk> {
    let mut stream = llm.complete(req).await.unwrap().into_inner();
    let mut chunks = Vec::new();
    while let Some(c) = stream.next().await {
        chunks.push(c.unwrap());
    }
    chunks
}

/// The first `event` in app.log, waiting up to `within` for the logger to write it.
fn logged(setup: &Setup, event: &str, within: Duration) -> AppLine {
    wait_app_events(&setup.log_dir().join("app.log"), &[event], within)
        .into_iter()
        .find(|l| l.event == event)
        .unwrap()
}

fn text(chunks: &[LlmChunk]) -> String {
    chunks.iter().map(|c| c.text.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smollm2_answers_paris_streamed_and_remembers_the_dialog() {
    let (setup, mut host, port) = llm_host("");
    let mut logger = LoggerServiceClient::new(channel(setup.logger_port));
    let dialog = logger
        .new_dialog(NewDialogRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut llm = LlmServiceClient::new(channel(port));
    let chunks = reply(
        &mut llm,
        ask("What is the capital of France?", &dialog.dialog_id, 1),
    )
    .await;
    let answer = text(&chunks);
    assert!(chunks.len() > 2, "streamed in pieces: {chunks:?}");
    let last = chunks.last().unwrap();
    assert!(last.eot && last.finish_reason == "stop", "{last:?}");
    assert!(chunks[..chunks.len() - 1].iter().all(|c| !c.eot));
    assert!(
        chunks
            .iter()
            .enumerate()
            .all(|(i, c)| c.index == i as u32 && c.turn == 1)
    );
    eprintln!("SmolLM2: {answer:?}");
    assert!(answer.contains("Paris"), "{answer:?}");

    // The transcript is the host's: the plugin writes nothing to it.
    let transcript = std::fs::read_to_string(&dialog.path).unwrap();
    assert!(!transcript.contains("ASSISTANT"), "{transcript}");

    // Turn 2 sees turn 1: its prompt is longer by the first exchange.
    let follow = reply(&mut llm, ask("And of Italy?", &dialog.dialog_id, 2)).await;
    assert!(follow.last().unwrap().eot);
    // app.log is written asynchronously: wait for both lines.
    let deadline = Instant::now() + Duration::from_secs(5);
    let replies: Vec<u64> = loop {
        let replies: Vec<u64> = app_events(&setup.log_dir().join("app.log"))
            .iter()
            .filter(|l| l.event == "llm_reply" && l.field("dialog") == dialog.dialog_id)
            .map(|l| l.field("prompt_tokens").parse().unwrap())
            .collect();
        if replies.len() >= 2 || Instant::now() > deadline {
            break replies;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert!(
        replies[1] > replies[0] + 10,
        "turn 2 carries turn 1: {replies:?}"
    );
    // A turn out of order is refused with what to send.
    let err = llm
        .complete(ask("Hm?", &dialog.dialog_id, 5))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("send turn 3"), "{err}");
    host.terminate();
}

/// A prefill (what the host sends when a dialog starts) reads the system prompt with the
/// date and time ahead; the turn that follows reads only its question.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefill_reads_the_prompt_ahead_and_the_turn_then_only_its_question() {
    let (setup, mut host, port) = llm_host("");
    let mut llm = LlmServiceClient::new(channel(port));
    let context = "The local date and time now: Sunday, December 6th, 2026, 7:05 PM.";
    let pre = reply(
        &mut llm,
        CompleteRequest {
            prefill_only: true,
            context: context.into(),
            ..CompleteRequest::default()
        },
    )
    .await;
    assert_eq!(pre.len(), 1, "{pre:?}");
    assert!(
        pre[0].eot && pre[0].finish_reason == "prefilled" && pre[0].text.is_empty(),
        "{pre:?}"
    );
    let answer = reply(
        &mut llm,
        CompleteRequest {
            context: context.into(),
            ..ask("What is the capital of France?", "", 0)
        },
    )
    .await;
    assert!(text(&answer).contains("Paris"), "{}", text(&answer));
    // app.log: what each request read, past the cached prefix.
    let deadline = Instant::now() + Duration::from_secs(5);
    let reads: Vec<(u64, u64)> = loop {
        let reads: Vec<(u64, u64)> = app_events(&setup.log_dir().join("app.log"))
            .iter()
            .filter(|l| l.event == "llm_prompt_read")
            .map(|l| {
                let n = |k: &str| l.field(k).parse::<u64>().unwrap();
                (n("cached"), n("read"))
            })
            .collect();
        if reads.len() >= 3 || Instant::now() > deadline {
            break reads;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("(cached, read) tokens: warm-up, prefill, question: {reads:?}");
    assert_eq!(reads.len(), 3, "{reads:?}");
    let (prefill, question) = (reads[1], reads[2]);
    assert!(prefill.1 >= 10, "the date line was read ahead: {reads:?}");
    assert!(
        question.0 >= prefill.0 + prefill.1 - 1 && question.1 < 25,
        "the question's turn read only the question: {reads:?}"
    );
    host.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_stops_the_generation_at_once() {
    let (setup, mut host, port) = llm_host("PARAMETER num_predict 2000\n");
    let mut llm = LlmServiceClient::new(channel(port));
    let mut stream = llm
        .complete(ask(
            "Count from one to three hundred in words, one number per line.",
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
    let dropped = std::time::SystemTime::now();
    // The engine logs when it stopped.
    let stopped = logged(&setup, "llm_stopped", Duration::from_secs(5));
    let at = humantime::parse_rfc3339(&stopped.ts).unwrap();
    let after = at.duration_since(dropped).unwrap_or_default();
    let tokens: u64 = stopped.field("tokens").parse().unwrap();
    eprintln!("generation stopped {after:?} after the client left, at token {tokens}");
    // Stopped, not run to its end: 2000 tokens would take minutes here.
    assert!(
        tokens < 500,
        "{tokens} tokens generated: {}",
        stopped.fields
    );
    assert!(
        after < Duration::from_secs(5),
        "stopped {after:?} after the client left"
    );
    // The engine is free (llm_stopped above: its loop ended): the next request is answered.
    // Its time is printed, not asserted: on a busy machine it says nothing.
    let asked = Instant::now();
    let next = reply(&mut llm, ask("Say hi.", "", 0)).await;
    assert!(next.last().unwrap().eot);
    eprintln!("next request answered in {:?}", asked.elapsed());
    host.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_waits_while_the_speech_gate_is_closed() {
    let (setup, mut host, port) = llm_host("");
    // What tts does while it synthesises a clause.
    let tts = SpeechGate::open(&setup.log_dir()).unwrap();
    let closed = tts.close().unwrap();
    let mut llm = LlmServiceClient::new(channel(port));
    let mut stream = llm
        .complete(ask("Count from one to twenty in words.", "", 0))
        .await
        .unwrap()
        .into_inner();
    // The prompt is read and the first token sampled; the next waits at the gate. The hold
    // counts from that first token, however long a busy machine took to read the prompt.
    // Unheld, SmolLM2 writes a token every few ms here.
    let first = tokio::time::timeout(Duration::from_secs(60), stream.next())
        .await
        .expect("the first token within 60 s")
        .unwrap()
        .unwrap();
    let mut early = vec![first];
    let held_until = Instant::now() + HOLD;
    while let Ok(Some(chunk)) = tokio::time::timeout_at(held_until.into(), stream.next()).await {
        early.push(chunk.unwrap());
    }
    assert!(
        early.len() == 1 && !early[0].eot,
        "the model went on while the gate was closed: {:?}",
        text(&early)
    );
    let opened = Instant::now();
    drop(closed);
    let mut rest = Vec::new();
    while let Some(c) = stream.next().await {
        rest.push(c.unwrap());
    }
    eprintln!(
        "while closed: {:?}; after the gate opened {:?}: {:?}",
        text(&early),
        opened.elapsed(),
        text(&rest)
    );
    assert!(rest.last().unwrap().eot);
    assert!(
        !text(&rest).trim().is_empty(),
        "nothing came after the gate opened"
    );
    let waited = logged(&setup, "llm_waited_for_tts", Duration::from_secs(10));
    eprintln!("{}", waited.fields);
    // It waited at the gate. How long is printed, not bounded: a busy machine may run the
    // llm's thread late after it sent the first token.
    let times: u64 = waited.field("times").parse().unwrap();
    let ms: u64 = waited.field("ms").parse().unwrap();
    assert!(times >= 1 && ms >= 1, "{}", waited.fields);
    host.terminate();
}

/// How long `generation_waits_while_the_speech_gate_is_closed` keeps the gate closed after
/// the first token.
const HOLD: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_the_reason() {
    let (_setup, mut host, port) = llm_host("PARAMETER num_ctx 256\n");
    let mut llm = LlmServiceClient::new(channel(port));
    let long = "word ".repeat(2000);
    let prefill = CompleteRequest {
        prefill_only: true,
        ..CompleteRequest::default()
    };
    let cases: [(CompleteRequest, Code, &str); 9] = [
        (
            CompleteRequest {
                text: "hi".into(),
                ..prefill.clone()
            },
            Code::InvalidArgument,
            "prefill_only reads the system prompt",
        ),
        (
            CompleteRequest {
                context: "a\u{7}b".into(),
                ..prefill.clone()
            },
            Code::InvalidArgument,
            "control character",
        ),
        (ask("  ", "", 0), Code::InvalidArgument, "text is empty"),
        (
            ask("a\u{7}b", "", 0),
            Code::InvalidArgument,
            "control character",
        ),
        (ask("hi", "bad id!", 1), Code::InvalidArgument, "dialog_id"),
        (ask("hi", "abc", 0), Code::InvalidArgument, "turn is 0"),
        (
            ask("hi", "abc", 2),
            Code::FailedPrecondition,
            "start it with turn 1",
        ),
        (
            CompleteRequest {
                max_tokens: 100_000,
                ..ask("hi", "", 0)
            },
            Code::InvalidArgument,
            "max_tokens",
        ),
        (
            ask(&long, "", 0),
            Code::InvalidArgument,
            "the context holds 256",
        ),
    ];
    for (req, code, needle) in cases {
        let err = match llm.complete(req.clone()).await {
            Err(e) => e,
            Ok(stream) => stream.into_inner().next().await.unwrap().unwrap_err(),
        };
        assert_eq!(
            err.code(),
            code,
            "{:?}: {err}",
            &req.text[..req.text.len().min(20)]
        );
        assert!(err.message().contains(needle), "{err}");
    }
    // Not UTF-8 at all.
    let err = raw_complete(port, b"\xff\xfe bad").await;
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    // Still serving.
    let ok = reply(&mut llm, ask("Hello", "", 0)).await;
    assert!(ok.last().unwrap().eot);
    host.terminate();
}

async fn raw_complete(port: u16, bytes: &[u8]) -> tonic::Status {
    #[derive(Clone, PartialEq, prost::Message)]
    struct RawComplete {
        #[prost(bytes = "vec", tag = "1")]
        text: Vec<u8>,
    }
    let mut grpc = tonic::client::Grpc::new(channel(port));
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<RawComplete, LlmChunk>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/voicehost.llm.v1.LlmService/Complete",
    );
    match grpc
        .server_streaming(
            tonic::Request::new(RawComplete {
                text: bytes.to_vec(),
            }),
            path,
            codec,
        )
        .await
    {
        Err(e) => e,
        Ok(r) => r.into_inner().next().await.unwrap().unwrap_err(),
    }
}

#[test]
fn a_missing_model_file_is_named_with_the_fetch_command() {
    let mut setup = Setup::new();
    setup.loader("restart_backoff_ms", "100");
    let mf = setup.dir.path().join("Modelfile");
    std::fs::write(&mf, "FROM /nowhere/model.gguf\n").unwrap();
    setup.section(
        "llm",
        &[
            ("port", &free_port().to_string()),
            ("modelfile", mf.to_str().unwrap()),
        ],
    );
    let (status, out) = setup.run_to_exit("run", Duration::from_secs(60));
    assert!(!status.success());
    assert!(
        out.contains("/nowhere/model.gguf not found") && out.contains("voicehost models fetch"),
        "{out}"
    );
}

/// What the fake Ollama server was asked.
#[derive(Debug, Default)]
struct Seen {
    chats: Vec<serde_json::Value>,
}

/// A tiny HTTP/1.1 server speaking Ollama's `/api/tags` and streaming `/api/chat`. Its
/// reply "Hello, café!" arrives as NDJSON in HTTP chunks, one JSON line split across two
/// chunks and the "é" split between its two bytes.
async fn fake_ollama(models: &'static [&'static str]) -> (u16, Arc<Mutex<Seen>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let seen2 = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let seen = Arc::clone(&seen2);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                // Head, then a body of Content-Length bytes.
                let (head, body) = loop {
                    let n = sock.read(&mut tmp).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&tmp[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_string();
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
                        break (head, buf[end + 4..].to_vec());
                    }
                };
                if head.starts_with("GET /api/tags") {
                    let list: Vec<serde_json::Value> = models
                        .iter()
                        .map(|m| serde_json::json!({"name": m, "modified_at": "2026-11-01T00:00:00Z", "size": 1}))
                        .collect();
                    let body = serde_json::json!({ "models": list }).to_string();
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    return;
                }
                let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                seen.lock().unwrap().chats.push(request);
                let line = |content: &str, done: bool| {
                    let mut v = serde_json::json!({
                        "model": "tiny",
                        "created_at": "2026-11-01T00:00:00Z",
                        "message": {"role": "assistant", "content": content},
                        "done": done,
                    });
                    if done {
                        for (k, n) in [
                            ("total_duration", 5),
                            ("load_duration", 1),
                            ("prompt_eval_count", 12),
                            ("prompt_eval_duration", 1),
                            ("eval_count", 4),
                            ("eval_duration", 1),
                        ] {
                            v[k] = serde_json::json!(n);
                        }
                        v["done_reason"] = serde_json::json!("stop");
                    }
                    format!("{v}\n").into_bytes()
                };
                let mut stream: Vec<u8> = Vec::new();
                for (piece, done) in [
                    ("Hello", false),
                    (", caf", false),
                    ("é!", false),
                    ("", true),
                ] {
                    stream.extend(line(piece, done));
                }
                // Cut points: inside the second JSON line, and between é's two bytes.
                let second = stream.iter().position(|&b| b == b'\n').unwrap() + 20;
                let e_acute = stream.windows(2).position(|w| w == "é".as_bytes()).unwrap() + 1;
                let cuts = [0, second, e_acute, stream.len()];
                let _ = sock
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                    .await;
                for w in cuts.windows(2) {
                    let part = &stream[w[0]..w[1]];
                    let _ = sock
                        .write_all(format!("{:x}\r\n", part.len()).as_bytes())
                        .await;
                    let _ = sock.write_all(part).await;
                    let _ = sock.write_all(b"\r\n").await;
                    let _ = sock.flush().await;
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
                let _ = sock.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    (port, seen)
}

fn ollama_setup(ollama_port: u16, model_name: &str) -> (Setup, u16) {
    let mut setup = Setup::new();
    setup.loader("restart_backoff_ms", "100");
    let port = free_port();
    let mf = modelfile(setup.dir.path(), "PARAMETER num_ctx 4096\n");
    setup.section(
        "llm",
        &[
            ("port", &port.to_string()),
            ("backend", "ollama"),
            ("modelfile", mf.to_str().unwrap()),
            ("ollama_url", &format!("http://127.0.0.1:{ollama_port}")),
            ("ollama_model", model_name),
            ("keep_alive_s", "600"),
        ],
    );
    (setup, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ollama_bridge_streams_ndjson_split_across_http_chunks() {
    let (ollama, seen) = fake_ollama(&["tiny:latest"]).await;
    let (setup, port) = ollama_setup(ollama, "tiny");
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(60));
    let mut llm = LlmServiceClient::new(channel(port));
    let chunks = reply(&mut llm, ask("Greet me.", "", 0)).await;
    assert_eq!(text(&chunks), "Hello, café!");
    assert_eq!(chunks.last().unwrap().finish_reason, "stop");
    // The warm-up and the request; streamed, kept warm, with the system prompt and options.
    let chats = &seen.lock().unwrap().chats;
    assert_eq!(chats.len(), 2, "{chats:?}");
    let asked = &chats[1];
    assert_eq!(asked["model"], "tiny");
    assert_eq!(asked["stream"], true);
    assert_eq!(asked["keep_alive"], "600s");
    assert_eq!(asked["options"]["num_ctx"], 4096);
    assert_eq!(asked["messages"][0]["role"], "system");
    assert_eq!(asked["messages"][1]["content"], "Greet me.");
    host.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ollama_server_or_model_is_not_serving_with_the_fix() {
    let (ollama, _seen) = fake_ollama(&["other:latest"]).await;
    let (setup, _) = ollama_setup(ollama, "tiny");
    let out =
        tokio::task::spawn_blocking(move || setup.run_to_exit("run", Duration::from_secs(60)).1)
            .await
            .unwrap();
    assert!(
        out.contains("has no model \"tiny\"") && out.contains("ollama pull tiny"),
        "{out}"
    );

    // Bound, not listening: connections are refused, and no other test takes the port.
    let held = tokio::net::TcpSocket::new_v4().unwrap();
    held.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let (setup, _) = ollama_setup(held.local_addr().unwrap().port(), "tiny");
    let out =
        tokio::task::spawn_blocking(move || setup.run_to_exit("run", Duration::from_secs(60)).1)
            .await
            .unwrap();
    assert!(
        out.contains("is not reachable") && out.contains("ollama serve"),
        "{out}"
    );
}
