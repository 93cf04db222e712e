//! tts's `Synthesize` and `ListVoices` end to end, as the Wyoming server uses them: the
//! host loads the real Piper and Kokoro plugins, the audio comes back to the caller clause
//! by clause (Whisper, the stt model, hears what it says), and nothing is played.

#![allow(clippy::unwrap_used)]

mod whisper_common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tonic::{Code, Status};
use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;
use voicehost_proto::tts::v1::{
    ListVoicesRequest, RenderReferenceRequest, SpeakRequest, SynthesizeRequest, SynthesizedAudio,
    Wait,
};
use voicehost_tests::{
    AppLine, HostProc, Setup, channel, free_port, model, piper_keys, resample_16k, tts_keys,
    wait_app_events, words,
};

/// A host with the logger and the tts plugin of `keys` (writing to `out.wav` in the test's
/// directory, `output_pacing = fast`), with `extra` keys.
fn host(
    keys: fn(u16, &Path) -> Vec<(String, String)>,
    extra: &[(&str, &str)],
) -> (Setup, HostProc, TtsServiceClient<Channel>, PathBuf) {
    let mut setup = Setup::new();
    let port = free_port();
    let out = setup.dir.path().join("out.wav");
    let mut overrides = vec![("output_pacing", "fast")];
    overrides.extend_from_slice(extra);
    setup.section_with("tts", keys(port, &out), &overrides);
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(180));
    (setup, host, TtsServiceClient::new(channel(port)), out)
}

fn request(text: &str, voice: &str) -> SynthesizeRequest {
    SynthesizeRequest {
        text: text.into(),
        voice: voice.into(),
    }
}

/// What one `Synthesize` call returned, and when its first message came.
struct Returned {
    messages: Vec<SynthesizedAudio>,
    first: Duration,
    all: Duration,
}

impl Returned {
    /// The sample rate of every message (they must agree) and all the audio.
    fn audio(&self) -> (u32, Vec<f32>) {
        let rate = self.messages[0].sample_rate;
        let mut samples = Vec::new();
        for m in &self.messages {
            assert_eq!(m.sample_rate, rate, "one rate in every message");
            assert!(
                !m.pcm_s16le.is_empty() && m.pcm_s16le.len() % 2 == 0,
                "{} bytes",
                m.pcm_s16le.len()
            );
            samples.extend(
                m.pcm_s16le
                    .chunks_exact(2)
                    .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0),
            );
        }
        (rate, samples)
    }

    /// Milliseconds of audio in each message.
    fn durations_ms(&self) -> Vec<u64> {
        self.messages
            .iter()
            .map(|m| m.pcm_s16le.len() as u64 / 2 * 1000 / u64::from(m.sample_rate))
            .collect()
    }
}

async fn synthesize(
    tts: &mut TtsServiceClient<Channel>,
    text: &str,
    voice: &str,
) -> Result<Returned, Status> {
    let started = Instant::now();
    let mut stream = tts.synthesize(request(text, voice)).await?.into_inner();
    let mut messages = Vec::new();
    let mut first = Duration::ZERO;
    while let Some(m) = stream.message().await? {
        if messages.is_empty() {
            first = started.elapsed();
        }
        messages.push(m);
    }
    assert!(!messages.is_empty(), "{text:?}: no audio");
    Ok(Returned {
        messages,
        first,
        all: started.elapsed(),
    })
}

fn wav_len(path: &Path) -> u32 {
    hound::WavReader::open(path).map_or(0, |r| r.len())
}

/// [`words`] with each digit written out, as it is spoken ("1" → one): Whisper writes
/// "one two three" as "1 2 3", "1-2-3" or "123".
fn spoken_words(text: &str) -> Vec<String> {
    const DIGITS: [&str; 10] = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    words(text)
        .into_iter()
        .flat_map(|w| {
            if w.chars().all(|c| c.is_ascii_digit()) {
                w.bytes()
                    .map(|d| DIGITS[usize::from(d - b'0')].to_owned())
                    .collect()
            } else {
                vec![w]
            }
        })
        .collect()
}

#[test]
fn digits_are_compared_as_spoken() {
    for heard in [
        "Test 1 2 3.",
        "Test 1-2-3",
        "Test 123",
        "test one, two, three",
    ] {
        assert_eq!(
            spoken_words(heard),
            ["test", "one", "two", "three"],
            "{heard}"
        );
    }
}

/// What Whisper hears in `samples` at `rate`, with half a second of silence either side (as
/// a microphone would have it; Whisper mishears speech that starts at the first sample more
/// often).
fn heard(rate: u32, samples: &[f32]) -> String {
    let silence = vec![0.0; 8_000];
    let padded = [&silence[..], &resample_16k(samples, rate), &silence[..]].concat();
    whisper_common::transcribe(&padded)
}

/// A numeric field of an app.log line (written as a number or as text).
fn number(line: &AppLine, key: &str) -> u64 {
    match &line.fields[key] {
        serde_json::Value::Number(n) => n.as_u64().unwrap(),
        other => other.as_str().unwrap().parse().unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn piper_returns_audio_that_whisper_hears_and_plays_nothing() {
    let (setup, mut host, mut tts, out) = host(piper_keys, &[]);
    let mut reference = tts
        .render_reference(RenderReferenceRequest {})
        .await
        .unwrap()
        .into_inner();
    let played_before = wav_len(&out);

    // VITS samples noise, so each rendering differs a little, and tiny.en now and then
    // mishears one: up to three renderings, one must be heard exactly.
    let text = "Test 1 2 3.";
    let mut transcripts = Vec::new();
    for _ in 0..3 {
        let returned = synthesize(&mut tts, text, "").await.unwrap();
        let (rate, samples) = returned.audio();
        assert_eq!(rate, 22_050, "Piper's rate, as the voice config says");
        assert!(
            samples.len() > rate as usize / 2,
            "{} samples",
            samples.len()
        );
        let transcript = heard(rate, &samples);
        eprintln!(
            "{text:?}: {} message(s), first after {:?}, all after {:?}; Whisper heard {transcript:?}",
            returned.messages.len(),
            returned.first,
            returned.all
        );
        let exact = spoken_words(&transcript) == spoken_words(text);
        transcripts.push(transcript);
        if exact {
            break;
        }
    }
    assert!(
        spoken_words(transcripts.last().unwrap()) == spoken_words(text),
        "Whisper heard {transcripts:?} for {text:?}"
    );

    // Three sentences: three messages at least (one per clause), each of them speech.
    let text = "The first sentence is short. The second one is short too. And here is the third.";
    let returned = synthesize(&mut tts, text, "en_US-joe-medium")
        .await
        .unwrap();
    let durations = returned.durations_ms();
    eprintln!(
        "three sentences: {durations:?} ms of audio, first after {:?}, all after {:?}",
        returned.first, returned.all
    );
    assert!(durations.len() >= 3, "{durations:?}");
    assert!(durations.iter().all(|ms| *ms >= 300), "{durations:?}");

    // None of it was played: nothing in the output, nothing as the echo canceller's far end.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        wav_len(&out),
        played_before,
        "Synthesize wrote to the output"
    );
    let frame = tokio::time::timeout(Duration::from_millis(300), reference.message()).await;
    assert!(
        frame.is_err(),
        "Synthesize reached RenderReference: {frame:?}"
    );
    // Speak still plays (both checks above would have seen it).
    tts.speak(SpeakRequest {
        text: "Done.".into(),
        dialog_id: String::new(),
        voice: String::new(),
        wait: Wait::Finished as i32,
    })
    .await
    .unwrap();
    assert!(wav_len(&out) > played_before);
    let frame = tokio::time::timeout(Duration::from_secs(5), reference.message()).await;
    assert!(matches!(frame, Ok(Ok(Some(_)))), "{frame:?}");

    // A caller that goes away after the first clause: the rest is not synthesised.
    let many = "This is one more sentence of a long answer. ".repeat(12);
    let mut stream = tts
        .synthesize(request(&many, ""))
        .await
        .unwrap()
        .into_inner();
    assert!(stream.message().await.unwrap().is_some());
    drop(stream);
    let log = setup.log_dir().join("app.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    let left = loop {
        let events = wait_app_events(&log, &["tts_synthesized"], Duration::from_secs(30));
        if let Some(e) = events
            .into_iter()
            .find(|e| e.event == "tts_synthesized" && e.field("end") == "caller_left")
        {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "no tts_synthesized with end = caller_left"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (returned, clauses) = (number(&left, "returned"), number(&left, "clauses"));
    eprintln!("caller left: {returned} of {clauses} clauses returned");
    assert!(clauses >= 12, "{left:?}");
    assert!(returned < clauses / 2, "{left:?}");
    // The next caller is served as before.
    let next = synthesize(&mut tts, "Next.", "").await.unwrap();
    eprintln!("the next call's first audio after {:?}", next.first);
    host.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_are_invalid_argument_naming_the_value() {
    let (_setup, mut host, mut tts, _out) = host(piper_keys, &[("max_text_bytes", "64")]);
    let long = "word ".repeat(13);
    let cases: [(&str, &str, &[&str]); 5] = [
        ("", "", &["text is empty"]),
        ("  \n ", "", &["text is empty"]),
        (long.as_str(), "", &["65 bytes", "max_text_bytes"]),
        ("Ring\u{7} the bell.", "", &["U+0007", "byte 4"]),
        (
            "Hello.",
            "af_heart",
            &["voice \"af_heart\"", "unknown voice", "en_US-joe-medium"],
        ),
    ];
    for (text, voice, needles) in cases {
        let err = match tts.synthesize(request(text, voice)).await {
            Err(e) => e,
            Ok(stream) => stream.into_inner().message().await.unwrap_err(),
        };
        assert_eq!(
            err.code(),
            Code::InvalidArgument,
            "{text:?} {voice:?}: {err}"
        );
        for needle in needles {
            assert!(err.message().contains(needle), "{needle:?} in {err}");
        }
    }

    // Piper's one voice, in the language its config names.
    let voices = tts
        .list_voices(ListVoicesRequest {})
        .await
        .unwrap()
        .into_inner();
    eprintln!("{voices:?}");
    assert_eq!(voices.default_voice, "en_US-joe-medium");
    assert_eq!(voices.sample_rate, 22_050);
    assert_eq!(voices.engine, "voicehost-plugin-piper");
    assert!(!voices.engine_version.is_empty());
    assert_eq!(voices.voices.len(), 1, "{voices:?}");
    let voice = &voices.voices[0];
    assert_eq!(voice.name, "en_US-joe-medium");
    assert_eq!(voice.languages, ["en_US"]);
    assert!(voice.description.contains("Piper"), "{voice:?}");
    host.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kokoro_lists_its_english_voices_with_af_heart_the_default() {
    let (_setup, mut host, mut tts, out) = host(tts_keys, &[]);
    // The warm-up greeting has played (host_ready comes after it).
    let played_before = wav_len(&out);
    let voices = tts
        .list_voices(ListVoicesRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(voices.default_voice, "af_heart");
    assert_eq!(voices.sample_rate, 24_000);
    assert_eq!(voices.engine, "voicehost-plugin-tts");
    // Every English voice file (a… American, b… British), and only those.
    let dir = model("kokoro/voices/af_heart.bin")
        .parent()
        .unwrap()
        .to_owned();
    let mut english: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let stem = name.strip_suffix(".bin")?.to_owned();
            stem.starts_with(['a', 'b']).then_some(stem)
        })
        .collect();
    english.sort();
    let names: Vec<&str> = voices.voices.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, english, "{voices:?}");
    assert!(names.contains(&"af_heart") && names.contains(&"bf_emma"));
    for v in &voices.voices {
        let language = if v.name.starts_with('a') {
            "en_US"
        } else {
            "en_GB"
        };
        assert_eq!(v.languages, [language], "{v:?}");
        assert!(v.description.contains("English"), "{v:?}");
    }

    // A listed voice other than the default, and a phrase from the cache (one message).
    let emma = synthesize(&mut tts, "Good morning.", "bf_emma")
        .await
        .unwrap();
    let (rate, samples) = emma.audio();
    assert_eq!(rate, 24_000);
    assert!(samples.len() > 24_000 / 3, "{} samples", samples.len());
    let cached = synthesize(&mut tts, "Yes?", "").await.unwrap();
    assert_eq!(cached.messages.len(), 1);
    eprintln!(
        "Kokoro: bf_emma first audio after {:?}; the cached phrase after {:?}",
        emma.first, cached.first
    );
    let err = synthesize(&mut tts, "Hello.", "xx_nobody")
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains("xx_nobody"), "{err}");
    assert_eq!(
        wav_len(&out),
        played_before,
        "Synthesize wrote to the output"
    );
    host.terminate();
}
