//! The tts plugin end to end: real Kokoro, real espeak-ng, real gRPC, the host loading it.
//! What it says is written to a WAV file and transcribed back with Whisper (the stt model).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio_stream::StreamExt;
use tonic::Code;
use voicehost_proto::common::v1::DialogRef;
use voicehost_proto::common::v1::TextChunk;
use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;
use voicehost_proto::tts::v1::{PlaybackEventKind, RenderReferenceRequest, SpeakRequest, Wait};
use voicehost_tests::{
    HostProc, Setup, WHISPER_THREADS, channel, free_port, model, tts_keys, word_error_rate,
};

/// A host with the logger and the real tts writing to `out.wav` in the test's directory.
fn tts_host(extra: &[(&str, &str)]) -> (Setup, HostProc, u16, PathBuf) {
    let mut setup = Setup::new();
    let port = free_port();
    let out = setup.dir.path().join("out.wav");
    setup.section_with("tts", tts_keys(port, &out), extra);
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(120));
    (setup, host, port, out)
}

/// Samples of a 16-bit mono WAV from `skip` on, as f32.
fn wav_samples(path: &Path, skip: usize) -> (u32, Vec<f32>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let rate = r.spec().sample_rate;
    let s = r
        .samples::<i16>()
        .skip(skip)
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    (rate, s)
}

fn wav_len(path: &Path) -> usize {
    hound::WavReader::open(path)
        .map(|r| r.len() as usize)
        .unwrap_or(0)
}

/// What Whisper tiny.en hears in 24 kHz speech.
fn transcribe(samples_24k: &[f32]) -> String {
    let mut resampler = voicehost_audio::Resampler::new(24_000, 16_000).unwrap();
    let mut audio = resampler.process(samples_24k);
    audio.extend(resampler.flush());
    whisper_rs::install_logging_hooks();
    let ctx = whisper_rs::WhisperContext::new_with_params(
        model("ggml-tiny.en.bin").to_str().unwrap(),
        whisper_rs::WhisperContextParameters::default(),
    )
    .unwrap();
    let mut state = ctx.create_state().unwrap();
    let mut params =
        whisper_rs::FullParams::new(whisper_rs::SamplingStrategy::Greedy { best_of: 1 });
    params.set_language(Some("en"));
    params.set_n_threads(WHISPER_THREADS as i32);
    state.full(params, &audio).unwrap();
    state
        .as_iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn speak(text: &str, wait: Wait) -> SpeakRequest {
    SpeakRequest {
        text: text.into(),
        dialog_id: String::new(),
        voice: String::new(),
        wait: wait as i32,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speak_round_trips_through_whisper() {
    let (_setup, mut host, port, out) = tts_host(&[("output_pacing", "fast")]);
    let mut tts = TtsServiceClient::new(channel(port));
    let before = wav_len(&out); // the warm-up greeting
    let resp = tts
        .speak(speak("Test 1 2 3", Wait::Finished))
        .await
        .unwrap()
        .into_inner();
    assert!(resp.finished);
    assert!(resp.audio_ms > 800, "{resp:?}");
    let (rate, samples) = wav_samples(&out, before);
    assert_eq!(rate, 24_000);
    let heard = transcribe(&samples);
    let digits = word_error_rate("Test 1 2 3", &heard);
    let words = word_error_rate("Test one two three", &heard);
    assert!(
        digits == 0.0 || words == 0.0,
        "Whisper heard {heard:?} for \"Test 1 2 3\""
    );
    host.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speak_stream_plays_while_the_reply_streams() {
    let (_setup, mut host, port, out) = tts_host(&[]);
    let mut tts = TtsServiceClient::new(channel(port));
    let dialog = "00000000000000aa";
    let mut events = tts
        .playback_events(DialogRef {
            dialog_id: dialog.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let before = wav_len(&out);
    let words: Vec<String> = "The capital of France is Paris. It is a large and beautiful city."
        .split_inclusive(' ')
        .map(str::to_owned)
        .collect();
    let n = words.len();
    // An LLM-like stream: a word every 30 ms.
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let first_sent = Instant::now();
    tokio::spawn(async move {
        for (i, w) in words.into_iter().enumerate() {
            let chunk = TextChunk {
                text: w,
                eot: i + 1 == n,
                dialog_id: dialog.into(),
                turn: 1,
                index: i as u32,
                finish_reason: if i + 1 == n {
                    "stop".into()
                } else {
                    String::new()
                },
            };
            tx.send(chunk).await.unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    });
    let resp = tts
        .speak_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let mut kinds = Vec::new();
    let mut first_audio = None;
    while let Some(e) = tokio::time::timeout(Duration::from_secs(60), events.next())
        .await
        .unwrap_or_else(|_| panic!("no playback event within 60 s; so far {kinds:?}"))
    {
        let e = e.unwrap();
        assert_eq!(
            e.utterance_id, resp.utterance_id,
            "an event of another utterance: {e:?}; so far {kinds:?}"
        );
        let kind = e.kind();
        if kind == PlaybackEventKind::Started {
            first_audio = Some(first_sent.elapsed());
        }
        kinds.push(kind);
        if kind == PlaybackEventKind::Finished {
            break;
        }
    }
    assert_eq!(kinds.first(), Some(&PlaybackEventKind::Started));
    assert_eq!(kinds.last(), Some(&PlaybackEventKind::Finished));
    // Synthesis keeps ahead of playback on an idle machine; on a busy one an underrun (a
    // gap, reported) may come between the chunks, but the reply plays on to its end.
    let between = &kinds[1..kinds.len() - 1];
    assert!(
        between.iter().all(|k| matches!(
            k,
            PlaybackEventKind::ChunkPlayed | PlaybackEventKind::Underrun
        )),
        "only chunks (and gaps) between start and finish: {kinds:?}"
    );
    let chunks = between
        .iter()
        .filter(|k| **k == PlaybackEventKind::ChunkPlayed)
        .count();
    assert!(chunks >= 2, "played in several clauses: {kinds:?}");
    eprintln!(
        "first chunk → first audio: {} ms, {} underrun(s) (debug build, 2 CPU threads)",
        first_audio.unwrap().as_millis(),
        between.len() - chunks
    );
    let (_, samples) = wav_samples(&out, before);
    let heard = transcribe(&samples).to_lowercase();
    assert!(
        heard.contains("paris") && heard.contains("france"),
        "heard {heard:?}"
    );
    host.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_the_service_keeps_serving() {
    let (_setup, mut host, port, _out) = tts_host(&[("output_pacing", "fast")]);
    let mut tts = TtsServiceClient::new(channel(port));
    let cases: Vec<(SpeakRequest, &str)> = vec![
        (speak("", Wait::Queued), "empty"),
        (speak(&"word ".repeat(20_000), Wait::Queued), "100000 bytes"),
        (speak("beep\u{7}", Wait::Queued), "U+0007"),
        (speak("smile 🙂", Wait::Queued), "U+1F642"),
        (
            SpeakRequest {
                voice: "xx_nobody".into(),
                ..speak("hello", Wait::Queued)
            },
            "unknown voice",
        ),
        (
            SpeakRequest {
                dialog_id: "../../etc".into(),
                ..speak("hello", Wait::Queued)
            },
            "dialog_id",
        ),
        (
            SpeakRequest {
                wait: 7,
                ..speak("hello", Wait::Queued)
            },
            "wait = 7",
        ),
    ];
    for (req, why) in cases {
        let err = tts.speak(req).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{why}: {err}");
        assert!(err.message().contains(why), "{why}: {err}");
    }
    // Invalid UTF-8 in the text field, as a misbehaving client would send it.
    let err = raw_speak(port, b"\xff\xfe bad").await;
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    // Still serving.
    let ok = tts
        .speak(speak("Still here.", Wait::Finished))
        .await
        .unwrap();
    assert!(ok.into_inner().finished);
    host.terminate();
}

/// Sends a SpeakRequest whose text field holds `bytes` (not necessarily UTF-8).
async fn raw_speak(port: u16, bytes: &[u8]) -> tonic::Status {
    #[derive(Clone, PartialEq, prost::Message)]
    struct RawSpeak {
        #[prost(bytes = "vec", tag = "1")]
        text: Vec<u8>,
    }
    let mut grpc = tonic::client::Grpc::new(channel(port));
    grpc.ready().await.unwrap();
    let codec =
        tonic_prost::ProstCodec::<RawSpeak, voicehost_proto::tts::v1::SpeakResponse>::default();
    let path =
        tonic::codegen::http::uri::PathAndQuery::from_static("/voicehost.tts.v1.TtsService/Speak");
    grpc.unary(
        tonic::Request::new(RawSpeak {
            text: bytes.to_vec(),
        }),
        path,
        codec,
    )
    .await
    .unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_phrases_play_at_once_and_stop_interrupts() {
    let (_setup, mut host, port, _out) =
        tts_host(&[("cache_phrases", "Yes?;Sorry, I had a problem.")]);
    let mut tts = TtsServiceClient::new(channel(port));
    let mut events = tts
        .playback_events(DialogRef::default())
        .await
        .unwrap()
        .into_inner();
    let mut reference = tts
        .render_reference(RenderReferenceRequest {})
        .await
        .unwrap()
        .into_inner();

    // A cached phrase is queued with its audio already there (audio_ms known at once).
    let asked = Instant::now();
    let cached = tts
        .speak(speak("Yes?", Wait::Queued))
        .await
        .unwrap()
        .into_inner();
    assert!(
        cached.audio_ms > 0,
        "served from the phrase cache: {cached:?}"
    );
    let started = loop {
        let e = events.next().await.unwrap().unwrap();
        if e.utterance_id == cached.utterance_id && e.kind() == PlaybackEventKind::Started {
            break asked.elapsed();
        }
    };
    eprintln!(
        "cached phrase: request → playback start {} ms",
        started.as_millis()
    );
    let uncached = tts
        .speak(speak("Yes, it is.", Wait::Finished))
        .await
        .unwrap()
        .into_inner();
    assert!(uncached.finished);

    // The render reference carries what was played: 24 kHz mono, consecutive frames.
    let mut frames = 0;
    let mut last_seq = None;
    while frames < 20 {
        let f = tokio::time::timeout(Duration::from_secs(5), reference.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!((f.sample_rate, f.channels), (24_000, 1));
        assert_eq!(f.pcm_s16le.len(), 960, "20 ms frames");
        if let Some(prev) = last_seq {
            assert_eq!(f.seq, prev + 1);
        }
        last_seq = Some(f.seq);
        frames += 1;
    }

    // A long text, stopped while it plays.
    let long = "This is a long sentence that keeps going for quite a while. ".repeat(5);
    let resp = tts
        .speak(speak(&long, Wait::Queued))
        .await
        .unwrap()
        .into_inner();
    loop {
        let e = events.next().await.unwrap().unwrap();
        if e.utterance_id == resp.utterance_id && e.kind() == PlaybackEventKind::Started {
            break;
        }
    }
    let stop_us = voicehost_plugin_runtime::now_us();
    let stopped = tts
        .stop_speaking(DialogRef::default())
        .await
        .unwrap()
        .into_inner();
    assert!(stopped.dropped >= 1);
    loop {
        let e = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_ne!(
            e.kind(),
            PlaybackEventKind::Finished,
            "stopped speech does not finish"
        );
        if e.utterance_id == resp.utterance_id && e.kind() == PlaybackEventKind::Interrupted {
            // Stamped when the output goes quiet: after the stop, once the little audio the
            // output already held has played.
            let after_ms = (e.ts_unix_us - stop_us) / 1000;
            assert!(
                (0..1000).contains(&after_ms),
                "interrupted {after_ms} ms after the stop"
            );
            break;
        }
    }
    host.terminate();
}

#[test]
fn a_broken_voice_file_is_not_serving_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let voices = dir.path().join("voices");
    std::fs::create_dir_all(&voices).unwrap();
    std::fs::write(voices.join("af_heart.bin"), b"too short").unwrap();
    let mut setup = Setup::new();
    setup.loader("restart_backoff_ms", "100");
    setup.section(
        "tts",
        &[
            ("port", &free_port().to_string()),
            ("start_timeout_ms", "60000"),
            (
                "model",
                model("kokoro/kokoro-v1.0.int8.onnx").to_str().unwrap(),
            ),
            ("vocab", model("kokoro/vocab.json").to_str().unwrap()),
            ("voices_dir", voices.to_str().unwrap()),
            (
                "onnxruntime_library",
                model("onnxruntime/libonnxruntime.so").to_str().unwrap(),
            ),
            ("output", "null"),
        ],
    );
    let (status, out) = setup.run_to_exit("run", Duration::from_secs(120));
    assert!(!status.success());
    assert!(
        out.contains("af_heart.bin has 9 bytes; a Kokoro voice has 522240"),
        "{out}"
    );
}
