//! Smart Turn v3.2 (turn-model endpointing): the stt SDK's Whisper-style features against
//! Pipecat 1.14.0's own feature code (Python) on the same audio, the model's verdicts on
//! finished and unfinished requests, and what one check costs.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use voicehost_stt_sdk::{FRAMES, LogMel, N_MELS, SmartTurn, TURN_SAMPLES};
use voicehost_tests::{
    cache_dir, espeak, model, optional_model, peer_python, read_wav_16k, trim_silence,
    workspace_root, write_wav_16k,
};

const TURN_MODEL: &str = "smart-turn/smart-turn-v3.2-cpu.onnx";

/// The Smart Turn model (fetched on first use: it is not a default model).
fn turn_model() -> PathBuf {
    optional_model("smart-turn", TURN_MODEL)
}
const PIPECAT_WHEEL: &str = "pipecat_ai-1.14.0-py3-none-any.whl";

/// What the endpointer hands the turn model: 300 ms of preroll, the speech, and the ~200 ms
/// pause after it.
fn at_a_pause(speech: &[f32]) -> Vec<f32> {
    let mut audio = vec![0.0; 16_000 * 3 / 10];
    audio.extend(trim_silence(speech));
    audio.extend(vec![0.0; 16_000 / 5]);
    audio
}

/// Requests whole and cut off, and whether a person would have finished talking.
fn clips() -> Vec<(String, bool, Vec<f32>)> {
    let mut clips: Vec<(String, bool, Vec<f32>)> = [
        ("What is the capital of France?", true),
        ("What is the capital of", false),
        ("Set a timer for ten minutes.", true),
        ("Set a timer for", false),
        ("And what about Germany?", true),
        ("And what about", false),
        ("Turn on the kitchen lights.", true),
        ("Tell me about the", false),
        // espeak-ng ends every text as a sentence; a comma gives it the rising pitch of
        // a speaker who goes on.
        ("What is the capital of,", false),
        ("Set a timer for,", false),
    ]
    .into_iter()
    .map(|(text, complete)| (text.to_owned(), complete, at_a_pause(&espeak(text))))
    .collect();
    // Real speech longer than 8 s (only its end is heard), and a clip of another speaker.
    let jfk = read_wav_16k(&model("audio/jfk.wav"));
    clips.push(("jfk.wav (11 s)".to_owned(), true, at_a_pause(&jfk)));
    let fox = read_wav_16k(&model("audio/en/quick_brown_fox.wav"));
    clips.push(("quick_brown_fox.wav".to_owned(), true, at_a_pause(&fox)));
    clips
}

/// The pipecat wheel `voicehost models fetch --only smart-turn` keeps in the cache
/// (call after [`turn_model`]).
fn pipecat_wheel() -> PathBuf {
    let wheel = cache_dir().join("packages/pypi").join(PIPECAT_WHEEL);
    assert!(
        wheel.is_file(),
        "{} is missing: run `voicehost models fetch --only smart-turn`",
        wheel.display()
    );
    wheel
}

#[test]
fn features_and_verdicts_match_pipecat() {
    let turn_model = turn_model();
    let onnxruntime = model("onnxruntime/libonnxruntime.so");
    let clips = clips();
    let dir = tempfile::tempdir().unwrap();
    let wavs: Vec<PathBuf> = clips
        .iter()
        .enumerate()
        .map(|(i, (_, _, audio))| {
            let wav = dir.path().join(format!("{i}.wav"));
            write_wav_16k(&wav, audio);
            wav
        })
        .collect();
    // The reference: Pipecat's feature code and ONNX Runtime 1.31.1 from Python.
    let python = peer_python("onnxruntime", &["onnxruntime==1.31.1"]);
    let out = Command::new(python)
        .arg(workspace_root().join("tests/python/smart_turn_reference.py"))
        .arg(pipecat_wheel())
        .arg(&turn_model)
        .arg(dir.path())
        .args(&wavs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the Python reference failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mel = LogMel::new();
    let mut turn = SmartTurn::load(&turn_model, &onnxruntime).unwrap();
    let (mut worst_feature, mut worst_p, mut worst_ours) = (0.0f32, 0.0f32, 0.0f32);
    let mut costs = Vec::new();
    let mut wrong = Vec::new();
    eprintln!(
        "{:<34} {:>8} {:>8} {:>10} {:>9} {:>9}",
        "clip", "p (rust)", "p (py)", "max |Δf|", "feat ms", "model ms"
    );
    for (i, (name, complete, clip)) in clips.iter().enumerate() {
        // Read as the samples went through a 16-bit WAV, as Python read them.
        let audio: Vec<f32> = read_wav_16k(&wavs[i]);
        assert_eq!(audio.len(), clip.len(), "{name}: the WAV holds the clip");
        let ours = mel.features(&audio);
        let bytes = std::fs::read(dir.path().join(format!("{i}.f32"))).unwrap();
        let theirs: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(ours.len(), N_MELS * FRAMES);
        assert_eq!(theirs.len(), ours.len());
        let diff = ours
            .iter()
            .zip(&theirs)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        worst_feature = worst_feature.max(diff);
        let check = turn.check(&audio).unwrap();
        let p_ref = reference["probabilities"][i].as_f64().unwrap() as f32;
        // The same model on Pipecat's features gives Pipecat's probability: the runtime
        // and the call are the same. (On our features it may differ a little more: the
        // model quantises its activations to 8 bits, where a rounding may turn.)
        let p_on_theirs = turn.probability(theirs.clone()).unwrap();
        worst_p = worst_p.max((p_on_theirs - p_ref).abs());
        worst_ours = worst_ours.max((check.probability - p_ref).abs());
        costs.push(check.features + check.model);
        if (check.probability >= 0.5) != *complete {
            wrong.push(name.clone());
        }
        eprintln!(
            "{name:<34} {:>8.3} {p_ref:>8.3} {diff:>10.2e} {:>9.1} {:>9.1}",
            check.probability,
            check.features.as_secs_f64() * 1000.0,
            check.model.as_secs_f64() * 1000.0,
        );
    }
    costs.sort();
    eprintln!(
        "largest feature difference from Pipecat's: {worst_feature:.2e}; largest probability \
         difference: {worst_ours:.2e} ({worst_p:.2e} on Pipecat's features); one check (features + model, 1 thread): median {:.1} ms, \
         max {:.1} ms; misjudged: {wrong:?}",
        costs[costs.len() / 2].as_secs_f64() * 1000.0,
        costs[costs.len() - 1].as_secs_f64() * 1000.0,
    );
    // Features: f64 here and in numpy, rounded to f32 at the end.
    assert!(worst_feature < 1e-4, "features differ by {worst_feature}");
    assert!(worst_p < 1e-4, "probabilities differ by {worst_p}");
    assert!(worst_ours < 0.1, "probabilities differ by {worst_ours}");
    // The model's own errors are printed, not failed: the point here is that it sees
    // exactly what Pipecat shows it. (It calls most of espeak-ng's cut-off requests
    // complete: espeak ends every fragment with a sentence's falling pitch.) Finished
    // requests it does hear as finished.
    let complete: Vec<&String> = clips.iter().filter(|c| c.1).map(|c| &c.0).collect();
    assert!(
        wrong.iter().all(|w| !complete.contains(&w)),
        "finished requests misjudged: {wrong:?}"
    );
}

#[test]
fn one_check_costs_tens_of_milliseconds() {
    let mut turn = SmartTurn::load(&turn_model(), &model("onnxruntime/libonnxruntime.so")).unwrap();
    let audio = at_a_pause(&espeak("What is the capital of France?"));
    turn.check(&audio).unwrap();
    let started = Instant::now();
    let runs = 5;
    for _ in 0..runs {
        turn.check(&audio).unwrap();
    }
    let each = started.elapsed() / runs;
    eprintln!(
        "one turn check ({} s of audio window): {:.1} ms wall (shared, loaded CPU)",
        TURN_SAMPLES / 16_000,
        each.as_secs_f64() * 1000.0
    );
    // ~12 ms on an idle modern core, ~50 ms under load; loose for a busy machine.
    assert!(each.as_millis() < 1000, "{each:?} per check");
}

/// How the verdicts move with the pause the model hears after the speech (the
/// `turn_silence_ms` choice): printed for finished and unfinished requests.
#[test]
fn verdicts_by_the_length_of_the_pause() {
    let mut turn = SmartTurn::load(&turn_model(), &model("onnxruntime/libonnxruntime.so")).unwrap();
    let requests = [
        ("What is the capital of France?", true),
        ("Turn on the kitchen lights.", true),
        ("Set a timer for ten minutes.", true),
        ("Tell me about the", false),
        ("Set a timer for", false),
        ("And what about", false),
    ];
    let pauses_ms = [64, 128, 224, 320, 416, 608];
    eprintln!(
        "{:<32} {}",
        "request \\ pause (ms)",
        pauses_ms.map(|p| format!("{p:>6}")).join("")
    );
    for (text, _) in requests {
        let speech = trim_silence(&espeak(text));
        let mut row = String::new();
        for pause in pauses_ms {
            let mut audio = vec![0.0; 16_000 * 3 / 10];
            audio.extend(&speech);
            audio.extend(vec![0.0; 16 * pause]);
            let p = turn.check(&audio).unwrap().probability;
            assert!((0.0..=1.0).contains(&p));
            row.push_str(&format!("{p:>6.2}"));
        }
        eprintln!("{text:<32} {row}");
    }
}
