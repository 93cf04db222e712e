//! The Wyoming server against the gRPC path it bridges onto, in one run on the same host
//! (kwd, stt without a microphone, tts with Piper to a null output, the Wyoming plugin):
//!
//! 1. transcribe jfk.wav: Wyoming, `audio-stop` sent → `transcript` received, against stt's
//!    `Transcribe` called directly with the same 16 kHz audio (request → response);
//! 2. a sentence to speech: Wyoming, `synthesize` sent → first `audio-chunk` received,
//!    against tts's `Synthesize` (request → first audio message) and `Speak` (request → its
//!    `Started` playback event: the first audio out).
//!
//! `cargo build --release --workspace && cargo bench -p voicehost-tests --bench wyoming`.
//! Median of RUNS after a warm-up; the ratio Wyoming / gRPC is the bridge's cost (target
//! ≤ 1.2).

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_stream::StreamExt;
use voicehost_proto::common::v1::DialogRef;
use voicehost_proto::stt::v1::TranscribeRequest;
use voicehost_proto::stt::v1::stt_service_client::SttServiceClient;
use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;
use voicehost_proto::tts::v1::{PlaybackEventKind, SpeakRequest, SynthesizeRequest, Wait};
use voicehost_tests::{
    Setup, channel, free_port, kwd_keys, model, piper_keys, read_wav_16k, stt_keys,
};

const RUNS: usize = 7;
const SENTENCE: &str = "The capital of France is Paris.";

/// A Wyoming connection: events written and read as the protocol frames them.
struct Wyoming {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Wyoming {
    fn connect(port: u16) -> Wyoming {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        Wyoming {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
        }
    }

    fn send(&mut self, kind: &str, data: Value, payload: &[u8]) {
        let data = serde_json::to_vec(&data).unwrap();
        let mut header = json!({"type": kind, "data_length": data.len()});
        if !payload.is_empty() {
            header["payload_length"] = payload.len().into();
        }
        let mut bytes = serde_json::to_vec(&header).unwrap();
        bytes.push(b'\n');
        bytes.extend_from_slice(&data);
        bytes.extend_from_slice(payload);
        self.writer.write_all(&bytes).unwrap();
    }

    /// The next event's type and data (the payload is read and dropped).
    fn next(&mut self) -> (String, Value) {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let header: Value = serde_json::from_str(&line).unwrap();
        let mut data = header.get("data").cloned().unwrap_or(json!({}));
        if let Some(n) = header["data_length"].as_u64() {
            let mut buf = vec![0; n as usize];
            self.reader.read_exact(&mut buf).unwrap();
            let extra: Value = serde_json::from_slice(&buf).unwrap();
            for (k, v) in extra.as_object().unwrap() {
                data[k] = v.clone();
            }
        }
        if let Some(n) = header["payload_length"].as_u64() {
            let mut buf = vec![0; n as usize];
            self.reader.read_exact(&mut buf).unwrap();
        }
        (header["type"].as_str().unwrap().to_owned(), data)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn pcm_of(path: &Path) -> Vec<u8> {
    voicehost_audio::to_s16le(&read_wav_16k(path))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut setup = Setup::new();
    let (kwd, stt, tts, grpc, port) = (
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
    );
    let out = setup.dir.path().join("unused.wav");
    setup.section_with("tts", piper_keys(tts, &out), &[("output", "null")]);
    setup.section_with(
        "stt",
        stt_keys(stt, Path::new("unused")),
        &[("input", "null"), ("threads", "1")],
    );
    setup.section_with("kwd", kwd_keys(kwd), &[]);
    setup.section(
        "wyoming",
        &[
            ("port", &grpc.to_string()),
            ("wyoming_port", &port.to_string()),
        ],
    );
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(180));

    let pcm = pcm_of(&model("audio/jfk.wav"));
    let mut stt_client = SttServiceClient::new(channel(stt)).max_encoding_message_size(16 << 20);
    let mut tts_client = TtsServiceClient::new(channel(tts));
    let (mut grpc_stt, mut wy_stt) = (Vec::new(), Vec::new());
    let (mut grpc_synth, mut grpc_speak, mut wy_synth) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..=RUNS {
        // stt, directly.
        let t = Instant::now();
        let r = stt_client
            .transcribe(TranscribeRequest {
                pcm_s16le: pcm.clone(),
                sample_rate: 16_000,
                language: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let direct = t.elapsed().as_secs_f64() * 1000.0;
        // stt, through Wyoming.
        let mut w = Wyoming::connect(port);
        w.send("transcribe", json!({"language": "en"}), &[]);
        let format = json!({"rate": 16000, "width": 2, "channels": 1});
        w.send("audio-start", format.clone(), &[]);
        for chunk in pcm.chunks(2048) {
            w.send("audio-chunk", format.clone(), chunk);
        }
        let t = Instant::now();
        w.send("audio-stop", json!({}), &[]);
        let text = loop {
            let (kind, data) = w.next();
            if kind == "transcript" {
                break data["text"].as_str().unwrap().to_owned();
            }
            assert_ne!(kind, "error", "{data}");
        };
        let bridged = t.elapsed().as_secs_f64() * 1000.0;
        if run == 0 {
            eprintln!("gRPC: {:?}\nWyoming: {text:?}", r.text);
            continue;
        }
        grpc_stt.push(direct);
        wy_stt.push(bridged);

        // tts Synthesize, directly: request → first audio message.
        let t = Instant::now();
        let mut audio = tts_client
            .synthesize(SynthesizeRequest {
                text: SENTENCE.into(),
                voice: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        audio.next().await.unwrap().unwrap();
        grpc_synth.push(t.elapsed().as_secs_f64() * 1000.0);
        while audio.next().await.is_some() {}
        // Speak to the (null) output: request → Started.
        let dialog = format!("bench{run}");
        let mut events = tts_client
            .playback_events(DialogRef {
                dialog_id: dialog.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let sent = voicehost_plugin_runtime::now_us();
        tts_client
            .speak(SpeakRequest {
                text: SENTENCE.into(),
                dialog_id: dialog,
                voice: String::new(),
                wait: Wait::Finished as i32,
            })
            .await
            .unwrap();
        while let Some(Ok(ev)) = events.next().await {
            if ev.kind() == PlaybackEventKind::Started {
                grpc_speak.push((ev.ts_unix_us - sent) as f64 / 1000.0);
                break;
            }
        }
        // Through Wyoming: synthesize → first audio-chunk.
        let mut w = Wyoming::connect(port);
        let t = Instant::now();
        w.send("synthesize", json!({"text": SENTENCE}), &[]);
        let mut first = None;
        loop {
            let (kind, data) = w.next();
            if kind == "audio-chunk" && first.is_none() {
                first = Some(t.elapsed().as_secs_f64() * 1000.0);
            }
            assert_ne!(kind, "error", "{data}");
            if kind == "audio-stop" {
                break;
            }
        }
        wy_synth.push(first.unwrap());
    }
    let (a, b) = (median(wy_stt), median(grpc_stt));
    let (c, d, e) = (median(wy_synth), median(grpc_synth), median(grpc_speak));
    println!("\nvoicehost Wyoming bench: medians of {RUNS} runs (ms)\n");
    println!("{:<52} {:>9} {:>9} {:>7}", "", "Wyoming", "gRPC", "ratio");
    println!(
        "{:<52} {a:>9.1} {b:>9.1} {:>7.2}",
        "transcribe jfk.wav (11 s): audio-stop → transcript",
        a / b
    );
    println!(
        "{:<52} {c:>9.1} {d:>9.1} {:>7.2}",
        "synthesize a sentence: request → first audio",
        c / d
    );
    println!(
        "{:<52} {c:>9.1} {e:>9.1} {:>7.2}",
        "  the same against Speak → Started (played)",
        c / e
    );
    host.terminate();
}
