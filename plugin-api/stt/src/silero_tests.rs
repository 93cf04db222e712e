//! Silero v4 and v6 side by side (silero.rs) on the project's audio: the speech clips the
//! tests and the bench speak, and what must not start an utterance (silence, noise, the
//! assistant's residual echo). Needs the fetched models (`voicehost models fetch`, and
//! `--only silero-vad-v6`) and espeak-ng; a model that is missing skips its part.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::super::vad::{Endpointer, Event};
use super::*;

const RATE: usize = 16_000;
const V4: &str = "openwakeword/silero_vad.onnx";
const V6: &str = "silero-vad/silero_vad_16k_op15.onnx";

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

fn load(model: &str) -> Option<Silero> {
    let (path, ort) = (
        models().join(model),
        models().join("onnxruntime/libonnxruntime.so"),
    );
    if !path.is_file() || !ort.is_file() {
        eprintln!("{} or ONNX Runtime not fetched: skipped", path.display());
        return None;
    }
    Some(Silero::load(&path, &ort).unwrap())
}

/// 16 kHz mono samples of a 16-bit WAV (16 kHz or 22.05 kHz, resampled).
fn read_wav(path: &Path) -> Vec<f32> {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    let samples: Vec<f32> = r
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    let mono = voicehost_audio::to_mono(&samples, usize::from(spec.channels));
    if spec.sample_rate == RATE as u32 {
        return mono;
    }
    let mut resampler = voicehost_audio::Resampler::new(spec.sample_rate, RATE as u32).unwrap();
    let mut out = resampler.process(&mono);
    out.extend(resampler.flush());
    out
}

fn espeak(text: &str) -> Option<Vec<f32>> {
    let dir = std::env::temp_dir().join(format!("vh-silero-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    let wav = dir.join("espeak.wav");
    let ok = std::process::Command::new("espeak-ng")
        .args(["-v", "en", "-w"])
        .arg(&wav)
        .arg(text)
        .status()
        .ok()?
        .success();
    ok.then(|| read_wav(&wav))
}

/// Deterministic white noise at `db` dBFS (RMS).
fn noise(db: f32, n: usize) -> Vec<f32> {
    let a = 10f32.powf(db / 20.0) * 3f32.sqrt();
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32 * 2.0 - 1.0) * a
        })
        .collect()
}

fn silence(ms: usize) -> Vec<f32> {
    vec![0.0; RATE * ms / 1000]
}

/// What the VAD and the endpointer (the defaults: 2 s silence, 250 ms least speech) made
/// of `audio`: utterances, and the ends of their speech in samples.
#[derive(Debug, Default)]
struct Found {
    utterances: usize,
    ends: Vec<u64>,
    starts: Vec<u64>,
    took: Duration,
    windows: u32,
}

fn run(vad: &mut Silero, audio: &[f32], silence_ms: u32) -> Found {
    vad.set_state(VadState::default());
    let mut ep = Endpointer::new(0.5, silence_ms, 250, 30_000, 300, None, None);
    let mut found = Found::default();
    let mut tail = audio.to_vec();
    tail.extend(silence(silence_ms as usize + 500));
    for w in tail.chunks_exact(WINDOW) {
        let started = Instant::now();
        let p = vad.probability(w).unwrap();
        found.took += started.elapsed();
        found.windows += 1;
        if let Some(Event::End(u)) = ep.push(w, p) {
            found.utterances += 1;
            found.starts.push(u.speech_start);
            found.ends.push(u.speech_end);
        }
    }
    found
}

/// Where speech really begins and ends in a clip (first and last sample above -40 dBFS).
fn bounds(audio: &[f32]) -> (usize, usize) {
    let loud = |s: &f32| s.abs() > 0.01;
    (
        audio.iter().position(loud).unwrap_or(0),
        audio.iter().rposition(loud).unwrap_or(0),
    )
}

#[test]
#[ignore = "a measurement: prints Silero v4 and v6 side by side (needs the fetched models)"]
fn v4_and_v6_on_the_projects_audio() {
    let (Some(mut v4), Some(mut v6)) = (load(V4), load(V6)) else {
        return;
    };
    assert_eq!(v4.version(), Version::V4);
    assert_eq!(v6.version(), Version::V6);
    let mut speech: Vec<(String, Vec<f32>)> = Vec::new();
    for clip in [
        "audio/jfk.wav",
        "audio/en/counting.wav",
        "audio/en/hello_world.wav",
        "audio/en/quick_brown_fox.wav",
    ] {
        let path = models().join(clip);
        if path.is_file() {
            speech.push((clip.to_owned(), read_wav(&path)));
        }
    }
    // The bench's and the tests' lines (espeak-ng); `|` is a 900 ms pause.
    for line in [
        "Alexa",
        "What is the capital of France?",
        "And what about | Germany?",
        "What time is it?",
        "What is the capital of | France?",
        "Turn on the kitchen lights.",
        "Tell me about the history of Rome.",
        "Set a timer for ten minutes.",
        "Set a timer for three seconds.",
        "Stop.",
    ] {
        let mut audio = Vec::new();
        for (i, part) in line.split('|').enumerate() {
            if i > 0 {
                audio.extend(silence(900));
            }
            let Some(s) = espeak(part.trim()) else {
                eprintln!("espeak-ng is missing: its lines skipped");
                break;
            };
            audio.extend(s);
        }
        if !audio.is_empty() {
            speech.push((format!("espeak: {line}"), audio));
        }
    }
    eprintln!(
        "{:<44} {:>9} {:>9} {:>12} {:>12} {:>12} {:>12}",
        "speech clip", "utt v4", "utt v6", "onset v4 ms", "onset v6 ms", "end v4 ms", "end v6 ms"
    );
    let (mut lost, mut cpu) = ([0usize; 2], [Duration::ZERO; 2]);
    let mut windows = [0u32; 2];
    let mut end_lag = [Vec::new(), Vec::new()];
    for (name, clip) in &speech {
        let mut audio = silence(1000);
        audio.extend(clip);
        let (start, end) = bounds(&audio);
        let found = [run(&mut v4, &audio, 2000), run(&mut v6, &audio, 2000)];
        let ms = |samples: i64| samples * 1000 / RATE as i64;
        let mut cells = Vec::new();
        for (i, f) in found.iter().enumerate() {
            if f.utterances != 1 {
                lost[i] += 1;
            }
            cpu[i] += f.took;
            windows[i] += f.windows;
            let onset = f.starts.first().map(|s| ms(*s as i64 - start as i64));
            let lag = f.ends.last().map(|e| ms(*e as i64 - end as i64));
            end_lag[i].extend(lag);
            cells.push((onset, lag));
        }
        let fmt = |v: Option<i64>| v.map_or("-".to_owned(), |v| v.to_string());
        eprintln!(
            "{name:<44} {:>9} {:>9} {:>12} {:>12} {:>12} {:>12}",
            found[0].utterances,
            found[1].utterances,
            fmt(cells[0].0),
            fmt(cells[1].0),
            fmt(cells[0].1),
            fmt(cells[1].1),
        );
    }
    // What must start nothing: silence, noise, and the assistant's voice as the echo
    // canceller leaves it (-30 dB, over a noise floor), 10 s or the clip each.
    let echo_clip = std::env::var_os("VOICEHOST_ECHO_WAV")
        .map(|p| read_wav(Path::new(&p)))
        .or_else(|| espeak("Sure. The capital of France is Paris, a city on the Seine."))
        .unwrap_or_default();
    let residual = |gain: f32| -> Vec<f32> {
        let floor = noise(-65.0, echo_clip.len());
        echo_clip
            .iter()
            .zip(floor)
            .map(|(s, n)| s * gain + n)
            .collect()
    };
    let quiet: Vec<(&str, Vec<f32>)> = vec![
        ("digital silence 10 s", silence(10_000)),
        ("white noise -60 dBFS 10 s", noise(-60.0, RATE * 10)),
        ("white noise -40 dBFS 10 s", noise(-40.0, RATE * 10)),
        ("assistant echo residual -40 dB", residual(0.01)),
        ("assistant echo residual -30 dB", residual(0.03)),
        ("assistant echo residual -20 dB", residual(0.1)),
    ];
    eprintln!(
        "\n{:<44} {:>9} {:>9}",
        "not speech (2 s silence wait)", "onsets v4", "onsets v6"
    );
    let mut false_onsets = [0usize; 2];
    for (name, audio) in &quiet {
        let found = [run(&mut v4, audio, 2000), run(&mut v6, audio, 2000)];
        for i in 0..2 {
            false_onsets[i] += found[i].utterances;
            cpu[i] += found[i].took;
            windows[i] += found[i].windows;
        }
        eprintln!(
            "{name:<44} {:>9} {:>9}",
            found[0].utterances, found[1].utterances
        );
    }
    // CPU: the least of three passes over jfk.wav (wall time on one thread; the machine
    // is shared, so the least is the closest to the cost).
    let jfk = speech
        .first()
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| silence(10_000));
    let mut best = [Duration::MAX; 2];
    for _ in 0..3 {
        for (i, vad) in [&mut v4, &mut v6].into_iter().enumerate() {
            let f = run(vad, &jfk, 2000);
            best[i] = best[i].min(f.took / f.windows);
        }
    }
    let median = |v: &mut Vec<i64>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    };
    eprintln!(
        "\nSilero v4 / v6: speech clips not found as exactly one utterance {} / {} (of {}); \
         false onsets {} / {}; median end-of-speech lag {} / {} ms; per 32 ms window \
         {:.3} / {:.3} ms (least of 3 passes), {:.3} / {:.3} ms (mean over everything)",
        lost[0],
        lost[1],
        speech.len(),
        false_onsets[0],
        false_onsets[1],
        median(&mut end_lag[0]),
        median(&mut end_lag[1]),
        best[0].as_secs_f64() * 1000.0,
        best[1].as_secs_f64() * 1000.0,
        (cpu[0] / windows[0]).as_secs_f64() * 1000.0,
        (cpu[1] / windows[1]).as_secs_f64() * 1000.0,
    );
}

#[test]
fn both_versions_hear_speech_and_not_silence() {
    let Some(path) = Some(models().join("audio/jfk.wav")).filter(|p| p.is_file()) else {
        return;
    };
    let jfk = read_wav(&path);
    for model in [V4, V6] {
        let Some(mut vad) = load(model) else {
            continue;
        };
        let f = run(&mut vad, &jfk[..RATE * 4], 500);
        assert!(f.utterances >= 1, "{model}: speech in jfk.wav");
        let f = run(&mut vad, &silence(3000), 500);
        assert_eq!(f.utterances, 0, "{model}: silence");
        // The state is kept and put back (the barge-in restore).
        let state = vad.state();
        let a = vad.probability(&jfk[RATE..RATE + WINDOW]).unwrap();
        vad.set_state(state);
        let b = vad.probability(&jfk[RATE..RATE + WINDOW]).unwrap();
        assert_eq!(a, b, "{model}");
    }
}
