//! Piper benchmark, in one run on the same machine, at 1 and 2 inference threads:
//!
//! 1. the Piper plugin's engine against the Python `piper-tts` package with the same voice
//!    file, text and thread count (both called directly: no service around them);
//! 2. the Piper and the Kokoro plugins as the host runs them (each in its worker process,
//!    `Speak` over gRPC to a null output as fast as it goes; CPU read from the worker), so
//!    the two engines compare on the same path. (One binary cannot link two tts plugins'
//!    rlibs: both export the plugin symbols.)
//!
//! `cargo build --release --workspace && cargo bench -p voicehost-tests --bench piper`
//! (models `piper`, `kokoro`, `kokoro-voices`, `onnxruntime` fetched). The peer is installed
//! from PyPI into `~/.cache/voicehost/peers-venv` on first use (`piper-tts==1.8.0`,
//! `onnxruntime==1.31.1`). Figures: time from a first clause's text to its audio (median of
//! RUNS after a warm-up; wall and CPU), and the real-time factor (synthesis time / audio
//! time) on a paragraph, sentence by sentence. Lower is better. On a shared machine the CPU
//! figures are the steadier ones: wall time includes waiting for a core.
//! `VOICEHOST_BENCH_THREADS=1` (or `2`) runs one thread count only.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use voicehost_plugin_piper::PiperTts;
use voicehost_plugin_runtime::PluginConfig;
use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;
use voicehost_proto::tts::v1::{SpeakRequest, Wait};
use voicehost_tests::{
    Setup, channel, free_port, model, peer_python, piper_keys, streaming_first_audio_ms, tts_keys,
    workers_on_port,
};
use voicehost_tts_sdk::Synthesizer;

const RUNS: usize = 7;
const CLAUSE: &str = "The capital of France is Paris.";
const PARAGRAPH: &str = "The capital of France is Paris. It lies on the river Seine, in the \
north of the country. About two million people live in the city itself, and more than \
twelve million in the wider region around it.";
const PIPER_VOICE: &str = "en_US-joe-medium";

/// One engine's figures.
#[derive(Debug, Clone, Copy)]
struct Figures {
    first_ms: f64,
    first_cpu_ms: f64,
    rtf: f64,
    rtf_cpu: f64,
    audio_s: f64,
}

/// CPU seconds this process has used (all threads, user + system).
fn own_cpu_s() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// CPU seconds process `pid` has run, all its threads (from each thread's schedstat, in ns).
fn cpu_s_of(pid: u32) -> f64 {
    let mut ns = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let stat = std::fs::read_to_string(task.unwrap().path().join("schedstat"));
        if let Some(first) = stat
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        {
            ns += first;
        }
    }
    ns as f64 / 1e9
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The Piper engine called directly: the clause RUNS times after a warm-up, then the
/// paragraph sentence by sentence (as `Speak` splits it). Also its phoneme ids of the clause.
fn piper_direct(threads: usize) -> (Figures, Vec<i64>) {
    let c = PluginConfig::new(
        "tts",
        [
            ("model", model("piper/en_US-joe-medium.onnx")),
            (
                "onnxruntime_library",
                model("onnxruntime/libonnxruntime.so"),
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v.display().to_string()))
        .into_iter()
        .chain([("threads".to_owned(), threads.to_string())]),
    )
    .with_keys(voicehost_plugin_piper::KEYS.to_vec());
    let mut synth = PiperTts::load(&PiperTts::configure(&c).unwrap()).unwrap();
    let ids = synth.phoneme_ids(CLAUSE).unwrap();
    synth.synthesize(CLAUSE, PIPER_VOICE).unwrap(); // warm-up
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (t, c) = (Instant::now(), own_cpu_s());
        synth.synthesize(CLAUSE, PIPER_VOICE).unwrap();
        walls.push(t.elapsed().as_secs_f64() * 1000.0);
        cpus.push((own_cpu_s() - c) * 1000.0);
    }
    let (t, c) = (Instant::now(), own_cpu_s());
    let mut samples = 0;
    for sentence in PARAGRAPH.split_inclusive(". ") {
        samples += synth.synthesize(sentence, PIPER_VOICE).unwrap().len();
    }
    let (wall, cpu) = (t.elapsed().as_secs_f64(), own_cpu_s() - c);
    let audio_s = samples as f64 / f64::from(synth.sample_rate());
    let figures = Figures {
        first_ms: median(walls),
        first_cpu_ms: median(cpus),
        rtf: wall / audio_s,
        rtf_cpu: cpu / audio_s,
        audio_s,
    };
    (figures, ids)
}

/// piper-tts 1.8.0 with the same voice files and threads; and its phoneme ids of the clause.
fn peer(threads: usize) -> (Figures, Vec<i64>) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/piper_tts_peer.py");
    let out = Command::new(peer_python(
        "piper, onnxruntime",
        &["piper-tts==1.8.0", "onnxruntime==1.31.1"],
    ))
    .arg(script)
    .arg(model("piper/en_US-joe-medium.onnx"))
    .arg(model("piper/en_US-joe-medium.onnx.json"))
    .args([CLAUSE, PARAGRAPH, &RUNS.to_string(), &threads.to_string()])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    let f = |k: &str| v[k].as_f64().unwrap();
    let ids = v["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_i64().unwrap())
        .collect();
    let figures = Figures {
        first_ms: f("first_clause_ms"),
        first_cpu_ms: f("first_clause_cpu_ms"),
        rtf: f("rtf"),
        rtf_cpu: f("rtf_cpu"),
        audio_s: f("audio_s"),
    };
    (figures, ids)
}

/// A tts plugin in the host (its own worker process), `[tts]` keys `keys`: `Speak` of the
/// clause (RUNS after a warm-up) and of the paragraph to a null output as fast as it goes,
/// CPU of the worker; then `SpeakStream` fed the paragraph a word every 20 ms (an LLM's
/// pace): first chunk sent → `started` playback event, median of RUNS.
async fn in_host(keys: Vec<(String, String)>, port: u16, threads: usize) -> (Figures, f64) {
    let mut setup = Setup::new();
    let threads = threads.to_string();
    setup.section_with(
        "tts",
        keys,
        &[
            ("output", "null"),
            ("output_pacing", "fast"),
            ("threads", &threads),
            ("start_timeout_ms", "120000"),
        ],
    );
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(180));
    let worker = *workers_on_port(port).first().unwrap();
    let mut tts = TtsServiceClient::new(channel(port));
    let mut speak = async |text: &str| {
        let (t, c) = (Instant::now(), cpu_s_of(worker));
        let resp = tts
            .speak(SpeakRequest {
                text: text.to_owned(),
                dialog_id: String::new(),
                voice: String::new(),
                wait: Wait::Finished as i32,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(resp.finished);
        let audio_s = f64::from(resp.audio_ms) / 1000.0;
        (t.elapsed().as_secs_f64(), cpu_s_of(worker) - c, audio_s)
    };
    speak(CLAUSE).await; // warm-up
    let (mut walls, mut cpus) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (wall, cpu, _) = speak(CLAUSE).await;
        walls.push(wall * 1000.0);
        cpus.push(cpu * 1000.0);
    }
    let (wall, cpu, audio_s) = speak(PARAGRAPH).await;
    let figures = Figures {
        first_ms: median(walls),
        first_cpu_ms: median(cpus),
        rtf: wall / audio_s,
        rtf_cpu: cpu / audio_s,
        audio_s,
    };

    let times = streaming_first_audio_ms(&mut tts, PARAGRAPH, RUNS).await;
    host.terminate();
    (figures, median(times))
}

fn row(name: &str, f: Figures) {
    println!(
        "{name:<40} {:>9.0} {:>9.0} {:>8.3} {:>8.3} {:>8.2}",
        f.first_ms, f.first_cpu_ms, f.rtf, f.rtf_cpu, f.audio_s
    );
}

fn header() {
    println!(
        "{:<40} {:>9} {:>9} {:>8} {:>8} {:>8}",
        "", "first ms", "(CPU ms)", "RTF", "(CPU)", "audio s"
    );
}

fn main() {
    let threads: Vec<usize> = match std::env::var("VOICEHOST_BENCH_THREADS") {
        Ok(t) => vec![t.parse().expect("VOICEHOST_BENCH_THREADS: 1, 2, …")],
        Err(_) => vec![1, 2],
    };
    println!(
        "piper benchmark: Piper {PIPER_VOICE} vs piper-tts 1.8.0, and vs Kokoro-82M int8 (af_heart); CPU"
    );
    println!(
        "first clause: {CLAUSE:?} (median of {RUNS}); paragraph: {} chars, sentence by sentence",
        PARAGRAPH.len()
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for t in threads {
        println!("\n== {t} inference thread(s)");
        let (ours, our_ids) = piper_direct(t);
        let (theirs, their_ids) = peer(t);
        header();
        row("voicehost-plugin-piper engine", ours);
        row("piper-tts 1.8.0 (Python)", theirs);
        println!(
            "ratio piper-tts / voicehost: first clause {:.2}x (CPU {:.2}x), RTF {:.2}x (CPU \
             {:.2}x); above 1 = voicehost faster",
            theirs.first_ms / ours.first_ms,
            theirs.first_cpu_ms / ours.first_cpu_ms,
            theirs.rtf / ours.rtf,
            theirs.rtf_cpu / ours.rtf_cpu
        );
        println!(
            "phoneme ids of the clause: {}",
            if our_ids == their_ids {
                format!("identical to piper-tts's ({} ids)", our_ids.len())
            } else {
                format!("DIFFER from piper-tts's:\n  ours   {our_ids:?}\n  theirs {their_ids:?}")
            }
        );

        let port = free_port();
        let unused = std::env::temp_dir().join("voicehost-bench-unused.wav");
        let (piper, piper_stream) = runtime.block_on(in_host(piper_keys(port, &unused), port, t));
        let port = free_port();
        let (kokoro, kokoro_stream) = runtime.block_on(in_host(tts_keys(port, &unused), port, t));
        header();
        row("host: voicehost-plugin-piper", piper);
        row("host: voicehost-plugin-tts (Kokoro)", kokoro);
        println!(
            "ratio Kokoro / Piper: first clause {:.1}x (CPU {:.1}x), RTF {:.1}x (CPU {:.1}x)",
            kokoro.first_ms / piper.first_ms,
            kokoro.first_cpu_ms / piper.first_cpu_ms,
            kokoro.rtf / piper.rtf,
            kokoro.rtf_cpu / piper.rtf_cpu
        );
        println!(
            "SpeakStream, a word every 20 ms, first chunk → first audio (median of {RUNS}; \
             first clause after 4 words): Piper {piper_stream:.0} ms, Kokoro {kokoro_stream:.0} ms"
        );
    }
}
