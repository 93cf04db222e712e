//! TTS benchmark: this plugin's Kokoro engine against the Python `kokoro-onnx` package with
//! the same int8 model, voice and thread count, in one run on the same machine.
//!
//! `cargo bench -p voicehost-tests --bench tts` (models fetched). The peer is installed
//! from PyPI into `~/.cache/voicehost/peers-venv` on first use (`kokoro-onnx==0.6.1`,
//! `onnxruntime==1.31.1`). Figures: time from a first clause's text to its audio (median of
//! RUNS after a warm-up), and the real-time factor (synthesis time / audio time) on a
//! paragraph. Lower is better for both.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use std::time::Duration;

use voicehost_plugin_runtime::PluginConfig;
use voicehost_plugin_tts::{KEYS, KokoroTts, SAMPLE_RATE, Settings};
use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;
use voicehost_tests::{
    Setup, channel, free_port, model, peer_python, streaming_first_audio_ms, tts_keys,
};
use voicehost_tts_sdk::Synthesizer;

const RUNS: usize = 7;
const CLAUSE: &str = "The capital of France is Paris.";
const PARAGRAPH: &str = "The capital of France is Paris. It lies on the river Seine, in the \
north of the country. About two million people live in the city itself, and more than \
twelve million in the wider region around it.";

/// The plugin end to end: `SpeakStream` fed a reply a word every 20 ms (an LLM's pace);
/// time from the first chunk sent to the `started` playback event, median of RUNS
/// (`voicehost_tests::streaming_first_audio_ms`).
async fn streaming_first_audio() -> f64 {
    let mut setup = Setup::new();
    let port = free_port();
    let out = setup.dir.path().join("unused.wav");
    setup.section_with(
        "tts",
        tts_keys(port, &out),
        &[("start_timeout_ms", "120000"), ("output", "null")],
    );
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(180));
    let mut tts = TtsServiceClient::new(channel(port));
    let mut times = streaming_first_audio_ms(&mut tts, PARAGRAPH, RUNS).await;
    host.terminate();
    times.sort_by(f64::total_cmp);
    times[RUNS / 2]
}

fn ours() -> (f64, f64, f64) {
    let config = PluginConfig::new(
        "tts",
        [
            ("model", model("kokoro/kokoro-v1.0.int8.onnx")),
            ("vocab", model("kokoro/vocab.json")),
            (
                "voices_dir",
                model("kokoro/voices/af_heart.bin")
                    .parent()
                    .unwrap()
                    .to_owned(),
            ),
            (
                "onnxruntime_library",
                model("onnxruntime/libonnxruntime.so"),
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v.display().to_string()))
        .into_iter()
        .chain([("threads".to_owned(), "2".to_owned())]),
    )
    .with_keys(KEYS.to_vec());
    let settings = Settings::from_config(&config).unwrap();
    let mut synth = KokoroTts::load(&settings).unwrap();
    synth.synthesize(CLAUSE, "af_heart").unwrap(); // warm-up
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            synth.synthesize(CLAUSE, "af_heart").unwrap();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    // The paragraph as Speak does it: sentence by sentence.
    let t = Instant::now();
    let mut samples = 0;
    for sentence in PARAGRAPH.split_inclusive(". ") {
        samples += synth.synthesize(sentence, "af_heart").unwrap().len();
    }
    let audio_s = samples as f64 / f64::from(SAMPLE_RATE);
    (
        times[RUNS / 2],
        t.elapsed().as_secs_f64() / audio_s,
        audio_s,
    )
}

fn peer() -> (f64, f64, f64) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/kokoro_onnx_peer.py");
    let out = Command::new(peer_python(
        "kokoro_onnx, onnxruntime",
        &["kokoro-onnx==0.6.1", "onnxruntime==1.31.1"],
    ))
    .arg(script)
    .arg(model("kokoro/kokoro-v1.0.int8.onnx"))
    .arg(model("kokoro/voices/af_heart.bin"))
    .args([CLAUSE, PARAGRAPH, &RUNS.to_string()])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    (
        v["first_clause_ms"].as_f64().unwrap(),
        v["rtf"].as_f64().unwrap(),
        v["audio_s"].as_f64().unwrap(),
    )
}

fn main() {
    println!("tts benchmark: Kokoro-82M int8, voice af_heart, 2 threads, CPU");
    println!(
        "first clause: {CLAUSE:?} (median of {RUNS}); paragraph: {} chars",
        PARAGRAPH.len()
    );
    let (our_ttfa, our_rtf, our_audio) = ours();
    let (peer_ttfa, peer_rtf, peer_audio) = peer();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let streaming = runtime.block_on(streaming_first_audio());
    println!(
        "{:<28} {:>16} {:>8} {:>10}",
        "", "first clause ms", "RTF", "audio s"
    );
    println!(
        "{:<28} {:>16.0} {:>8.3} {:>10.2}",
        "voicehost-plugin-tts", our_ttfa, our_rtf, our_audio
    );
    println!(
        "{:<28} {:>16.0} {:>8.3} {:>10.2}",
        "kokoro-onnx 0.6.1 (Python)", peer_ttfa, peer_rtf, peer_audio
    );
    println!(
        "ratio kokoro-onnx / voicehost: first clause {:.2}x, RTF {:.2}x (above 1 = voicehost faster)",
        peer_ttfa / our_ttfa,
        peer_rtf / our_rtf
    );
    println!(
        "voicehost SpeakStream, a word every 20 ms: first chunk → first audio {streaming:.0} ms \
         (median of {RUNS}; first clause after 4 words); kokoro-onnx needs the whole first \
         sentence: {peer_ttfa:.0} ms after it is complete ({:.2}x)",
        (peer_ttfa + 20.0 * 6.0) / streaming
    );
}
