//! kwd with `engine = microwakeword`: the engine on clips (detections, nothing on other
//! speech, errors that name the file), and the plugin hearing "Alexa" through the real
//! stt.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio_stream::StreamExt;
use voicehost_plugin_kwd::{Detector, Engine, EngineKind, ModelPaths, RATE};
use voicehost_proto::kwd::v1::kwd_service_client::KwdServiceClient;
use voicehost_proto::kwd::v1::{EventsRequest, GetStateRequest, kwd_event};
use voicehost_tests::{
    Setup, channel, espeak, free_port, kwd_keys, model, read_wav_16k, scene, stt_keys,
    trim_silence, tts_speech, white_noise, workspace_root, write_wav_16k,
};

/// alexa.json's probability_cutoff (its sliding_window_size is 5).
const CUTOFF: f32 = 0.9;

/// The shipped `[kwd]`'s `micro_window` and alexa's threshold (`model_thresholds`), read
/// from config/config.txt with the host's own parser.
fn shipped() -> (usize, f32) {
    let text = std::fs::read_to_string(workspace_root().join("config/config.txt")).unwrap();
    let (sections, errors) = voicehost::config::ini::parse(&text);
    assert!(errors.is_empty(), "{errors:?}");
    let kwd = sections
        .iter()
        .find(|s| s.name == "kwd")
        .expect("a [kwd] section");
    let value = |key: &str| {
        kwd.entries
            .iter()
            .find(|e| e.key == key)
            .unwrap_or_else(|| panic!("[kwd] {key}"))
            .value
            .clone()
    };
    let threshold = value("model_thresholds")
        .split(',')
        .find_map(|e| e.trim().strip_prefix("alexa:")?.parse().ok())
        .expect("a threshold for alexa");
    (value("micro_window").parse().unwrap(), threshold)
}

struct Clips {
    tts_alexa: Vec<f32>,
    tts_other: Vec<f32>,
    espeak_alexa: Vec<f32>,
    jfk: Vec<f32>,
}

fn clips() -> &'static Clips {
    static CLIPS: OnceLock<Clips> = OnceLock::new();
    CLIPS.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mut tts = rt.block_on(tts_speech(&[
            "Alexa.",
            "Turn on the lights in the kitchen, please.",
        ]));
        Clips {
            tts_other: tts.pop().unwrap(),
            tts_alexa: trim_silence(&tts[0]),
            espeak_alexa: trim_silence(&espeak("Alexa")),
            jfk: read_wav_16k(&model("audio/jfk.wav")),
        }
    })
}

fn paths(wake: Vec<PathBuf>) -> ModelPaths {
    ModelPaths {
        engine: EngineKind::MicroWakeWord,
        onnxruntime: model("onnxruntime/libonnxruntime.so"),
        melspectrogram: model("openwakeword/melspectrogram.onnx"),
        embedding: model("openwakeword/embedding_model.onnx"),
        tflite: model("microwakeword/libtensorflowlite_c.so"),
        wake,
        micro_window: None,
    }
}

fn alexa() -> Engine {
    Engine::load(&paths(vec![model("microwakeword/alexa.tflite")])).unwrap()
}

/// alexa with the shipped window, and the threshold it fires at.
fn shipped_alexa() -> (Engine, f32) {
    let (window, threshold) = shipped();
    let mut p = paths(vec![model("microwakeword/alexa.tflite")]);
    p.micro_window = Some(window);
    (Engine::load(&p).unwrap(), threshold)
}

/// The detections in `samples` (−1…1), fed 10 ms at a time as stt sends them: (where the
/// scores that fired end, in s; score); and the highest score.
fn detections(engine: &mut Engine, samples: &[f32]) -> (Vec<(f64, f32)>, f32) {
    detections_at(engine, samples, CUTOFF)
}

fn detections_at(engine: &mut Engine, samples: &[f32], cutoff: f32) -> (Vec<(f64, f32)>, f32) {
    engine.reset().unwrap();
    let mut detector = Detector::new(vec![cutoff], 1000, RATE);
    let (mut position, mut peak, mut hits) = (0u64, 0.0f32, Vec::new());
    for frame in samples.chunks(160) {
        let scaled: Vec<f32> = frame.iter().map(|s| s * 32768.0).collect();
        for scored in engine.push(&scaled).unwrap() {
            let at = position + scored.at as u64;
            peak = peak.max(scored.scores[0]);
            if let Some(d) = detector.observe(at, &scored.scores) {
                hits.push((at as f64 / f64::from(RATE), d.score));
            }
        }
        position += frame.len() as u64;
    }
    (hits, peak)
}

#[test]
fn alexa_from_kokoro_and_from_espeak_is_detected_once_soon_after_the_word() {
    let c = clips();
    let mut e = alexa();
    assert_eq!(e.models(), ["alexa"]);
    for (who, word) in [("kokoro", &c.tts_alexa), ("espeak-ng", &c.espeak_alexa)] {
        let end = 1.0 + word.len() as f64 / f64::from(RATE);
        let (hits, peak) = detections(&mut e, &scene(4.0, &[(1.0, word)]));
        eprintln!("{who}: {hits:?}, peak {peak:.3}, word ends at {end:.2} s");
        assert_eq!(hits.len(), 1, "{who}: {hits:?}");
        let latency = hits[0].0 - end;
        assert!(
            (-0.3..1.0).contains(&latency),
            "{who}: fired {latency:.2} s after the word's end"
        );
    }
}

/// The shipped window (`[kwd] micro_window`, fewer outputs averaged than the manifest's
/// five) fires on the same words, once each, and sooner after the word's end.
#[test]
fn the_shipped_window_fires_once_and_sooner_than_the_manifests() {
    let c = clips();
    let mut manifest = alexa();
    let (mut ours, threshold) = shipped_alexa();
    for (who, word) in [("kokoro", &c.tts_alexa), ("espeak-ng", &c.espeak_alexa)] {
        let end = 1.0 + word.len() as f64 / f64::from(RATE);
        let audio = scene(4.0, &[(1.0, word)]);
        let (slow, _) = detections(&mut manifest, &audio);
        let (fast, peak) = detections_at(&mut ours, &audio, threshold);
        eprintln!(
            "{who}: after the word's end, manifest {:.0} ms, shipped {:.0} ms (peak {peak:.3})",
            (slow[0].0 - end) * 1000.0,
            (fast[0].0 - end) * 1000.0
        );
        assert_eq!(fast.len(), 1, "{who}: {fast:?}");
        assert!(fast[0].0 < slow[0].0, "{who}: {fast:?} not before {slow:?}");
    }
    for (what, audio) in [
        ("jfk.wav", scene(13.0, &[(0.5, &c.jfk)])),
        ("kokoro sentence", scene(6.0, &[(0.5, &c.tts_other)])),
        ("white noise", white_noise(5.0)),
    ] {
        let (hits, peak) = detections_at(&mut ours, &audio, threshold);
        eprintln!("shipped window, {what}: peak {peak:.4}");
        assert!(hits.is_empty(), "{what}: {hits:?}");
    }
    let mut wide = paths(vec![model("microwakeword/alexa.tflite")]);
    wide.micro_window = Some(101);
    let err = Engine::load(&wide).unwrap_err();
    assert!(
        err.contains("window of 101 outputs is out of range"),
        "{err}"
    );
}

#[test]
fn other_speech_silence_and_noise_fire_nothing() {
    let c = clips();
    let mut e = alexa();
    let cases: [(&str, Vec<f32>); 4] = [
        ("jfk.wav", scene(13.0, &[(0.5, &c.jfk)])),
        ("kokoro sentence", scene(6.0, &[(0.5, &c.tts_other)])),
        ("silence", vec![0.0; 5 * RATE as usize]),
        ("white noise", white_noise(5.0)),
    ];
    for (what, audio) in cases {
        let (hits, peak) = detections(&mut e, &audio);
        eprintln!("{what}: peak {peak:.4}");
        assert!(hits.is_empty(), "{what}: {hits:?}");
    }
}

#[test]
fn the_state_is_kept_across_chunks_and_reset_forgets_it() {
    let c = clips();
    let mut e = alexa();
    let audio = scene(4.0, &[(1.0, &c.tts_alexa)]);
    let whole = detections(&mut e, &audio);
    // Fed in odd pieces: the same chunks, the same scores.
    e.reset().unwrap();
    let mut pieces = Vec::new();
    let mut position = 0usize;
    for piece in audio.chunks(37) {
        let scaled: Vec<f32> = piece.iter().map(|s| s * 32768.0).collect();
        pieces.extend(
            e.push(&scaled)
                .unwrap()
                .into_iter()
                .map(|s| (position + s.at, s.scores[0])),
        );
        position += piece.len();
    }
    let peak = pieces.iter().map(|s| s.1).fold(0.0f32, f32::max);
    assert_eq!(peak, whole.1, "chunking changed the scores");
    // Scored every 30 ms, at the same points however the audio came.
    assert!(
        pieces.windows(2).all(|w| w[1].0 - w[0].0 == 480),
        "{:?}",
        &pieces[..4]
    );
    // After a reset, the same audio scores the same again.
    assert_eq!(detections(&mut e, &audio), whole);
}

#[test]
fn wrong_files_are_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = Engine::load(&paths(vec![model("openwakeword/alexa_v0.1.onnx")])).unwrap_err();
    assert!(onnx.contains("is not a .tflite model"), "{onnx}");
    let missing = Engine::load(&paths(vec![dir.path().join("nope.tflite")])).unwrap_err();
    assert!(missing.contains("nope.tflite"), "{missing}");
    let mut no_lib = paths(vec![model("microwakeword/alexa.tflite")]);
    no_lib.tflite = dir.path().join("libtensorflowlite_c.so");
    let err = Engine::load(&no_lib).unwrap_err();
    assert!(err.contains("libtensorflowlite_c.so"), "{err}");
    let twice = Engine::load(&paths(vec![
        model("microwakeword/alexa.tflite"),
        model("microwakeword/alexa.tflite"),
    ]))
    .unwrap_err();
    assert!(twice.contains("named twice"), "{twice}");
}

#[test]
fn the_plugin_hears_alexa_through_stt_with_microwakeword() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("alexa-loop.wav");
    write_wav_16k(&input, &scene(4.0, &[(1.0, &clips().tts_alexa)]));
    let mut setup = Setup::new();
    let (stt, kwd) = (free_port(), free_port());
    let looped = PathBuf::from(format!("{}:loop", input.display()));
    setup.section_with("stt", stt_keys(stt, &looped), &[]);
    let wake = model("microwakeword/alexa.tflite").display().to_string();
    let lib = model("microwakeword/libtensorflowlite_c.so")
        .display()
        .to_string();
    setup.section_with(
        "kwd",
        kwd_keys(kwd),
        &[
            ("engine", "microwakeword"),
            ("wake_models", &wake),
            ("tflite_library", &lib),
        ],
    );
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(120));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut kwd = KwdServiceClient::new(channel(kwd));
        let state = kwd
            .get_state(GetStateRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(state.models, ["alexa"]);
        let mut events = kwd.events(EventsRequest {}).await.unwrap().into_inner();
        let mut at = Vec::new();
        let began = Instant::now();
        while at.len() < 2 && began.elapsed() < Duration::from_secs(14) {
            let next = tokio::time::timeout(Duration::from_secs(10), events.next()).await;
            let Ok(Some(Ok(event))) = next else { break };
            if let Some(kwd_event::Event::WakeDetected(w)) = event.event {
                assert_eq!(w.model, "alexa");
                assert!(w.confidence >= CUTOFF, "{w:?}");
                at.push(Instant::now());
            }
        }
        assert_eq!(at.len(), 2, "two loops, two detections");
        let gap = at[1] - at[0];
        eprintln!("{gap:?} between detections of a 4 s loop");
        assert!(
            gap > Duration::from_secs(2) && gap < Duration::from_secs(6),
            "{gap:?}"
        );
    });
    let log = std::fs::read_to_string(setup.log_dir().join("app.log")).unwrap_or_default();
    assert!(log.contains("microWakeWord (TensorFlow Lite"), "{log}");
    host.terminate();
}
