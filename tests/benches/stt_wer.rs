//! Whisper accuracy and speed benchmark: word error rate per model and voice, time per clip,
//! with 1 and 2 whisper.cpp threads and `threads = 0` (one per idle core, the default),
//! with no load added and beside a competing CPU load.
//!
//! `cargo bench -p voicehost-tests --bench stt_wer` (models fetched; the optional ones with
//! `voicehost models fetch --only whisper-base --only whisper-base-q8 --only
//! whisper-tiny-en-q8`; a model that is not fetched is left out). Clips: `audio/jfk.wav`
//! (real speech), the `audio/en` clips with their transcripts, and [`SENTENCES`] spoken by
//! the project's tts plugin (Kokoro) in each of [`VOICES`] (synthesised once by a host
//! running the release build's tts plugin, so `cargo build --release --workspace` first;
//! then kept in `$VOICEHOST_CACHE/stt-wer/`). Every clip goes through the stt plugin's own
//! [`Recognizer`] (greedy, `audio_ctx` fitted to the clip, the loop retry), so the figures
//! are the product's.
//!
//! WER counts words after normalising case, punctuation and numbers ("eighty-four" and
//! "84" are the same word). The competing load is one busy-looping process per core, as the
//! llm generating beside stt would be; there each model runs a subset of clips
//! ([`LOADED_CLIPS`]) to keep the worst case short. The timing rows print the load average
//! after each pass: on a shared machine, read them as ratios. `STT_WER_QUICK=1`: one
//! sentence per voice, for a smoke run.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use voicehost_plugin_stt::Recognizer;
use voicehost_tests::{
    cache_dir, model, read_wav_16k, tts_speech_in, workspace_root, write_wav_16k,
};

/// Spoken-assistant requests, with numbers written as words (Kokoro says them; Whisper may
/// write digits).
const SENTENCES: &[&str] = &[
    "What is the capital of France?",
    "Set a timer for twenty-five minutes.",
    "What is eighty-four divided by twelve?",
    "Remind me to call my sister tomorrow morning.",
    "Turn off the lights in the living room, please.",
    "How far is the moon from the earth?",
    "Please add milk, eggs and three apples to my shopping list.",
    "Tell me a short story about a brave little dragon who lived in the mountains.",
];
/// Kokoro voices: American and British, female and male.
const VOICES: &[&str] = &[
    "af_heart",
    "am_adam",
    "bf_emma",
    "bm_george",
    "af_nicole",
    "am_michael",
];
/// (label, file under models/).
const MODELS: &[(&str, &str)] = &[
    ("tiny.en f16", "ggml-tiny.en.bin"),
    ("tiny.en q8_0", "ggml-tiny.en-q8_0.bin"),
    ("base f16", "ggml-base.bin"),
    ("base q8_0", "ggml-base-q8_0.bin"),
];
const JFK: &str = "And so my fellow Americans, ask not what your country can do for you, \
                   ask what you can do for your country.";
/// Clips per model under the competing load: jfk.wav and the first of each voice's.
const LOADED_CLIPS: usize = 1 + 6;
/// Silence around each synthesised sentence (seconds), as the VAD's pre-roll and
/// end-of-speech wait leave it.
const LEAD_S: f32 = 0.3;
const TAIL_S: f32 = 0.5;

struct Clip {
    /// The voice (`jfk`, `audioeval` or a Kokoro voice).
    voice: String,
    text: String,
    samples: Vec<f32>,
}

impl Clip {
    fn seconds(&self) -> f64 {
        self.samples.len() as f64 / 16_000.0
    }
}

/// One transcription: word errors, reference words, time.
#[derive(Clone, Copy)]
struct Outcome {
    errors: usize,
    words: usize,
    ms: f64,
    audio_s: f64,
}

fn corpus(quick: bool) -> Vec<Clip> {
    let mut clips = vec![Clip {
        voice: "jfk".to_owned(),
        text: JFK.to_owned(),
        samples: read_wav_16k(&model("audio/jfk.wav")),
    }];
    let sentences = if quick { &SENTENCES[..1] } else { SENTENCES };
    let mut spoken = kokoro_clips(sentences);
    // First sentence of every voice first, so the loaded subset covers every voice.
    spoken.sort_by_key(|(i, v, _)| (*i, *v));
    clips.extend(spoken.into_iter().map(|(i, v, samples)| Clip {
        voice: VOICES[v].to_owned(),
        text: sentences[i].to_owned(),
        samples,
    }));
    for name in ["counting", "hello_world", "quick_brown_fox"] {
        clips.push(Clip {
            voice: "audioeval".to_owned(),
            text: std::fs::read_to_string(model(&format!("audio/en/{name}.txt"))).unwrap(),
            samples: read_wav_16k(&model(&format!("audio/en/{name}.wav"))),
        });
    }
    clips
}

/// (sentence index, voice index, 16 kHz samples) for every sentence in every voice, from
/// the cache or synthesised by the project's tts: one host running the real tts plugin
/// (Kokoro) into a WAV file, one `Speak` per sentence and voice. (Its engine cannot be
/// linked in-process here: stt and tts each export the plugin ABI's symbols.)
fn kokoro_clips(sentences: &[&str]) -> Vec<(usize, usize, Vec<f32>)> {
    let dir = cache_dir().join("stt-wer");
    std::fs::create_dir_all(&dir).unwrap();
    let path =
        |v: usize, i: usize| dir.join(format!("{}-{:016x}.wav", VOICES[v], fnv1a(sentences[i])));
    let missing: Vec<(usize, usize)> = (0..VOICES.len())
        .flat_map(|v| (0..sentences.len()).map(move |i| (v, i)))
        .filter(|&(v, i)| !path(v, i).is_file())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "synthesising {} benchmark sentences with the tts plugin (cached in {})",
            missing.len(),
            dir.display()
        );
        let requests: Vec<(&str, &str)> = missing
            .iter()
            .map(|&(v, i)| (VOICES[v], sentences[i]))
            .collect();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let speech = runtime.block_on(tts_speech_in(
            &requests,
            &[("start_timeout_ms", "120000")],
            Duration::from_secs(180),
        ));
        for (&(v, i), samples) in missing.iter().zip(speech) {
            let mut padded = vec![0.0; (LEAD_S * 16_000.0) as usize];
            padded.extend(samples);
            padded.resize(padded.len() + (TAIL_S * 16_000.0) as usize, 0.0);
            write_wav_16k(&path(v, i), &padded);
        }
    }
    (0..VOICES.len())
        .flat_map(|v| (0..sentences.len()).map(move |i| (v, i)))
        .map(|(v, i)| (i, v, read_wav_16k(&path(v, i))))
        .collect()
}

/// FNV-1a of `text`: the cache file's name changes with the sentence.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Lower case, words of letters, digits and apostrophes, number words as digits.
fn normalise(text: &str) -> Vec<String> {
    // "1,000" is one number; "well-known" and "twenty-five" are two words.
    let chars: Vec<char> = text.chars().collect();
    let plain: String = chars
        .iter()
        .enumerate()
        .filter(|&(i, c)| {
            !(*c == ','
                && i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        })
        .map(|(_, c)| {
            if c.is_alphanumeric() || *c == '\'' {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    let words: Vec<&str> = plain.split_whitespace().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        match number(&words[i..]) {
            Some((value, used)) => {
                out.push(value.to_string());
                i += used;
            }
            None => {
                out.push(words[i].to_owned());
                i += 1;
            }
        }
    }
    out
}

/// The number spelled by the words at the start of `w` ("eighty four", "two hundred and
/// six", "three thousand"), and how many words it took. Separate numbers stay separate:
/// "one two three" is 1, then 2, then 3.
fn number(w: &[&str]) -> Option<(u64, usize)> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    let scale = |word: &str| match word {
        "thousand" => Some(1_000),
        "million" => Some(1_000_000),
        _ => None,
    };
    let (mut total, mut current, mut used) = (0u64, 0u64, 0usize);
    let mut any = false;
    while let Some(word) = w.get(used) {
        let below_100 = current % 100;
        if let Some(v) = UNITS.iter().position(|u| u == word) {
            let v = v as u64;
            // After "twenty" a digit may follow; after "hundred" anything below 100.
            let fits = below_100 == 0 || (below_100 >= 20 && below_100 % 10 == 0 && v < 10);
            if any && !fits {
                break;
            }
            current += v;
        } else if let Some(t) = TENS.iter().position(|u| u == word) {
            if any && below_100 != 0 {
                break;
            }
            current += 20 + 10 * t as u64;
        } else if *word == "hundred" && any && (1..100).contains(&current) {
            current *= 100;
        } else if let Some(scale) = scale(word).filter(|_| any && current > 0) {
            total += current * scale;
            current = 0;
        } else if *word == "and"
            && any
            && current % 100 == 0
            && w.get(used + 1)
                .is_some_and(|n| UNITS.contains(n) || TENS.contains(n))
        {
            // "two hundred and six"
        } else {
            break;
        }
        any = true;
        used += 1;
    }
    any.then_some((total + current, used))
}

/// Word errors (substitutions, insertions, deletions) of `hypothesis` against
/// `reference`, and the reference's word count, after [`normalise`].
fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let (r, h) = (normalise(reference), normalise(hypothesis));
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut row = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            row[j + 1] = (prev[j] + usize::from(rw != hw))
                .min(prev[j + 1] + 1)
                .min(row[j] + 1);
        }
        prev = row;
    }
    (prev[h.len()], r.len())
}

/// One busy-looping process per core while it lives.
struct BusyLoad {
    loops: Vec<std::process::Child>,
}

impl BusyLoad {
    /// One busy-looping process per core: other programs, as the llm is to stt (a
    /// transcription with `threads = 0` counts its own process's time as its own).
    fn start() -> BusyLoad {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let loops = (0..cores)
            .map(|_| {
                std::process::Command::new("sh")
                    .args(["-c", "while :; do :; done"])
                    .spawn()
                    .unwrap()
            })
            .collect();
        BusyLoad { loops }
    }
}

impl Drop for BusyLoad {
    fn drop(&mut self) {
        for mut child in self.loops.drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every clip through the plugin's recogniser with `threads` threads, after one untimed
/// warm-up; prints what it misheard.
fn run(path: &Path, label: &str, threads: usize, clips: &[Clip]) -> Vec<Outcome> {
    let rec = Recognizer::load(path, threads, "en", 0.6).unwrap();
    rec.transcribe(&clips[0].samples).unwrap();
    clips
        .iter()
        .map(|clip| {
            let t = Instant::now();
            let text = rec
                .transcribe(&clip.samples)
                .unwrap()
                .map(|t| t.text)
                .unwrap_or_default();
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let (errors, words) = word_errors(&clip.text, &text);
            if errors > 0 {
                println!(
                    "  {label}, {threads}t, {}: {:?} heard as {text:?}",
                    clip.voice, clip.text
                );
            }
            Outcome {
                errors,
                words,
                ms,
                audio_s: clip.seconds(),
            }
        })
        .collect()
}

/// (median ms, max ms, real-time factor) of `outcomes`.
fn timing(outcomes: &[Outcome]) -> (f64, f64, f64) {
    let mut ms: Vec<f64> = outcomes.iter().map(|o| o.ms).collect();
    ms.sort_by(f64::total_cmp);
    let audio: f64 = outcomes.iter().map(|o| o.audio_s).sum();
    (
        ms[ms.len() / 2],
        ms[ms.len() - 1],
        ms.iter().sum::<f64>() / 1000.0 / audio,
    )
}

fn wer(outcomes: &[&Outcome]) -> f64 {
    let errors: usize = outcomes.iter().map(|o| o.errors).sum();
    let words: usize = outcomes.iter().map(|o| o.words).sum();
    100.0 * errors as f64 / words.max(1) as f64
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `threads` settings compared: 1, 2, and 0 (one per core idle at each request).
const THREADS: [usize; 3] = [1, 2, 0];

fn threads_label(threads: usize) -> String {
    match threads {
        0 => "idle".to_owned(),
        n => n.to_string(),
    }
}

fn main() {
    assert_eq!(word_errors("eighty-four", "84."), (0, 1));
    assert_eq!(word_errors("One two three.", "1, 2, 3"), (0, 3));
    assert_eq!(word_errors("two hundred and six", "206"), (0, 1));
    let quick = std::env::var_os("STT_WER_QUICK").is_some();
    let clips = corpus(quick);
    let models: Vec<(&str, PathBuf)> = MODELS
        .iter()
        .map(|(label, file)| (*label, workspace_root().join("models").join(file)))
        .filter(|(label, path)| {
            let present = path.is_file();
            if !present {
                println!("{label}: {} not fetched, left out", path.display());
            }
            present
        })
        .collect();
    let audio_s: f64 = clips.iter().map(Clip::seconds).sum();
    println!(
        "stt_wer: {} clips ({audio_s:.0} s of audio), {} cores, load average at start {}",
        clips.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );

    // Idle: every clip, every model, 1 and 2 threads and one per idle core.
    let mut idle = Vec::new();
    for (label, path) in &models {
        for threads in THREADS {
            let outcomes = run(path, label, threads, &clips);
            idle.push((*label, threads, outcomes, loadavg()));
        }
    }
    println!("\nWER % per voice (1 thread; 2 threads where it differs)");
    let mut voices: Vec<&str> = clips.iter().map(|c| c.voice.as_str()).collect();
    voices.dedup();
    voices.sort_unstable();
    voices.dedup();
    print!("{:<12}", "voice");
    for (label, _) in &models {
        print!(" {label:>14}");
    }
    println!();
    for voice in voices.iter().copied().chain(["all"]) {
        print!("{voice:<12}");
        for (label, _) in &models {
            let cell = |threads: usize| {
                let (_, _, outcomes, _) = idle
                    .iter()
                    .find(|(l, t, _, _)| l == label && *t == threads)
                    .unwrap();
                let picked: Vec<&Outcome> = outcomes
                    .iter()
                    .zip(&clips)
                    .filter(|(_, c)| voice == "all" || c.voice == voice)
                    .map(|(o, _)| o)
                    .collect();
                wer(&picked)
            };
            let (one, two) = (cell(1), cell(2));
            let text = if (one - two).abs() < 0.05 {
                format!("{one:.1}")
            } else {
                format!("{one:.1}/{two:.1}")
            };
            print!(" {text:>14}");
        }
        println!();
    }

    println!(
        "\nTime per clip, no load added (load average now {}: other work on the machine)",
        loadavg()
    );
    println!(
        "{:<14} {:>7} {:>10} {:>10} {:>7}  load average after",
        "model", "threads", "median ms", "max ms", "RTF"
    );
    for (label, threads, outcomes, load) in &idle {
        let (median, max, rtf) = timing(outcomes);
        let threads = threads_label(*threads);
        println!("{label:<14} {threads:>7} {median:>10.0} {max:>10.0} {rtf:>7.3}  {load}");
    }

    // Beside a competing load: a subset, each thread setting in turn.
    let subset = &clips[..LOADED_CLIPS.min(clips.len())];
    let subset_s: f64 = subset.iter().map(Clip::seconds).sum();
    println!(
        "\nTime per clip beside {} busy-looping processes ({} clips, {subset_s:.0} s of audio; the load average counts them)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        subset.len()
    );
    println!(
        "{:<14} {:>7} {:>10} {:>10} {:>7} {:>6}  load average after",
        "model", "threads", "median ms", "max ms", "RTF", "WER %"
    );
    for (label, path) in &models {
        for threads in THREADS {
            let load = BusyLoad::start();
            // As the llm would be: running before the request comes.
            std::thread::sleep(Duration::from_millis(500));
            let outcomes = run(path, label, threads, subset);
            drop(load);
            let (median, max, rtf) = timing(&outcomes);
            let all: Vec<&Outcome> = outcomes.iter().collect();
            let threads = threads_label(threads);
            println!(
                "{label:<14} {threads:>7} {median:>10.0} {max:>10.0} {rtf:>7.3} {:>6.1}  {}",
                wer(&all),
                loadavg()
            );
        }
    }
    println!("load average at the end {}", loadavg());
}
