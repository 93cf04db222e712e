//! microWakeWord's input features: kwd's TFLite Micro frontend against pymicro-features
//! 2.0.2 (what microWakeWord's Python users compute them with) on the JFK sample. The
//! arithmetic is the same fixed-point arithmetic, FFT included, so the features must be
//! equal, however the audio is split between calls. Also prints the frontend's time per
//! second of audio (meaningful in a release build).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use voicehost_plugin_kwd::micro::frontend::{FEATURES, Frontend, STEP};
use voicehost_tests::{model, peer_python, workspace_root};

const RATE: usize = 16_000;

/// A 16 kHz mono 16-bit WAV's samples, as they are.
fn read_samples(path: &Path) -> Vec<i16> {
    let mut reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (16_000, 1, 16),
        "{}: want 16 kHz mono 16-bit",
        path.display()
    );
    reader.samples::<i16>().map(Result::unwrap).collect()
}

/// pymicro-features' frames for `clip`, fed as pymicro-wakeword feeds it.
fn reference(clip: &Path) -> Vec<Vec<f64>> {
    #[derive(serde::Deserialize)]
    struct Reference {
        frames: Vec<Vec<f64>>,
    }
    let python = peer_python("pymicro_features", &["pymicro-features==2.0.2"]);
    let script = workspace_root().join("tests/python/micro_features.py");
    let out = Command::new(python).arg(script).arg(clip).output().unwrap();
    assert!(
        out.status.success(),
        "pymicro-features 2.0.2 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Reference>(&out.stdout)
        .unwrap()
        .frames
}

/// The frontend's frames for `samples` given `piece` samples at a time.
fn features(samples: &[i16], piece: usize) -> Vec<[f32; FEATURES]> {
    let mut frontend = Frontend::new();
    let mut out = Vec::new();
    for chunk in samples.chunks(piece) {
        frontend.push(chunk, &mut out);
    }
    out
}

#[test]
fn features_equal_pymicro_features() {
    let clip = model("audio/jfk.wav");
    let samples = read_samples(&clip);
    let theirs = reference(&clip);
    let ours = features(&samples, STEP);

    // The first frame once 30 ms are in, then one per 10 ms; a partial step at the end
    // gives none.
    assert_eq!(ours.len(), samples.len() / STEP - 2);
    assert_eq!(ours.len(), theirs.len(), "frames: ours, pymicro-features'");
    let mut largest = 0.0f64;
    let mut differ = 0;
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(b.len(), FEATURES, "pymicro-features' frame {i}");
        for (&a, &b) in a.iter().zip(b) {
            let diff = (f64::from(a) - b).abs();
            largest = largest.max(diff);
            differ += usize::from(diff != 0.0);
        }
    }
    eprintln!(
        "jfk.wav: {} frames × {FEATURES}: largest difference from pymicro-features 2.0.2 \
         {largest}, {differ} values differ",
        ours.len()
    );
    assert_eq!(differ, 0, "largest difference {largest}");

    for piece in [1, 37, 479, 4000] {
        assert!(
            features(&samples, piece) == ours,
            "{piece} samples at a time changed the features"
        );
    }

    report_time(&samples);
}

/// Prints the frontend's time per second of audio, fed 10 ms at a time as a microphone
/// feeds it.
fn report_time(samples: &[i16]) {
    let mut frames = Vec::with_capacity(samples.len() / STEP);
    let mut frontend = Frontend::new();
    frontend.push(samples, &mut frames);
    let rounds = 20;
    let began = Instant::now();
    for _ in 0..rounds {
        frames.clear();
        frontend.reset();
        for chunk in samples.chunks(STEP) {
            frontend.push(chunk, &mut frames);
        }
    }
    let elapsed = began.elapsed();
    let audio_s = (rounds * samples.len()) as f64 / RATE as f64;
    let per_frame = elapsed / (rounds * frames.len()) as u32;
    eprintln!(
        "frontend: {:.3} ms per second of audio ({per_frame:?} per 10 ms frame, {} build)",
        elapsed.as_secs_f64() * 1000.0 / audio_s,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    assert_eq!(frames.len(), samples.len() / STEP - 2);
}
