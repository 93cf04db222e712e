//! KWD benchmark: CPU time per second of audio for this plugin's openWakeWord engine
//! against the Python openwakeword 0.4.0 (same ONNX models, same ONNX Runtime 1.31.1, same
//! audio, one thread each), and the detection latency of the plugin behind the real stt:
//! end of the wake word in the captured audio → `WakeDetected` event.
//!
//! Both engines are measured twice: given the whole clip at once (pure compute, warm
//! caches) and given an 80 ms chunk every 80 ms as a microphone would (what a running
//! assistant costs: every chunk starts with cold caches). The Python figure counts only
//! the time inside `Model.predict`; the plugin's figure is its whole worker process live
//! behind stt, gRPC stream included.
//!
//! `cargo build --release --workspace && cargo bench -p voicehost-tests --bench kwd`
//! (models fetched). The peer is installed from PyPI into `~/.cache/voicehost/peers-venv`
//! on first use. The audio: a minute of Kokoro and espeak-ng speech with and without
//! "Alexa", jfk.wav, silence and noise.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use tokio_stream::StreamExt;
use voicehost_plugin_kwd::{Engine, EngineKind, ModelPaths};
use voicehost_proto::kwd::v1::kwd_service_client::KwdServiceClient;
use voicehost_proto::kwd::v1::{EventsRequest, kwd_event};
use voicehost_proto::stt::v1::AudioFramesRequest;
use voicehost_proto::stt::v1::stt_service_client::SttServiceClient;
use voicehost_tests::{
    Setup, app_events, channel, espeak, free_port, kwd_keys, model, openwakeword_reference,
    read_wav_16k, scene, stt_keys, trim_silence, tts_speech, white_noise, workers_on_port,
    write_wav_16k,
};

const RUNS: usize = 3;

/// Seconds of CPU time on `clock` (the process's or the calling thread's).
fn cpu_seconds_on(clock: libc::clockid_t) -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(clock, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn cpu_seconds() -> f64 {
    cpu_seconds_on(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU seconds of every thread of process `pid` (from schedstat, nanoseconds).
fn process_cpu(pid: u32) -> f64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok()?;
            stat.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum::<u64>() as f64
        * 1e-9
}

fn wake_model(name: &str) -> std::path::PathBuf {
    model(&format!("openwakeword/{name}.onnx"))
}

/// Our engine with the fetched models and alexa_v0.1.
fn alexa_engine() -> Engine {
    Engine::load(&ModelPaths {
        engine: EngineKind::OpenWakeWord,
        onnxruntime: model("onnxruntime/libonnxruntime.so"),
        tflite: std::path::PathBuf::new(),
        melspectrogram: wake_model("melspectrogram"),
        embedding: wake_model("embedding_model"),
        wake: vec![wake_model("alexa_v0.1")],
        micro_window: None,
    })
    .unwrap()
}

fn thread_cpu_seconds() -> f64 {
    cpu_seconds_on(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU milliseconds per second of audio for our engine fed `audio` in 80 ms chunks, one
/// every 80 ms; only the time inside `Engine::push` counts, as for the Python peer.
fn ours_realtime(audio: &[f32]) -> f64 {
    let mut engine = alexa_engine();
    let began = Instant::now();
    let mut cpu = 0.0;
    for (i, chunk) in audio.chunks_exact(1280).enumerate() {
        let due = began + Duration::from_millis(80 * (i as u64 + 1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let scaled: Vec<f32> = chunk.iter().map(|s| s * 32768.0).collect();
        let before = thread_cpu_seconds();
        engine.push(&scaled).unwrap();
        cpu += thread_cpu_seconds() - before;
    }
    cpu * 1000.0 / (audio.len() as f64 / 16_000.0)
}

/// CPU milliseconds per second of audio for our engine on `audio` (16-bit scale in 10 ms
/// frames, as stt sends it); the best of [`RUNS`].
fn ours(audio: &[f32]) -> f64 {
    let mut engine = alexa_engine();
    let seconds = audio.len() as f64 / 16_000.0;
    (0..RUNS)
        .map(|_| {
            engine.reset().unwrap();
            let start = cpu_seconds();
            for frame in audio.chunks(160) {
                let scaled: Vec<f32> = frame.iter().map(|s| s * 32768.0).collect();
                engine.push(&scaled).unwrap();
            }
            (cpu_seconds() - start) * 1000.0 / seconds
        })
        .fold(f64::INFINITY, f64::min)
}

/// The plugin behind the real stt on a looped 4 s clip with "Alexa" ending at `word_end`
/// seconds: (kwd process CPU ms per second of audio, detection latencies in ms, the part
/// of them from the end of the audio that fired to the event, in ms).
async fn plugin(input: &Path, word_end: f64, listen: Duration) -> (f64, Vec<f64>, Vec<f64>) {
    let mut setup = Setup::new();
    let (stt_port, kwd_port) = (free_port(), free_port());
    let looped = format!("{}:loop", input.display());
    setup.section_with("stt", stt_keys(stt_port, Path::new(&looped)), &[]);
    setup.section_with("kwd", kwd_keys(kwd_port), &[]);
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(120));
    let loop_us = 4_000_000i64;

    // When stt captured its sample 0: any frame's time less its position.
    let mut frames = SttServiceClient::new(channel(stt_port))
        .audio_frames(AudioFramesRequest { frame_ms: 0 })
        .await
        .unwrap()
        .into_inner();
    let f = frames.next().await.unwrap().unwrap();
    let epoch_us = f.ts_unix_us - (f.seq as i64) * 10_000;
    drop(frames);

    let pid = workers_on_port(kwd_port)[0];
    let mut events = KwdServiceClient::new(channel(kwd_port))
        .events(EventsRequest {})
        .await
        .unwrap()
        .into_inner();
    let cpu_before = process_cpu(pid);
    let started = Instant::now();
    let mut latencies = Vec::new();
    while started.elapsed() < listen {
        let left = listen.saturating_sub(started.elapsed());
        let Ok(Some(Ok(e))) = tokio::time::timeout(left, events.next()).await else {
            break;
        };
        let Some(kwd_event::Event::WakeDetected(w)) = e.event else {
            continue;
        };
        // The latest end of the word before the event.
        let since_epoch = w.ts_unix_us - epoch_us;
        let end_in_loop = (word_end * 1e6) as i64;
        let mut end = since_epoch - since_epoch.rem_euclid(loop_us) + end_in_loop;
        if end > w.ts_unix_us - epoch_us + 1_000_000 {
            end -= loop_us;
        }
        latencies.push((since_epoch - end) as f64 / 1000.0);
    }
    let cpu = process_cpu(pid) - cpu_before;
    let seconds = started.elapsed().as_secs_f64();
    host.terminate();
    let mut lags: Vec<f64> = app_events(&setup.log_dir().join("app.log"))
        .iter()
        .filter(|l| l.event == "wake_detected")
        .filter_map(|l| l.field("audio_lag_ms").parse().ok())
        .collect();
    lags.sort_by(f64::total_cmp);
    (cpu * 1000.0 / seconds, latencies, lags)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tts = rt.block_on(tts_speech(&[
        "Alexa.",
        "Turn on the lights in the kitchen, please.",
        "Hello there, what a lovely day it is.",
    ]));
    let tts_alexa = trim_silence(&tts[0]);
    let espeak_alexa = trim_silence(&espeak("Alexa"));
    let espeak_other = espeak("What time is it in Tokyo right now?");
    let jfk = read_wav_16k(&model("audio/jfk.wav"));
    let noise = white_noise(5.0);
    let minute = scene(
        60.0,
        &[
            (1.0, &tts_alexa),
            (4.0, &tts[1]),
            (9.0, &espeak_alexa),
            (12.0, &jfk),
            (25.0, &tts[2]),
            (30.0, &noise),
            (37.0, &espeak_other),
            (42.0, &tts_alexa),
            (45.0, &jfk),
            (57.0, &espeak_alexa),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("minute.wav");
    write_wav_16k(&wav, &minute);
    let audio = read_wav_16k(&wav);

    let peer = (0..RUNS)
        .map(|_| {
            let r = openwakeword_reference(&wav, &[wake_model("alexa_v0.1")], false);
            r.cpu_s * 1000.0 / r.audio_s
        })
        .fold(f64::INFINITY, f64::min);
    let engine = ours(&audio);
    // 20 s in real time each: the first third of the minute.
    let third = dir.path().join("third.wav");
    write_wav_16k(&third, &minute[..20 * 16_000]);
    let live = openwakeword_reference(&third, &[wake_model("alexa_v0.1")], true);
    let peer_live = live.cpu_s * 1000.0 / live.audio_s;
    let engine_live = ours_realtime(&read_wav_16k(&third));

    let clip = dir.path().join("alexa-loop.wav");
    write_wav_16k(&clip, &scene(4.0, &[(1.0, &tts_alexa)]));
    let word_end = 1.0 + tts_alexa.len() as f64 / 16_000.0;
    let (plugin_cpu, mut latencies, lags) =
        rt.block_on(plugin(&clip, word_end, Duration::from_secs(30)));
    latencies.sort_by(f64::total_cmp);

    println!("kwd benchmark (alexa_v0.1, one thread each)");
    println!("  CPU per second of audio, all at once (60 s clip, best of {RUNS}):");
    println!("    openwakeword 0.4.0 (Python)   {peer:7.2} ms");
    println!(
        "    voicehost engine              {engine:7.2} ms   ({:.2}x less CPU)",
        peer / engine
    );
    println!("  CPU per second of audio, an 80 ms chunk every 80 ms (20 s):");
    println!("    openwakeword 0.4.0 (Python)   {peer_live:7.2} ms");
    println!(
        "    voicehost engine              {engine_live:7.2} ms   ({:.2}x less CPU)",
        peer_live / engine_live
    );
    println!(
        "    voicehost kwd plugin process  {plugin_cpu:7.2} ms   ({:.2}x less CPU; whole worker process, 30 s live behind stt)",
        peer_live / plugin_cpu
    );
    if latencies.is_empty() {
        println!("  detection latency: no detection in 30 s");
    } else {
        println!(
            "  detection latency, end of \"Alexa\" (last sample above 1 % of full scale) → WakeDetected, {} detections:",
            latencies.len()
        );
        println!(
            "    median {:.0} ms, min {:.0} ms, max {:.0} ms (negative: the model is sure during the final vowel)",
            latencies[latencies.len() / 2],
            latencies[0],
            latencies[latencies.len() - 1]
        );
    }
    if !lags.is_empty() {
        println!(
            "  of which pipeline (end of the audio chunk that fired → event, app.log audio_lag_ms): median {:.0} ms, max {:.0} ms",
            lags[lags.len() / 2],
            lags[lags.len() - 1]
        );
    }
}
