//! The Wyoming server (plugins/wyoming) with the client Home Assistant uses: the `wyoming`
//! package from PyPI (tests/python/wyoming_client.py) against a host running the real kwd,
//! stt, tts (Piper) and the Wyoming plugin. Describe, transcribe (16 kHz mono and 44.1 kHz
//! stereo), synthesize (whole and streamed) and wake detection; then the bad inputs sent
//! raw, 20 connections at once, and the services still serving after all of it.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use voicehost_proto::kwd::v1::EventsRequest;
use voicehost_proto::kwd::v1::kwd_service_client::KwdServiceClient;
use voicehost_tests::{
    HostProc, Setup, channel, free_port, kwd_keys, model, peer_python, piper_keys, read_wav_16k,
    scene, serving, stt_keys, tts_speech, words, workspace_root, write_wav_16k,
};

/// The `wyoming` package Home Assistant uses.
const WYOMING: &str = "wyoming==1.10.2";

struct Server {
    setup: Setup,
    host: HostProc,
    /// The Wyoming port and the gRPC ports of kwd, stt and tts.
    port: u16,
    grpc: [u16; 3],
}

/// A host with kwd, stt (no microphone), tts (Piper, into a WAV file) and the Wyoming
/// server on a free port with `extra` keys.
fn server(extra: &[(&str, &str)]) -> Server {
    let mut setup = Setup::new();
    let (kwd, stt, tts, grpc, port) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let out = setup.dir.path().join("played.wav");
    setup.section_with("tts", piper_keys(tts, &out), &[]);
    setup.section_with(
        "stt",
        stt_keys(stt, Path::new("unused")),
        &[("input", "null")],
    );
    setup.section_with("kwd", kwd_keys(kwd), &[]);
    let mut keys = vec![
        ("port".to_owned(), grpc.to_string()),
        ("wyoming_port".to_owned(), port.to_string()),
    ];
    keys.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    setup.section_with("wyoming", keys, &[]);
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(180));
    Server {
        setup,
        host,
        port,
        grpc: [kwd, stt, tts],
    }
}

/// How much tts has written to its output WAV (what it played), ms.
fn played_ms(s: &Server) -> u64 {
    let played = s.setup.dir.path().join("played.wav");
    std::fs::metadata(&played).map_or(0, |m| m.len().saturating_sub(44) / 2 * 1000 / 22_050)
}

/// Runs the Python client: `command` with `args`; its JSON.
fn client(port: u16, command: &str, args: &[&str]) -> Value {
    let python = peer_python("wyoming", &[WYOMING]);
    let script = workspace_root().join("tests/python/wyoming_client.py");
    let out = Command::new(python)
        .arg(script)
        .args([command, "127.0.0.1", &port.to_string()])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "wyoming client {command} {args:?}: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap_or("null").to_owned())
        .collect()
}

/// `samples` (16 kHz mono) as a 44.1 kHz stereo WAV.
fn write_44k_stereo(path: &Path, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let mut up = voicehost_audio::Resampler::new(16_000, 44_100).unwrap();
    let mut at_44k = up.process(samples);
    at_44k.extend(up.flush());
    for s in voicehost_audio::from_mono(&at_44k, 2) {
        w.write_sample(voicehost_audio::to_i16(s)).unwrap();
    }
    w.finalize().unwrap();
}

fn jfk() -> PathBuf {
    model("audio/jfk.wav")
}

const JFK: &str = "and so my fellow americans ask not what your country can do for you ask what you can do for your country";

fn jfk_heard(text: &str) {
    let said = words(text);
    let expected = words(JFK);
    let known = expected.iter().filter(|w| said.contains(w)).count();
    assert!(known * 10 >= expected.len() * 9, "{text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistants_client_describes_transcribes_synthesizes_and_detects() {
    let s = server(&[]);
    let dir = s.setup.dir.path();
    let played_before = played_ms(&s);
    let mut wakes = KwdServiceClient::new(channel(s.grpc[0]))
        .events(EventsRequest {})
        .await
        .unwrap()
        .into_inner();

    // describe → info, parsed by the package's own Info.from_event. The server learns the
    // wake models once kwd has loaded them (it asks again every 2 s until then): on a busy
    // machine the first answer may list no wake model yet.
    let started = std::time::Instant::now();
    let d = loop {
        let d = client(s.port, "describe", &[]);
        if !d["info"]["wake"][0].is_null() || started.elapsed() > Duration::from_secs(20) {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!(
        "describe answered in {:.1} ms (wake models listed {} ms after the host was ready)",
        d["ms"].as_f64().unwrap(),
        started.elapsed().as_millis()
    );
    let info = &d["info"];
    eprintln!("info: {info}");
    assert_eq!(info["asr"][0]["name"], "voicehost-whisper");
    assert_eq!(info["asr"][0]["models"][0]["name"], "ggml-tiny.en");
    assert_eq!(info["asr"][0]["models"][0]["languages"][0], "en");
    assert_eq!(info["tts"][0]["name"], "voicehost-piper");
    assert_eq!(info["tts"][0]["voices"][0]["name"], "en_US-joe-medium");
    assert_eq!(info["tts"][0]["supports_synthesize_streaming"], true);
    assert_eq!(info["wake"][0]["models"][0]["name"], "alexa_v0.1");
    for part in ["asr", "tts", "wake"] {
        assert_eq!(info[part][0]["installed"], true, "{part}");
    }

    // transcribe: 16 kHz mono, then the same at 44.1 kHz stereo.
    let t = client(s.port, "transcribe", &[jfk().to_str().unwrap()]);
    eprintln!("transcribe jfk.wav: {t}");
    jfk_heard(t["text"].as_str().unwrap());
    assert_eq!(
        strs(&t["types"]),
        [
            "transcript-start",
            "transcript-chunk",
            "transcript",
            "transcript-stop"
        ]
    );
    assert_eq!(t["chunks"], t["text"]);
    let stereo = dir.join("jfk-44k-stereo.wav");
    write_44k_stereo(&stereo, &read_wav_16k(&jfk()));
    let t = client(s.port, "transcribe", &[stereo.to_str().unwrap()]);
    eprintln!("transcribe jfk at 44.1 kHz stereo: {t}");
    jfk_heard(t["text"].as_str().unwrap());

    // synthesize: the voice's audio, which Whisper (through this server) hears back.
    let wav = dir.join("test123.wav");
    let y = client(
        s.port,
        "synthesize",
        &["Test 1 2 3.", wav.to_str().unwrap()],
    );
    eprintln!("synthesize: {y}");
    assert_eq!(strs(&y["types"]), ["audio-start", "audio-stop"]);
    assert_eq!(y["rate"], 22_050);
    let back = client(s.port, "transcribe", &[wav.to_str().unwrap()]);
    // Whisper writes it "Test 1, 2, 3.", "Test 1-2-3." or "Test 123.".
    let heard = words(back["text"].as_str().unwrap()).concat();
    let digits: String = heard.chars().filter(char::is_ascii_digit).collect();
    assert!(
        heard.contains("test") && digits == "123",
        "Whisper heard {:?}",
        back["text"]
    );
    // Streamed as an LLM writes it: one audio stream per sentence, the compat copy of the
    // whole text not spoken again.
    let two = "The capital of France is Paris. It is on the Seine.";
    let streamed = dir.join("streamed.wav");
    let z = client(
        s.port,
        "synthesize",
        &[two, streamed.to_str().unwrap(), "--stream"],
    );
    eprintln!("streamed synthesize: {z}");
    assert_eq!(
        strs(&z["types"]),
        [
            "audio-start",
            "audio-stop",
            "audio-start",
            "audio-stop",
            "synthesize-stopped"
        ]
    );
    let whole = client(
        s.port,
        "synthesize",
        &[two, dir.join("whole.wav").to_str().unwrap()],
    );
    let (a, b) = (
        z["audio_ms"].as_f64().unwrap(),
        whole["audio_ms"].as_f64().unwrap(),
    );
    assert!(a < b * 1.3, "streamed {a} ms vs whole {b} ms: said twice?");
    let unknown = client(
        s.port,
        "synthesize",
        &[
            "Hi.",
            dir.join("x.wav").to_str().unwrap(),
            "--voice",
            "nobody",
        ],
    );
    assert_eq!(unknown["errors"][0]["code"], "unknown-voice", "{unknown}");

    // detect: "Alexa" → detection; jfk.wav → not-detected.
    let alexa = tts_speech(&["Alexa."]).await;
    let clip = dir.join("alexa.wav");
    write_wav_16k(&clip, &scene(3.0, &[(1.0, &alexa[0])]));
    let w = client(
        s.port,
        "detect",
        &[clip.to_str().unwrap(), "--name", "alexa"],
    );
    eprintln!("detect Alexa: {w}");
    assert_eq!(w["detections"][0]["name"], "alexa_v0.1", "{w}");
    let ts = w["detections"][0]["timestamp"].as_u64().unwrap();
    assert!((1000..=2800).contains(&ts), "detected at {ts} ms of audio");
    let n = client(s.port, "detect", &[jfk().to_str().unwrap()]);
    assert_eq!(strs(&n["types"]), ["not-detected"], "{n}");

    // A remote wake word never reached kwd's Events (the local assistant's wake), and
    // nothing was played here.
    let heard = tokio::time::timeout(Duration::from_millis(500), wakes.message()).await;
    assert!(
        !matches!(heard, Ok(Ok(Some(_)))),
        "a client's wake word reached kwd's Events: {heard:?}"
    );
    let played_ms = played_ms(&s) - played_before;
    assert!(
        played_ms < 100,
        "tts played {played_ms} ms of a client's speech"
    );
    let mut s = s;
    s.host.terminate();
}

/// Sends `bytes` on a new connection and reads what comes back until the server closes it
/// or `wait` passes.
fn raw(port: u16, bytes: &[u8], wait: Duration) -> (String, bool) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(wait)).unwrap();
    let _ = c.write_all(bytes);
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    let closed = loop {
        match c.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_an_error_or_a_closed_connection_and_nothing_breaks() {
    let s = server(&[
        ("max_connections", "8"),
        ("max_payload_bytes", "65536"),
        ("idle_timeout_ms", "1000"),
    ]);
    let long = Duration::from_secs(3);
    let cases: Vec<(&str, Vec<u8>, &str, bool)> = vec![
        ("a header that is not JSON", b"hello there\n".to_vec(), "\"bad-frame\"", true),
        (
            // The server waits for the rest until idle_timeout_ms, then closes.
            "data_length beyond what is sent",
            b"{\"type\":\"transcribe\",\"data_length\":100}\n{\"a\":1}".to_vec(),
            "",
            true,
        ),
        (
            "a header line over 64 KiB",
            format!("{{\"type\":\"x\",\"data\":{{\"a\":\"{}\"}}}}\n", "y".repeat(70_000)).into_bytes(),
            "\"too-large\"",
            true,
        ),
        (
            "a payload over max_payload_bytes",
            b"{\"type\":\"audio-chunk\",\"payload_length\":70000}\n".to_vec(),
            "\"too-large\"",
            true,
        ),
        // Requests that cannot be served: an error, and the connection serves on (the
        // describe after them is answered).
        (
            "audio without audio-start",
            b"{\"type\":\"audio-chunk\",\"data\":{\"rate\":16000,\"width\":2,\"channels\":1},\"payload_length\":4}\n\x00\x00\x00\x00{\"type\":\"describe\"}\n".to_vec(),
            "\"no-audio-start\"",
            false,
        ),
        (
            "8-bit audio",
            b"{\"type\":\"transcribe\"}\n{\"type\":\"audio-start\",\"data\":{\"rate\":16000,\"width\":1,\"channels\":1}}\n{\"type\":\"describe\"}\n".to_vec(),
            "\"unsupported-audio\"",
            false,
        ),
        (
            "an unknown event",
            b"{\"type\":\"flux-capacitor\",\"payload_length\":3}\nabc{\"type\":\"describe\"}\n".to_vec(),
            "",
            false,
        ),
    ];
    for (what, bytes, expect, fatal) in cases {
        let (got, closed) = raw(s.port, &bytes, long);
        eprintln!("{what}: closed {closed}, {:.200}", got.replace('\n', " | "));
        assert!(got.contains(expect), "{what}: {got:.300}");
        // Closed by the server: at once after a framing error, after idle_timeout_ms (1 s)
        // otherwise.
        assert!(closed, "{what}: not closed");
        assert_eq!(
            got.contains("\"type\":\"info\""),
            !fatal,
            "{what}: served on after it? {got:.300}"
        );
    }

    // A client that goes away mid-stream (transcribe and detect).
    for start in ["transcribe", "detect"] {
        let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        let chunk = format!(
            "{{\"type\":\"{start}\"}}\n{{\"type\":\"audio-start\",\"data\":{{\"rate\":16000,\"width\":2,\"channels\":1}}}}\n{{\"type\":\"audio-chunk\",\"data\":{{\"rate\":16000,\"width\":2,\"channels\":1}},\"payload_length\":3200}}\n"
        );
        c.write_all(chunk.as_bytes()).unwrap();
        c.write_all(&[0u8; 3200]).unwrap();
        drop(c);
    }

    // 20 connections at once with 8 allowed: the others are told and closed; every one
    // that got in is answered. (First the connections above close: idle_timeout_ms.)
    tokio::time::sleep(Duration::from_secs(2)).await;
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let port = s.port;
            std::thread::spawn(move || {
                raw(
                    port,
                    b"{\"type\":\"describe\"}\n",
                    Duration::from_millis(1500),
                )
                .0
            })
        })
        .collect();
    let answers: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let infos = answers
        .iter()
        .filter(|a| a.contains("\"type\":\"info\""))
        .count();
    let busy = answers
        .iter()
        .filter(|a| a.contains("too-many-connections"))
        .count();
    eprintln!("20 at once: {infos} answered, {busy} refused as too many");
    assert_eq!(infos + busy, 20, "{answers:?}");
    assert!(
        (1..=8).contains(&infos),
        "{infos} answered at once, 8 allowed"
    );

    // Everything still serves, and a real client still gets its answer.
    for port in s.grpc {
        assert!(serving(port, "").await, "service on {port} not SERVING");
    }
    let d = client(s.port, "describe", &[]);
    assert_eq!(d["info"]["wake"][0]["models"][0]["name"], "alexa_v0.1");
    let mut s = s;
    assert!(s.host.wait_exit(Duration::ZERO).is_none(), "the host died");
    s.host.terminate();
}

/// `voicehost validate` says what a LAN bind exposes; loopback says nothing.
#[test]
fn a_lan_bind_is_accepted_with_a_notice() {
    for (bind, notice) in [("0.0.0.0", true), ("127.0.0.1", false)] {
        let mut setup = Setup::new();
        setup.section("wyoming", &[("bind", bind), ("wyoming_port", "10799")]);
        let (status, out) = setup.run_to_exit("validate", Duration::from_secs(30));
        assert!(status.success(), "{out}");
        assert_eq!(
            out.contains(&format!("notice: [wyoming] bind = {bind}")),
            notice,
            "{out}"
        );
        if notice {
            assert!(out.contains("without authentication"), "{out}");
        }
    }
}
