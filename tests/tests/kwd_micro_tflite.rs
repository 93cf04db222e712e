//! kwd's TensorFlow Lite wrapper on the real C library and the four microWakeWord models:
//! shapes, outputs in range, each model waking to its phrase (espeak-ng through the micro
//! frontend) with its streaming state kept between invokes and forgotten by `reset`, the
//! model file's mapping, the load errors a user can meet, and the time of one invoke.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use voicehost_plugin_kwd::micro::frontend::Frontend;
use voicehost_plugin_kwd::micro::tflite::{Library, StreamingModel};
use voicehost_tests::{espeak_with, model, workspace_root};

const MODELS: [&str; 4] = ["alexa", "hey_jarvis", "hey_mycroft", "okay_nabu"];
/// Each model with its wake phrase.
const PHRASES: [(&str, &str); 4] = [
    ("alexa", "Alexa"),
    ("hey_jarvis", "Hey Jarvis"),
    ("hey_mycroft", "Hey Mycroft"),
    ("okay_nabu", "Okay Nabu"),
];

fn library() -> Arc<Library> {
    Library::load(&model("microwakeword/libtensorflowlite_c.so")).unwrap()
}

fn load(lib: &Arc<Library>, name: &str) -> StreamingModel {
    StreamingModel::load(lib, &model(&format!("microwakeword/{name}.tflite"))).unwrap()
}

/// `n` inputs of `len` features, deterministic, in the frontend's range (0 to about 26).
fn inputs(n: usize, len: usize) -> Vec<Vec<f32>> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..n)
        .map(|_| {
            (0..len)
                .map(|_| {
                    // xorshift64
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 40) as f32 / (1u64 << 24) as f32 * 26.0
                })
                .collect()
        })
        .collect()
}

/// `text` spoken by espeak-ng's `en+f3` voice (one all four models wake to) between 0.5 s
/// of silence, as model inputs: the micro frontend's frames, `frames` per invoke.
fn spoken(text: &str, frames: usize) -> Vec<Vec<f32>> {
    let silence = vec![0.0; 8000];
    let audio = [&silence[..], &espeak_with(&["-v", "en+f3"], text), &silence].concat();
    let pcm: Vec<i16> = audio.iter().map(|&s| voicehost_audio::to_i16(s)).collect();
    let mut features = Vec::new();
    Frontend::new().push(&pcm, &mut features);
    features.chunks_exact(frames).map(|c| c.concat()).collect()
}

fn run(m: &mut StreamingModel, inputs: &[Vec<f32>]) -> Vec<f32> {
    inputs.iter().map(|x| m.invoke(x).unwrap()).collect()
}

fn assert_send<T: Send>() {}

#[test]
fn every_model_loads_and_gives_probabilities() {
    assert_send::<StreamingModel>();
    let lib = library();
    assert!(lib.version().starts_with("2."), "version {}", lib.version());
    for name in MODELS {
        let mut m = load(&lib, name);
        assert_eq!((m.frames(), m.features()), (3, 40), "{name}");
        for level in [0.0, 5.0, 12.5, 26.0, -3.0, 1000.0] {
            let input = vec![level; m.frames() * m.features()];
            for _ in 0..10 {
                let p = m.invoke(&input).unwrap();
                assert!(p.is_finite() && (0.0..=1.0).contains(&p), "{name}: {p}");
            }
        }
    }
}

#[test]
fn state_is_kept_between_invokes_and_reset_forgets_it() {
    let lib = library();
    for (name, phrase) in PHRASES {
        let mut m = load(&lib, name);
        let seq = spoken(phrase, m.frames());
        let first = run(&mut m, &seq);
        let peak = first.iter().copied().fold(0.0, f32::max);
        eprintln!("{name}: peak {peak} over {} invokes", seq.len());
        assert!(peak > 0.5, "{name} does not wake to {phrase:?}: {first:?}");

        // Kept: the same inputs with a history (or with none at all) give other outputs.
        let kept = run(&mut m, &seq);
        assert_ne!(
            first, kept,
            "{name}: the state was not kept between invokes"
        );
        let stateless: Vec<f32> = seq
            .iter()
            .map(|x| {
                m.reset().unwrap();
                m.invoke(x).unwrap()
            })
            .collect();
        assert_ne!(
            first, stateless,
            "{name}: outputs do not depend on earlier inputs"
        );

        // Forgotten: after reset, exactly what a fresh model gives.
        m.reset().unwrap();
        assert_eq!(run(&mut m, &seq), first, "{name}: reset left state behind");
        let mut fresh = load(&lib, name);
        assert_eq!(
            run(&mut fresh, &seq),
            first,
            "{name}: a second model differs"
        );

        // Send: the model moves to another thread and runs there.
        let moved = std::thread::spawn(move || {
            m.reset().unwrap();
            run(&mut m, &seq)
        });
        assert_eq!(moved.join().unwrap(), first, "{name}: on another thread");
    }
}

/// `result`'s error, which must name `path` and contain `hint`.
fn assert_err<T: std::fmt::Debug>(result: Result<T, String>, path: &Path, hint: &str) {
    let e = result.unwrap_err();
    eprintln!("{e}");
    assert!(e.contains(&path.display().to_string()), "no path in: {e}");
    assert!(e.contains(hint), "no {hint:?} in: {e}");
}

#[test]
fn load_errors_say_what_and_what_to_do() {
    let missing = workspace_root().join("models/microwakeword/no-such-libtensorflowlite_c.so");
    assert_err(Library::load(&missing), &missing, "voicehost models fetch");

    let onnx = model("onnxruntime/libonnxruntime.so");
    assert_err(
        Library::load(&onnx),
        &onnx,
        "is not the TensorFlow Lite C library",
    );

    let lib = library();
    let missing = workspace_root().join("models/microwakeword/no_such_word.tflite");
    assert_err(
        StreamingModel::load(&lib, &missing),
        &missing,
        "voicehost models fetch",
    );

    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.tflite");
    std::fs::write(
        &garbage,
        b"this is not a flatbuffer, just some bytes".repeat(50),
    )
    .unwrap();
    assert_err(
        StreamingModel::load(&lib, &garbage),
        &garbage,
        "is not a TensorFlow Lite model",
    );

    let alexa = model("microwakeword/alexa.tflite");
    let mut m = StreamingModel::load(&lib, &alexa).unwrap();
    assert_err(m.invoke(&[0.0; 40]), &alexa, "not 40");
}

#[test]
fn invoke_time() {
    let lib = library();
    let mut m = load(&lib, "okay_nabu");
    let seq = inputs(1000, m.frames() * m.features());
    run(&mut m, &seq[..100]);
    let mut times: Vec<f64> = seq
        .iter()
        .map(|x| {
            let start = Instant::now();
            m.invoke(x).unwrap();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let reset = Instant::now();
    m.reset().unwrap();
    eprintln!(
        "okay_nabu: median invoke {:.1} µs over {} (reset {:.0} µs)",
        times[times.len() / 2],
        times.len(),
        reset.elapsed().as_secs_f64() * 1e6
    );
}

#[test]
fn the_model_file_is_held_while_loaded_and_released_on_drop() {
    let lib = library();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("alexa.tflite");
    std::fs::copy(model("microwakeword/alexa.tflite"), &copy).unwrap();
    let mapped = || {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        maps.contains(&copy.display().to_string())
    };
    let mut m = StreamingModel::load(&lib, &copy).unwrap();
    let input = vec![5.0; m.frames() * m.features()];
    let before = m.invoke(&input).unwrap();
    // TFLite maps the file: removing it changes nothing for the loaded model, resets included.
    std::fs::remove_file(&copy).unwrap();
    m.reset().unwrap();
    assert_eq!(m.invoke(&input).unwrap(), before);
    assert!(mapped(), "expected TFLite to map {}", copy.display());
    drop(m);
    assert!(!mapped(), "{} is still mapped after drop", copy.display());
}
