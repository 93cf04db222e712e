//! The llm plugin's `backend = openai` against a scripted HTTP server, for what a real one
//! does not do on request: events split at awkward places (inside a JSON object, between
//! a `\r` and its `\n`, inside a UTF-8 character), replies that are not a stream at all or
//! stall, errors in the stream, and a model the server does not have. The tests against a
//! real llama-server are in `openai.rs`.

#![allow(clippy::unwrap_used)]

mod openai_common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openai_common::{SYSTEM, ask, openai_setup, reply, run_output, text};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_stream::StreamExt;
use tonic::Code;
use voicehost_proto::llm::v1::CompleteRequest;
use voicehost_proto::llm::v1::llm_service_client::LlmServiceClient;
use voicehost_tests::{channel, wait_app_events};

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
