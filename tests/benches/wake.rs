//! False wakes per hour, detection rate, detection latency and CPU for each wake-word
//! engine (`cargo bench -p voicehost-tests --bench wake`; `-- --hours 0.5` for a shorter
//! negative set).
//!
//! Negatives (no wake word): espeak-ng in six voices and the project's tts (Piper's joe,
//! two Kokoro voices) reading the licence texts every Debian system has
//! (/usr/share/common-licenses), the packaged human speech (jfk.wav, the test clips),
//! music-like tone sequences and noise, each segment at one of three levels, a third of
//! the speech with noise under it at 10 dB SNR, all in one stream as a microphone would
//! hear it. Positives (216): "Alexa" in twelve espeak-ng voices at four speeds and three
//! pitches, twenty Kokoro voices ("Alexa." "Alexa!" "Alexa?"), and Piper at four speeds;
//! each clean and with white noise at 10 dB SNR, spaced 3 s apart. Generated audio is
//! cached under the voicehost cache (`wake-bench-v1/`), never committed.
//!
//! microWakeWord's raw outputs averaged over 1 to 5 (`[kwd] micro_window`) per threshold;
//! then per engine (alexa, as shipped) and threshold, the shipped one marked: false accepts per
//! hour of negatives (the detector as kwd runs it: threshold, re-arming, 1 s cooldown),
//! the share of positives detected (a detection from the word's start to 1.5 s after its
//! end; per source at the shipped threshold), the latency from the end of the word to the
//! chunk that fired, and the engine's CPU per second of audio.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use voicehost_plugin_kwd::{CHUNK, Detector, Engine, EngineKind, ModelPaths, RATE};
use voicehost_tests::{
    cache_dir, espeak_with, model, piper_keys, read_wav_16k, speech_with, trim_silence, tts_keys,
    workspace_root, write_wav_16k,
};

const CACHE: &str = "wake-bench-v1";
/// What the negative set should hold at least, in hours (`--hours`).
const DEFAULT_HOURS: f64 = 2.0;
/// Levels (dBFS RMS) the segments are played at, in turn.
const LEVELS_DB: [f32; 3] = [-36.0, -26.0, -18.0];
const SNR_DB: f32 = 10.0;
/// Gap between positives, and how long after a word's end a detection still counts.
const POSITIVE_GAP_S: f32 = 3.0;
const LATE_S: f32 = 1.5;

fn main() {
    let hours = std::env::args()
        .skip_while(|a| a != "--hours")
        .nth(1)
        .map_or(DEFAULT_HOURS, |h| {
            h.parse()
                .unwrap_or_else(|_| panic!("--hours {h:?}: give a number of hours"))
        });
    let dir = cache_dir().join(CACHE);
    std::fs::create_dir_all(&dir).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let negatives = cached(&dir.join(format!("negatives-{hours}h.wav")), || {
        rt.block_on(negatives(hours))
    });
    let (positives, sources, voices) = positives(&dir, &rt);
    let clean = positives_stream(&positives, None);
    let noisy = positives_stream(&positives, Some(SNR_DB));
    let neg_hours = negatives.len() as f64 / f64::from(RATE) / 3600.0;
    eprintln!(
        "negatives: {neg_hours:.2} h; positives: {} utterances of \"Alexa\" in {voices} voices, clean and at {SNR_DB} dB SNR",
        positives.len(),
    );
    let engines = [
        (
            "openwakeword",
            EngineKind::OpenWakeWord,
            model("openwakeword/alexa_v0.1.onnx"),
            None,
            0.6,
        ),
        (
            "microwakeword",
            EngineKind::MicroWakeWord,
            model("microwakeword/alexa.tflite"),
            Some(1),
            0.8,
        ),
    ];
    micro_windows(&negatives, &clean, &noisy, &positives, neg_hours);
    for (name, kind, wake, micro_window, shipped) in engines {
        let mut engine = Engine::load(&paths(kind, &wake, micro_window))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (neg_scores, cpu_ms) = scores(&mut engine, &negatives);
        let (clean_scores, _) = scores(&mut engine, &clean);
        let (noisy_scores, _) = scores(&mut engine, &noisy);
        println!(
            "\n{name} {}{} (shipped threshold {shipped}); CPU {cpu_ms:.2} ms per second of audio",
            voicehost_plugin_kwd::engine::model_name(&wake),
            micro_window.map_or(String::new(), |w| format!(", window {w}")),
        );
        println!(
            "{:>9} {:>7} {:>9} {:>11} {:>11} {:>12}",
            "threshold", "FA/h", "false acc", "detected %", "at 10 dB %", "latency p50"
        );
        let mut thresholds = vec![0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97];
        if !thresholds.contains(&shipped) {
            thresholds.push(shipped);
            thresholds.sort_by(f32::total_cmp);
        }
        for threshold in thresholds {
            let r = rates(
                [&neg_scores, &clean_scores, &noisy_scores],
                &positives,
                threshold,
            );
            let mark = if threshold == shipped {
                " (shipped)"
            } else {
                ""
            };
            println!("{threshold:>9.2} {}{mark}", r.row(neg_hours));
            if threshold == shipped {
                for source in ["espeak-ng", "kokoro", "piper"] {
                    let of: Vec<usize> = (0..positives.len())
                        .filter(|i| sources[*i] == source)
                        .collect();
                    let count = |hit: &[bool]| of.iter().filter(|i| hit[**i]).count();
                    println!(
                        "{:>9} {source}: {}/{} clean, {}/{} at 10 dB",
                        "",
                        count(&r.clean_hit),
                        of.len(),
                        count(&r.noisy_hit),
                        of.len()
                    );
                }
                for at in r.false_accepts.iter().take(10) {
                    println!("{:>9} false accept at {}", "", clock(*at));
                }
            }
        }
    }
}

/// microWakeWord's probability is the mean of its last `sliding_window_size` outputs (the
/// manifest's 5, 30 ms apart; `[kwd] micro_window`): a wider window steadies it and
/// delays it. The same raw outputs (a window of 1) averaged over 1 to 5, per threshold.
fn micro_windows(
    negatives: &[f32],
    clean: &[f32],
    noisy: &[f32],
    positives: &[Vec<f32>],
    neg_hours: f64,
) {
    let alexa = model("microwakeword/alexa.tflite");
    let mut engine = Engine::load(&paths(EngineKind::MicroWakeWord, &alexa, Some(1))).unwrap();
    let (neg, _) = scores(&mut engine, negatives);
    let (clean, _) = scores(&mut engine, clean);
    let (noisy, _) = scores(&mut engine, noisy);
    println!("\nmicrowakeword alexa by sliding window (outputs averaged, 30 ms apart)");
    println!(
        "{:>6} {:>9} {:>7} {:>9} {:>11} {:>11} {:>12}",
        "window", "threshold", "FA/h", "false acc", "detected %", "at 10 dB %", "latency p50"
    );
    for window in 1..=5 {
        let (neg, clean, noisy) = (
            averaged(&neg, window),
            averaged(&clean, window),
            averaged(&noisy, window),
        );
        for threshold in [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.99] {
            let r = rates([&neg, &clean, &noisy], positives, threshold);
            println!("{window:>6} {threshold:>9.2} {}", r.row(neg_hours));
        }
    }
}

/// The engine `kind` with one wake model, its score averaged over `micro_window` outputs
/// (microWakeWord; `None`: the manifest's window).
fn paths(kind: EngineKind, wake: &Path, micro_window: Option<usize>) -> ModelPaths {
    ModelPaths {
        engine: kind,
        onnxruntime: model("onnxruntime/libonnxruntime.so"),
        melspectrogram: model("openwakeword/melspectrogram.onnx"),
        embedding: model("openwakeword/embedding_model.onnx"),
        tflite: model("microwakeword/libtensorflowlite_c.so"),
        wake: vec![wake.to_owned()],
        micro_window,
    }
}

/// What a threshold does on the scores of the negatives, the clean and the noisy positives.
struct Rates {
    /// Where (s) it fired in the negatives.
    false_accepts: Vec<f64>,
    clean_hit: Vec<bool>,
    noisy_hit: Vec<bool>,
    /// ms from each clean word's end to the detection.
    latencies: Vec<f64>,
}

fn rates(scores: [&[(u64, f32)]; 3], positives: &[Vec<f32>], threshold: f32) -> Rates {
    let [neg, clean, noisy] = scores;
    let (clean_hit, latencies) = hits(&detect(clean, threshold), positives);
    Rates {
        false_accepts: detect(neg, threshold),
        clean_hit,
        noisy_hit: hits(&detect(noisy, threshold), positives).0,
        latencies,
    }
}

impl Rates {
    /// False accepts per hour and in all, the share of positives detected clean and at
    /// 10 dB SNR, the median latency.
    fn row(&self, neg_hours: f64) -> String {
        let pct =
            |hit: &[bool]| hit.iter().filter(|h| **h).count() as f64 * 100.0 / hit.len() as f64;
        format!(
            "{:>7.2} {:>9} {:>10.1}% {:>10.1}% {:>9.0} ms",
            self.false_accepts.len() as f64 / neg_hours,
            self.false_accepts.len(),
            pct(&self.clean_hit),
            pct(&self.noisy_hit),
            median(&self.latencies),
        )
    }
}

/// Each score the mean of the last `window` raw ones (none until there are that many).
fn averaged(raw: &[(u64, f32)], window: usize) -> Vec<(u64, f32)> {
    raw.windows(window)
        .map(|w| {
            let at = w[window - 1].0;
            (at, w.iter().map(|(_, s)| s).sum::<f32>() / window as f32)
        })
        .collect()
}

/// The engine's scores (one model) over `audio` (−1…1, fed as stt sends it, 10 ms at a
/// time), each at its sample position, and the engine's CPU ms per second of audio.
fn scores(engine: &mut Engine, audio: &[f32]) -> (Vec<(u64, f32)>, f64) {
    engine.reset().unwrap();
    let mut out = Vec::with_capacity(audio.len() / CHUNK + 1);
    let mut position = 0u64;
    let mut cpu = 0.0;
    let mut scaled = Vec::with_capacity(160);
    for frame in audio.chunks(160) {
        scaled.clear();
        scaled.extend(frame.iter().map(|s| s * 32768.0));
        let before = thread_cpu_seconds();
        let scored = engine.push(&scaled).unwrap();
        cpu += thread_cpu_seconds() - before;
        out.extend(
            scored
                .into_iter()
                .map(|s| (position + s.at as u64, s.scores[0])),
        );
        position += frame.len() as u64;
    }
    let seconds = audio.len() as f64 / f64::from(RATE);
    (out, cpu * 1000.0 / seconds)
}

/// Where (s) the detector as kwd runs it (`threshold`, re-arming, 1 s cooldown) fires on
/// `scores`.
fn detect(scores: &[(u64, f32)], threshold: f32) -> Vec<f64> {
    let mut detector = Detector::new(vec![threshold], 1000, RATE);
    scores
        .iter()
        .filter_map(|&(position, s)| {
            detector
                .observe(position, &[s])
                .map(|_| position as f64 / f64::from(RATE))
        })
        .collect()
}

/// Which positives (laid out by [`positives_stream`]) the detections `fired` caught, and
/// the latencies (ms from each word's end to the chunk that fired).
fn hits(fired: &[f64], positives: &[Vec<f32>]) -> (Vec<bool>, Vec<f64>) {
    let mut hit = vec![false; positives.len()];
    let mut latencies = Vec::new();
    let mut start = f64::from(POSITIVE_GAP_S);
    let spans: Vec<(f64, f64)> = positives
        .iter()
        .map(|p| {
            let span = (start, start + p.len() as f64 / f64::from(RATE));
            start = span.1 + f64::from(POSITIVE_GAP_S);
            span
        })
        .collect();
    for &at in fired {
        if let Some(i) = spans
            .iter()
            .position(|(s, e)| at >= *s && at <= e + f64::from(LATE_S))
            && !hit[i]
        {
            hit[i] = true;
            latencies.push((at - spans[i].1) * 1000.0);
        }
    }
    (hit, latencies)
}

/// The positives one after another with [`POSITIVE_GAP_S`] of silence (or, with `snr`,
/// white noise that much under each word's level) between and around them.
fn positives_stream(positives: &[Vec<f32>], snr: Option<f32>) -> Vec<f32> {
    let gap = (POSITIVE_GAP_S * RATE as f32) as usize;
    let mut out = vec![0.0; gap];
    for p in positives {
        out.extend_from_slice(p);
        out.extend(std::iter::repeat_n(0.0, gap));
    }
    if let Some(snr) = snr {
        let mut noise = Noise::new(7);
        let mut at = gap;
        for p in positives {
            let level = rms_db(p) - snr;
            let from = at - gap / 2;
            let to = (at + p.len() + gap / 2).min(out.len());
            for s in &mut out[from..to] {
                *s += noise.white() * db_to_gain(level) * 3.0_f32.sqrt();
            }
            at += p.len() + gap;
        }
    }
    out
}

/// The positive utterances (trimmed, levelled to -20 dBFS) and how many voices said them.
fn positives(
    dir: &Path,
    rt: &tokio::runtime::Runtime,
) -> (Vec<Vec<f32>>, Vec<&'static str>, usize) {
    let mut clips = Vec::new();
    let mut sources = Vec::new();
    let espeak_voices = [
        "en-us",
        "en-gb",
        "en-gb-x-rp",
        "en-gb-scotland",
        "en-029",
        "en+f3",
        "en-us+m7",
        "en+f2",
        "en-us+m3",
        "en+f4",
        "en-gb-x-gbclan",
        "en-gb-x-gbcwmd",
    ];
    let file = dir.join("positives-espeak-v3.wav");
    let espeak = cached_set(&file, || {
        let mut v = Vec::new();
        for voice in espeak_voices {
            for speed in ["130", "160", "190", "220"] {
                for pitch in ["35", "50", "70"] {
                    v.push(espeak_with(
                        &["-v", voice, "-s", speed, "-p", pitch],
                        "Alexa",
                    ));
                }
            }
        }
        v
    });
    sources.extend(std::iter::repeat_n("espeak-ng", espeak.len()));
    clips.extend(espeak);
    let kokoro_voices = [
        "af_heart",
        "af_bella",
        "af_nicole",
        "af_sarah",
        "af_sky",
        "af_nova",
        "af_river",
        "af_jessica",
        "am_adam",
        "am_michael",
        "am_eric",
        "am_liam",
        "am_onyx",
        "am_puck",
        "bf_emma",
        "bf_isabella",
        "bf_alice",
        "bm_george",
        "bm_lewis",
        "bm_daniel",
    ];
    let file = dir.join("positives-kokoro-v2.wav");
    let kokoro = cached_set(&file, || {
        let requests: Vec<(&str, &str)> = kokoro_voices
            .iter()
            .flat_map(|v| [(*v, "Alexa."), (*v, "Alexa!"), (*v, "Alexa?")])
            .collect();
        rt.block_on(speech_with(
            tts_keys,
            &requests,
            &[],
            Duration::from_secs(120),
        ))
    });
    sources.extend(std::iter::repeat_n("kokoro", kokoro.len()));
    clips.extend(kokoro);
    let file = dir.join("positives-piper-v2.wav");
    let piper = cached_set(&file, || {
        let mut v = Vec::new();
        for speed in ["0.8", "0.9", "1.0", "1.2"] {
            v.extend(rt.block_on(speech_with(
                piper_keys,
                &[("", "Alexa."), ("", "Alexa!"), ("", "Alexa?")],
                &[("speed", speed)],
                Duration::from_secs(120),
            )));
        }
        v
    });
    sources.extend(std::iter::repeat_n("piper", piper.len()));
    clips.extend(piper);
    let clips = clips
        .into_iter()
        .map(|c| level(&trim_silence(&c), -20.0))
        .collect();
    (
        clips,
        sources,
        espeak_voices.len() + kokoro_voices.len() + 1,
    )
}

/// The negative set: at least `hours` of audio without the wake word.
async fn negatives(hours: f64) -> Vec<f32> {
    let target = (hours * 3600.0 * f64::from(RATE)) as usize;
    let texts = licence_sentences();
    let mut noise = Noise::new(11);
    let mut segments: Vec<Vec<f32>> = Vec::new();
    let mut total = 0usize;
    let mut next = texts.iter().cycle();
    // The project's tts: Piper's joe and two Kokoro voices, ~15 % of the set.
    let tts_share = target * 15 / 100;
    let mut tts_samples = 0usize;
    while tts_samples < tts_share {
        let batch: Vec<&str> = next.by_ref().take(40).map(String::as_str).collect();
        let half = batch.len() / 2;
        let piper: Vec<(&str, &str)> = batch[..half].iter().map(|t| ("", *t)).collect();
        let kokoro: Vec<(&str, &str)> = batch[half..]
            .iter()
            .enumerate()
            .map(|(i, t)| (if i % 2 == 0 { "af_bella" } else { "bm_george" }, *t))
            .collect();
        for clip in speech_with(piper_keys, &piper, &[], Duration::from_secs(120)).await {
            tts_samples += clip.len();
            segments.push(clip);
        }
        for clip in speech_with(tts_keys, &kokoro, &[], Duration::from_secs(120)).await {
            tts_samples += clip.len();
            segments.push(clip);
        }
    }
    total += tts_samples;
    // Human speech: the packaged clips.
    let mut human = vec![read_wav_16k(&model("audio/jfk.wav"))];
    if let Ok(dir) = std::fs::read_dir(workspace_root().join("models/audio/en")) {
        let mut wavs: Vec<PathBuf> = dir
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wav"))
            .collect();
        wavs.sort();
        human.extend(wavs.iter().map(|w| read_wav_16k(w)));
    }
    for _ in 0..3 {
        for h in &human {
            total += h.len();
            segments.push(h.clone());
        }
    }
    // Music-like tone sequences and noise, ~8 % of the set.
    let synthetic = target * 8 / 100;
    let mut made = 0;
    let mut seed = 1u32;
    while made < synthetic {
        let clip = if seed.is_multiple_of(3) {
            noise.coloured(20.0, seed.is_multiple_of(2))
        } else {
            music(30.0, seed)
        };
        made += clip.len();
        segments.push(clip);
        seed += 1;
    }
    total += made;
    // espeak-ng reading the texts in six voices, the rest of the set.
    let voices = [
        "en-us",
        "en-gb-x-rp",
        "en+f3",
        "en-us+m7",
        "en-gb-scotland",
        "en-029",
    ];
    let mut v = 0;
    while total < target {
        let text: Vec<&str> = next.by_ref().take(12).map(String::as_str).collect();
        let speed = ["150", "170", "190"][v % 3];
        let clip = espeak_with(
            &["-v", voices[v % voices.len()], "-s", speed],
            &text.join(" "),
        );
        total += clip.len();
        segments.push(clip);
        v += 1;
    }
    // Interleaved, each at a level, a third of the speech over noise at 10 dB SNR.
    let mut order: Vec<usize> = (0..segments.len()).collect();
    let mut rng = Noise::new(3);
    for i in (1..order.len()).rev() {
        let j = (rng.next() as usize) % (i + 1);
        order.swap(i, j);
    }
    let mut out = Vec::with_capacity(total + segments.len() * RATE as usize);
    for (n, i) in order.into_iter().enumerate() {
        let mut seg = level(&segments[i], LEVELS_DB[n % LEVELS_DB.len()]);
        if n % 3 == 0 {
            let under = db_to_gain(LEVELS_DB[n % LEVELS_DB.len()] - SNR_DB) * 3.0_f32.sqrt();
            for s in &mut seg {
                *s += noise.white() * under;
            }
        }
        out.extend(seg);
        // A short pause between segments, as between things said in a room.
        out.extend(std::iter::repeat_n(0.0, (RATE / 2) as usize + n % 7 * 800));
    }
    out
}

/// Sentences of the licence texts (no wake word in them).
fn licence_sentences() -> Vec<String> {
    let dir = Path::new("/usr/share/common-licenses");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}; the base-files package has it", dir.display()))
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut sentences = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let words: Vec<&str> = text.split_whitespace().collect();
        for s in words.join(" ").split_inclusive(['.', ';', ':']) {
            // What a tts speaks: letters, digits and plain punctuation (it refuses `, <, …).
            let s: String = s
                .chars()
                .map(|c| {
                    if c.is_alphanumeric() || " .,;:!?'()-".contains(c) {
                        c
                    } else {
                        ' '
                    }
                })
                .collect();
            let s = s.trim_start_matches(|c: char| !c.is_alphanumeric()).trim();
            if s.split_whitespace().count() >= 4 && !s.to_lowercase().contains("alexa") {
                sentences.push(s.chars().take(400).collect());
            }
        }
    }
    assert!(!sentences.is_empty(), "no text in {}", dir.display());
    sentences
}

/// A melody of harmonic tones (three partials, attack and decay) over a held chord.
fn music(seconds: f32, seed: u32) -> Vec<f32> {
    let mut rng = Noise::new(seed.wrapping_mul(2_654_435_761) | 1);
    let n = (seconds * RATE as f32) as usize;
    let scale = [0, 2, 4, 5, 7, 9, 11, 12];
    let root = 110.0 * 2f32.powf((rng.next() % 12) as f32 / 12.0);
    let mut out = vec![0.0; n];
    let chord = [root, root * 1.26, root * 1.5];
    for (i, s) in out.iter_mut().enumerate() {
        let t = i as f32 / RATE as f32;
        *s = chord
            .iter()
            .map(|f| (2.0 * std::f32::consts::PI * f * t).sin() * 0.1)
            .sum();
    }
    let note = (RATE as f32 * (0.15 + (rng.next() % 4) as f32 * 0.1)) as usize;
    let mut at = 0;
    while at < n {
        let step = scale[(rng.next() % scale.len() as u32) as usize];
        let f = root * 4.0 * 2f32.powf(step as f32 / 12.0);
        for k in 0..note.min(n - at) {
            let t = k as f32 / RATE as f32;
            let env = (t / 0.01).min(1.0) * (-t * 6.0).exp();
            let tone: f32 = (1..=3)
                .map(|h| (2.0 * std::f32::consts::PI * f * h as f32 * t).sin() / h as f32)
                .sum();
            out[at + k] += tone * env * 0.3;
        }
        at += note;
    }
    out
}

/// A reproducible noise source.
struct Noise(u32);

impl Noise {
    fn new(seed: u32) -> Noise {
        Noise(seed.max(1))
    }

    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }

    /// Uniform in −0.5…0.5 (RMS 1/√12).
    fn white(&mut self) -> f32 {
        self.next() as f32 / u32::MAX as f32 - 0.5
    }

    /// `seconds` of brown-ish noise (`low`) or white noise with a 50 Hz hum.
    fn coloured(&mut self, seconds: f32, low: bool) -> Vec<f32> {
        let n = (seconds * RATE as f32) as usize;
        let mut acc = 0.0f32;
        (0..n)
            .map(|i| {
                if low {
                    acc = acc * 0.995 + self.white() * 0.1;
                    acc
                } else {
                    let t = i as f32 / RATE as f32;
                    self.white() * 0.2 + (2.0 * std::f32::consts::PI * 50.0 * t).sin() * 0.05
                }
            })
            .collect()
    }
}

fn rms_db(x: &[f32]) -> f32 {
    let p = x.iter().map(|s| s * s).sum::<f32>() / x.len().max(1) as f32;
    10.0 * p.max(1e-12).log10()
}

fn db_to_gain(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

/// `x` scaled to `db` dBFS RMS, clipped to full scale.
fn level(x: &[f32], db: f32) -> Vec<f32> {
    let gain = db_to_gain(db - rms_db(x));
    x.iter().map(|s| (s * gain).clamp(-1.0, 1.0)).collect()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn clock(seconds: f64) -> String {
    let s = seconds as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// The audio in `path`, made by `make` (and saved there) when it is not.
fn cached(path: &Path, make: impl FnOnce() -> Vec<f32>) -> Vec<f32> {
    if path.is_file() {
        return read_wav_16k(path);
    }
    eprintln!("making {} (once; cached)", path.display());
    let audio = make();
    write_wav_16k(path, &audio);
    audio
}

/// Clips saved in one file (each preceded by its length in a sidecar), made by `make`
/// when absent.
fn cached_set(path: &Path, make: impl FnOnce() -> Vec<Vec<f32>>) -> Vec<Vec<f32>> {
    let lengths = path.with_extension("lengths");
    if path.is_file() && lengths.is_file() {
        let all = read_wav_16k(path);
        let mut at = 0;
        return std::fs::read_to_string(&lengths)
            .unwrap()
            .split_whitespace()
            .map(|n| {
                let n: usize = n.parse().unwrap();
                let clip = all[at..at + n].to_vec();
                at += n;
                clip
            })
            .collect();
    }
    eprintln!("making {} (once; cached)", path.display());
    let clips = make();
    let all: Vec<f32> = clips.iter().flatten().copied().collect();
    write_wav_16k(path, &all);
    let text: Vec<String> = clips.iter().map(|c| c.len().to_string()).collect();
    std::fs::write(&lengths, text.join(" ")).unwrap();
    clips
}

fn thread_cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}
