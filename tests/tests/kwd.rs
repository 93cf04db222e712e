//! The kwd plugin: the openWakeWord engine against the reference openwakeword 0.4.0, wake
//! detections on speech from the project's own tts (Kokoro af_heart) and from espeak-ng,
//! and the plugin end to end behind the real stt.
//! The file is long because it covers both levels, the engine and the plugin, which share
//! one set of speech clips synthesised once per test run.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio_stream::StreamExt;
use tonic::Code;
use voicehost_plugin_kwd::{Detector, Engine, EngineKind, ModelPaths, RATE};
use voicehost_plugin_runtime::now_us;
use voicehost_proto::kwd::v1::kwd_service_client::KwdServiceClient;
use voicehost_proto::kwd::v1::{
    DisableRequest, EnableRequest, EventsRequest, GetStateRequest, KwdEvent, WakeDetected,
    kwd_event,
};
use voicehost_tests::{
    HostProc, Setup, channel, espeak, free_port, kwd_keys, model, openwakeword_reference,
    read_wav_16k, scene, serving, stt_keys, trim_silence, tts_speech, wait_app_events, white_noise,
    workers_on_port, write_wav_16k,
};

/// Speech clips, 16 kHz mono, made once per test run.
struct Clips {
    tts_alexa: Vec<f32>,
    tts_other: Vec<Vec<f32>>,
    espeak_alexa: Vec<f32>,
    espeak_other: Vec<f32>,
    jfk: Vec<f32>,
}

const OTHER_WORDS: [&str; 2] = [
    "Turn on the lights in the kitchen, please.",
    "Hello there, what a lovely day it is.",
];

fn clips() -> &'static Clips {
    static CLIPS: OnceLock<Clips> = OnceLock::new();
    CLIPS.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mut tts = rt.block_on(tts_speech(&["Alexa.", OTHER_WORDS[0], OTHER_WORDS[1]]));
        let tts_other = tts.split_off(1);
        Clips {
            tts_alexa: trim_silence(&tts[0]),
            tts_other,
            espeak_alexa: trim_silence(&espeak("Alexa")),
            espeak_other: espeak(OTHER_WORDS[0]),
            jfk: read_wav_16k(&model("audio/jfk.wav")),
        }
    })
}

fn wake_model(name: &str) -> PathBuf {
    model(&format!("openwakeword/{name}.onnx"))
}

fn engine(wake: &[&str]) -> Engine {
    Engine::load(&ModelPaths {
        engine: EngineKind::OpenWakeWord,
        onnxruntime: model("onnxruntime/libonnxruntime.so"),
        tflite: PathBuf::new(),
        melspectrogram: wake_model("melspectrogram"),
        embedding: wake_model("embedding_model"),
        wake: wake.iter().map(|w| wake_model(w)).collect(),
        micro_window: None,
    })
    .unwrap()
}

/// Every chunk's scores for `samples` fed in 10 ms frames, as stt sends them.
fn scores(engine: &mut Engine, samples: &[f32]) -> Vec<Vec<f32>> {
    engine.reset().unwrap();
    samples
        .chunks(160)
        .flat_map(|frame| {
            let scaled: Vec<f32> = frame.iter().map(|s| s * 32768.0).collect();
            engine.push(&scaled).unwrap().into_iter().map(|s| s.scores)
        })
        .collect()
}

/// Detections (chunk index, score) with the default threshold 0.6 and cooldown 1 s.
fn detections(engine: &mut Engine, samples: &[f32]) -> Vec<(usize, f32)> {
    let mut detector = Detector::new(vec![0.6; engine.models().len()], 1000, RATE);
    scores(engine, samples)
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let position = (i as u64 + 1) * voicehost_plugin_kwd::CHUNK as u64;
            detector.observe(position, s).map(|d| (i, d.score))
        })
        .collect()
}

fn max_score(engine: &mut Engine, samples: &[f32]) -> f32 {
    scores(engine, samples)
        .iter()
        .flatten()
        .fold(0.0, |a, &b| a.max(b))
}

#[test]
fn scores_match_openwakeword_0_4_0() {
    let c = clips();
    let noise = white_noise(2.0);
    let audio = scene(
        20.0,
        &[
            (1.0, &c.tts_alexa),
            (3.0, &c.espeak_alexa),
            (5.0, &c.tts_other[0]),
            (8.0, &c.jfk),
            (17.5, &noise),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("parity.wav");
    write_wav_16k(&wav, &audio);
    // Both sides read the same 16-bit samples.
    let audio = read_wav_16k(&wav);
    let names = ["alexa_v0.1", "hey_jarvis_v0.1"];
    let reference = openwakeword_reference(&wav, &names.map(wake_model), false);
    assert_eq!(reference.models, names);
    let ours = scores(&mut engine(&names), &audio);
    assert_eq!(ours.len(), reference.scores.len(), "chunk count");
    let mut worst = (0.0f32, 0, 0);
    for (i, (a, b)) in ours.iter().zip(&reference.scores).enumerate() {
        for m in 0..names.len() {
            let d = (a[m] - b[m]).abs();
            if d > worst.0 {
                worst = (d, i, m);
            }
        }
    }
    let peak = |m: usize| reference.scores.iter().map(|s| s[m]).fold(0.0, f32::max);
    eprintln!(
        "{} chunks, largest difference {:.2e} (chunk {}, {}); reference peaks alexa {:.3}, hey_jarvis {:.3}",
        ours.len(),
        worst.0,
        worst.1,
        names[worst.2],
        peak(0),
        peak(1)
    );
    assert!(
        worst.0 <= 1e-3,
        "scores differ by {} at chunk {}",
        worst.0,
        worst.1
    );
    assert!(
        peak(0) > 0.9,
        "the reference does not hear Alexa: the test audio is wrong"
    );
}

#[test]
fn the_streamed_embedding_model_scores_like_the_whole_one() {
    let c = clips();
    let audio = scene(
        17.0,
        &[(1.0, &c.tts_alexa), (3.0, &c.espeak_alexa), (5.0, &c.jfk)],
    );
    let mut e = engine(&["alexa_v0.1", "hey_jarvis_v0.1"]);
    assert!(
        e.streaming(),
        "the stock embedding model is cut for streaming"
    );
    let streamed = scores(&mut e, &audio);
    e.set_streaming(false);
    let whole = scores(&mut e, &audio);
    let worst = streamed
        .iter()
        .flatten()
        .zip(whole.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    eprintln!("streamed vs whole: largest score difference {worst:.2e}");
    assert!(worst < 1e-4, "{worst}");
}

#[test]
fn alexa_from_kokoro_and_from_espeak_is_detected_exactly_once() {
    let c = clips();
    let mut e = engine(&["alexa_v0.1"]);
    for (who, alexa) in [("kokoro", &c.tts_alexa), ("espeak-ng", &c.espeak_alexa)] {
        let hits = detections(&mut e, &scene(4.0, &[(1.0, alexa)]));
        assert_eq!(hits.len(), 1, "{who}: {hits:?}");
        eprintln!("{who}: detected with {:.3}", hits[0].1);
    }
}

#[test]
fn twice_within_a_second_is_one_event_and_two_seconds_apart_is_two() {
    let c = clips();
    let mut e = engine(&["alexa_v0.1"]);
    for (who, alexa) in [("kokoro", &c.tts_alexa), ("espeak-ng", &c.espeak_alexa)] {
        let length = alexa.len() as f32 / RATE as f32;
        // The second starts 0.2 s after the first ends: onsets less than a second apart.
        let second = 1.0 + length + 0.2;
        assert!(second - 1.0 < 1.0, "{who}: the clip is {length} s long");
        let close = detections(&mut e, &scene(5.0, &[(1.0, alexa), (second, alexa)]));
        assert_eq!(
            close.len(),
            1,
            "{who}, onsets {:.2} s apart: {close:?}",
            second - 1.0
        );
        let apart = detections(&mut e, &scene(6.0, &[(1.0, alexa), (3.0, alexa)]));
        assert_eq!(apart.len(), 2, "{who}, onsets 2 s apart: {apart:?}");
    }
}

#[test]
fn speech_without_the_wake_word_silence_and_noise_fire_nothing() {
    let c = clips();
    let mut e = engine(&["alexa_v0.1"]);
    let mut cases: Vec<(&str, Vec<f32>)> = vec![
        ("jfk.wav", scene(13.0, &[(0.5, &c.jfk)])),
        ("espeak-ng sentence", scene(5.0, &[(0.5, &c.espeak_other)])),
        ("silence", vec![0.0; 5 * RATE as usize]),
        ("white noise", white_noise(5.0)),
    ];
    for (text, clip) in OTHER_WORDS.iter().zip(&c.tts_other) {
        cases.push((text, scene(6.0, &[(0.5, clip)])));
    }
    for (what, audio) in cases {
        let hits = detections(&mut e, &audio);
        let peak = max_score(&mut e, &audio);
        eprintln!("{what}: peak score {peak:.4}");
        assert!(hits.is_empty(), "{what}: {hits:?}");
    }
}

#[test]
fn a_second_wake_model_runs_alongside_with_its_own_scores() {
    let c = clips();
    let mut e = engine(&["alexa_v0.1", "hey_jarvis_v0.1"]);
    assert_eq!(e.models(), ["alexa_v0.1", "hey_jarvis_v0.1"]);
    let s = scores(&mut e, &scene(4.0, &[(1.0, &c.tts_alexa)]));
    let alexa = s.iter().map(|s| s[0]).fold(0.0, f32::max);
    let jarvis = s.iter().map(|s| s[1]).fold(0.0, f32::max);
    assert!(
        alexa > 0.9 && jarvis < 0.2,
        "alexa {alexa}, hey_jarvis {jarvis}"
    );
}

#[test]
fn missing_and_corrupt_models_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("alexa_v0.1.onnx");
    std::fs::write(&corrupt, b"not an onnx model").unwrap();
    let paths = |wake: PathBuf| ModelPaths {
        engine: EngineKind::OpenWakeWord,
        onnxruntime: model("onnxruntime/libonnxruntime.so"),
        tflite: PathBuf::new(),
        melspectrogram: wake_model("melspectrogram"),
        embedding: wake_model("embedding_model"),
        wake: vec![wake],
        micro_window: None,
    };
    let missing = Engine::load(&paths(dir.path().join("nope.onnx"))).unwrap_err();
    assert!(
        missing.contains("nope.onnx not found")
            && missing.contains("voicehost models fetch --only openwakeword"),
        "{missing}"
    );
    let bad = Engine::load(&paths(corrupt.clone())).unwrap_err();
    assert!(bad.contains(&corrupt.display().to_string()), "{bad}");
    // A model of the wrong kind: the embedding model where a wake model goes.
    let wrong = Engine::load(&paths(wake_model("embedding_model"))).unwrap_err();
    assert!(wrong.contains("a wake model takes [1, n, 96]"), "{wrong}");
}

/// A host running the real stt on `input` (looped, in real time) and the real kwd
/// listening to it. Returns the stt and kwd ports.
fn stt_and_kwd(input: &std::path::Path) -> (Setup, HostProc, u16, u16) {
    let mut setup = Setup::new();
    let (stt, kwd) = (free_port(), free_port());
    let looped = PathBuf::from(format!("{}:loop", input.display()));
    setup.section_with("stt", stt_keys(stt, &looped), &[]);
    setup.section_with("kwd", kwd_keys(kwd), &[]);
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(120));
    (setup, host, stt, kwd)
}

/// A 4 s loop with one "Alexa" (Kokoro) at 1 s.
fn alexa_loop(dir: &std::path::Path) -> PathBuf {
    let wav = dir.join("alexa-loop.wav");
    write_wav_16k(&wav, &scene(4.0, &[(1.0, &clips().tts_alexa)]));
    wav
}

async fn next_wake(
    events: &mut tonic::Streaming<KwdEvent>,
    within: Duration,
) -> Option<WakeDetected> {
    match tokio::time::timeout(within, events.next()).await {
        Err(_) => None,
        Ok(e) => match e.unwrap().unwrap().event {
            Some(kwd_event::Event::WakeDetected(w)) => Some(w),
            None => panic!("an empty event"),
        },
    }
}

fn reason(r: &str) -> DisableRequest {
    DisableRequest { reason: r.into() }
}

#[test]
fn the_plugin_hears_alexa_through_stt_once_per_utterance_and_can_be_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let input = alexa_loop(dir.path());
    let (setup, mut host, _stt, port) = stt_and_kwd(&input);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut kwd = KwdServiceClient::new(channel(port));
        let state = kwd
            .get_state(GetStateRequest {})
            .await
            .unwrap()
            .into_inner();
        assert!(state.enabled && state.audio_connected, "{state:?}");
        assert_eq!(state.models, ["alexa_v0.1"]);
        let mut events = kwd.events(EventsRequest {}).await.unwrap().into_inner();

        // One event per loop: the next comes a loop (4 s) later, nothing in between.
        let first = next_wake(&mut events, Duration::from_secs(10))
            .await
            .unwrap();
        let at = Instant::now();
        assert_eq!(first.model, "alexa_v0.1");
        assert!(first.confidence >= 0.6, "{first:?}");
        assert!((now_us() - first.ts_unix_us).abs() < 5_000_000, "{first:?}");
        let second = next_wake(&mut events, Duration::from_secs(6))
            .await
            .unwrap();
        let gap = at.elapsed();
        // A second event for the same word would come at once, a missed loop after 8 s.
        eprintln!("{gap:?} between detections of a 4 s loop");
        assert!(
            gap > Duration::from_secs(2) && gap < Duration::from_secs(6),
            "{gap:?} between detections of a 4 s loop: {second:?}"
        );

        // Disabled: a whole loop passes without an event.
        let state = kwd.disable(reason("dialog")).await.unwrap().into_inner();
        assert!(
            !state.enabled && state.disabled_by == ["dialog"],
            "{state:?}"
        );
        assert!(
            next_wake(&mut events, Duration::from_secs(5))
                .await
                .is_none()
        );
        // Another caller's Enable does not lift this Disable.
        let still = kwd
            .enable(EnableRequest {
                reason: "tts_playing".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!still.enabled, "{still:?}");
        let state = kwd
            .enable(EnableRequest {
                reason: "dialog".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(state.enabled && state.disabled_by.is_empty(), "{state:?}");
        assert!(
            next_wake(&mut events, Duration::from_secs(6))
                .await
                .is_some()
        );

        for bad in ["", "no spaces", &"x".repeat(65)] {
            let err = kwd.disable(reason(bad)).await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}");
            assert!(
                err.message().contains("letters, digits"),
                "{}",
                err.message()
            );
        }
    });
    let log = std::fs::read_to_string(setup.log_dir().join("app.log")).unwrap_or_default();
    assert!(log.contains("wake_detected"), "{log}");
    host.terminate();
}

#[test]
fn kwd_reconnects_by_itself_when_stt_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let input = alexa_loop(dir.path());
    let (setup, mut host, stt, port) = stt_and_kwd(&input);
    let kwd_pid = workers_on_port(port);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut kwd = KwdServiceClient::new(channel(port));
        let mut events = kwd.events(EventsRequest {}).await.unwrap().into_inner();
        assert!(
            next_wake(&mut events, Duration::from_secs(10))
                .await
                .is_some()
        );

        // stt's worker dies; the host restarts it after 1 s.
        for pid in workers_on_port(stt) {
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        let lost = Instant::now();
        while serving(port, "").await {
            assert!(
                lost.elapsed() < Duration::from_secs(15),
                "kwd still SERVING"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let state = kwd
            .get_state(GetStateRequest {})
            .await
            .unwrap()
            .into_inner();
        assert!(!state.audio_connected, "{state:?}");
        while !serving(port, "").await {
            assert!(
                lost.elapsed() < Duration::from_secs(30),
                "kwd did not reconnect"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The same kwd process hears the wake word again.
        assert_eq!(workers_on_port(port), kwd_pid, "kwd was restarted");
        assert!(
            next_wake(&mut events, Duration::from_secs(10))
                .await
                .is_some()
        );
    });
    wait_app_events(
        &setup.log_dir().join("app.log"),
        &["kwd_audio_lost", "service_restarted"],
        Duration::from_secs(5),
    );
    host.terminate();
}

#[test]
fn a_corrupt_wake_model_stops_startup_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("silence.wav");
    write_wav_16k(&input, &[0.0; 16_000]);
    let corrupt = dir.path().join("alexa_v0.1.onnx");
    std::fs::write(&corrupt, b"not an onnx model").unwrap();
    let mut setup = Setup::new();
    setup.loader("restart_backoff_ms", "100");
    setup.section_with("stt", stt_keys(free_port(), &input), &[]);
    setup.section_with(
        "kwd",
        kwd_keys(free_port()),
        &[("wake_models", corrupt.to_str().unwrap())],
    );
    let (status, out) = setup.run_to_exit("run", Duration::from_secs(120));
    assert!(!status.success());
    assert!(
        out.contains("NOT_SERVING") && out.contains(&corrupt.display().to_string()),
        "{out}"
    );
}
