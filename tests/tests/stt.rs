//! The stt plugin end to end: real capture from WAV files read in real time, AEC3, Silero
//! VAD, Whisper, real gRPC, the host loading it.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use tokio_stream::StreamExt;
use tonic::Code;
use voicehost_proto::common::v1::DialogRef;
use voicehost_proto::stt::v1::SttResult;
use voicehost_proto::stt::v1::stt_service_client::SttServiceClient;
use voicehost_proto::stt::v1::{AudioFramesRequest, StartRequest, StopRequest};
use voicehost_tests::{
    AppLine, HostProc, Setup, app_events, channel, espeak, free_port, model, optional_model,
    read_wav_16k, stt_keys, wait_app_events, wait_for_text, word_error_rate, words, write_wav_16k,
};

const JFK: &str = "And so my fellow Americans, ask not what your country can do for you, \
                   ask what you can do for your country.";

/// A host with the logger and stt reading `input`.
fn stt_host(input: &Path, extra: &[(&str, &str)]) -> (Setup, HostProc, u16) {
    let mut setup = Setup::new();
    let port = free_port();
    let keys = stt_keys(port, input);
    setup.section_with("stt", keys, extra);
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(120));
    (setup, host, port)
}

/// stt `Start(dialog)` and its `Results` stream.
async fn listen(
    port: u16,
    dialog: &str,
) -> (
    SttServiceClient<tonic::transport::Channel>,
    tonic::Streaming<voicehost_proto::stt::v1::SttResult>,
) {
    let mut stt = SttServiceClient::new(channel(port));
    stt.start(StartRequest {
        dialog_id: dialog.into(),
        barge_in_min_ms: 0,
    })
    .await
    .unwrap();
    let results = stt
        .results(DialogRef {
            dialog_id: dialog.into(),
        })
        .await
        .unwrap()
        .into_inner();
    (stt, results)
}

/// stt with `endpoint = turn_model` on `input`: the first `n` finals with words (a final
/// without words is an utterance Whisper heard no speech in, such as the noise floor where
/// a clip was cut), each printed with its end of speech → final text, and app.log's
/// events once it holds their `n` `stt_final` lines (or after 5 s). Keep the setup (its
/// directory) and the host until the test ends.
async fn turn_model_finals(
    input: &Path,
    dialog: &str,
    n: usize,
) -> (Setup, HostProc, Vec<SttResult>, Vec<AppLine>) {
    let turn_model = optional_model("smart-turn", "smart-turn/smart-turn-v3.2-cpu.onnx");
    let (setup, host, port) = stt_host(
        input,
        &[
            ("endpoint", "turn_model"),
            ("turn_model", turn_model.to_str().unwrap()),
        ],
    );
    let (_stt, mut results) = listen(port, dialog).await;
    let mut finals = Vec::new();
    while finals.len() < n {
        let r = tokio::time::timeout(Duration::from_secs(30), results.next())
            .await
            .expect("a result within 30 s")
            .unwrap()
            .unwrap();
        if r.is_final && !r.text.is_empty() {
            finals.push(r);
        }
    }
    for r in &finals {
        eprintln!(
            "final {:?}: end of speech → final text {} ms",
            r.text,
            (r.ts_unix_us - r.speech_end_unix_us) / 1000
        );
    }
    let log = setup.log_dir().join("app.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut events = app_events(&log);
    while events.iter().filter(|e| e.event == "stt_final").count() < n
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
        events = app_events(&log);
    }
    for e in events
        .iter()
        .filter(|e| e.event == "stt_partial" || e.event == "stt_turn")
    {
        eprintln!("{}: {}", e.event, e.fields);
    }
    (setup, host, finals, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_speech_becomes_one_final_result_soon_after_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("jfk-padded.wav");
    let mut audio = vec![0.0; 16_000 * 3];
    audio.extend(read_wav_16k(&model("audio/jfk.wav")));
    audio.extend(vec![0.0; 16_000 * 5]);
    write_wav_16k(&input, &audio);
    let (setup, mut host, port) = stt_host(&input, &[]);
    let dialog = "00000000000000d1";
    let (mut stt, mut results) = listen(port, dialog).await;
    // First the start of speech (at once, for the dialog's follow-up window), then the text.
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(30), results.next())
            .await
            .expect("a result within 30 s")
            .unwrap()
            .unwrap()
    };
    let started = next().await;
    assert!(
        started.speech_started && !started.is_final && started.text.is_empty(),
        "{started:?}"
    );
    let first = next().await;
    assert!(first.is_final);
    assert_eq!(first.speech_start_unix_us, started.speech_start_unix_us);
    assert!(
        started.ts_unix_us < first.speech_end_unix_us,
        "the start was reported while the user still talked"
    );
    let wer = word_error_rate(JFK, &first.text);
    assert!(wer <= 0.05, "WER {wer}: heard {:?}", first.text);
    assert!(first.speech_end_unix_us > first.speech_start_unix_us);
    // Exactly one result for the one utterance: nothing else within the trailing silence.
    let more = tokio::time::timeout(Duration::from_secs(3), results.next()).await;
    assert!(more.is_err(), "a second result: {more:?}");

    // Endpointing: the utterance was cut after the silence wait (vad_silence_ms = 2000), not
    // at the end of the file (9 s later); the figure is printed, its target is the bench's.
    let log = setup.log_dir().join("app.log");
    wait_for_text(&log, "stt_endpoint", Duration::from_secs(5));
    let ev = app_events(&log);
    let endpoint = ev.iter().find(|e| e.event == "stt_endpoint").unwrap();
    let delay: i64 = endpoint.field("speech_end_to_endpoint_ms").parse().unwrap();
    eprintln!("endpoint event: {}", endpoint.fields);
    eprintln!(
        "end of speech → endpoint: {delay} ms; → final text: {} ms",
        (first.ts_unix_us - first.speech_end_unix_us) / 1000
    );
    assert!(
        delay <= 2000 + 3000,
        "endpoint {delay} ms after the speech ended"
    );
    stt.stop(StopRequest {
        dialog_id: dialog.into(),
    })
    .await
    .unwrap();
    host.terminate();
}

/// `endpoint = smart`: a complete request ends after a short pause, well before
/// `vad_silence_ms`; a pause after "of" does not end the question.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_endpointing_ends_complete_requests_early_and_waits_mid_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("requests.wav");
    let mut audio = vec![0.0; 16_000 * 2];
    audio.extend(espeak("What is the capital of"));
    // 1.5 s: the check at smart_silence_ms (600) must be done before "France?" comes back,
    // or it is dropped unjudged; under load in CI the reading ahead of it alone outlasted
    // 0.9 s. Still short of the 2 s silence wait.
    audio.extend(vec![0.0; 16_000 * 3 / 2]);
    audio.extend(espeak("France?"));
    audio.extend(vec![0.0; 16_000 * 4]);
    audio.extend(espeak("Turn on the kitchen lights."));
    audio.extend(vec![0.0; 16_000 * 4]);
    write_wav_16k(&input, &audio);
    let (setup, mut host, port) = stt_host(&input, &[("endpoint", "smart")]);
    let (_stt, mut results) = listen(port, "00000000000000d2").await;
    let mut finals = Vec::new();
    while finals.len() < 2 {
        let r = tokio::time::timeout(Duration::from_secs(30), results.next())
            .await
            .expect("a result within 30 s")
            .unwrap()
            .unwrap();
        if r.is_final {
            finals.push(r);
        }
    }
    let said: Vec<Vec<String>> = finals.iter().map(|r| words(&r.text)).collect();
    eprintln!(
        "finals: {:?}",
        finals.iter().map(|r| &r.text).collect::<Vec<_>>()
    );
    assert!(
        said[0].contains(&"capital".to_owned()) && said[0].contains(&"france".to_owned()),
        "the question in one piece: {said:?}"
    );
    assert!(said[1].contains(&"lights".to_owned()), "{said:?}");
    let log = setup.log_dir().join("app.log");
    wait_app_events(&log, &["stt_final", "stt_partial"], Duration::from_secs(5));
    // app.log is written asynchronously: wait for both finals.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut events = app_events(&log);
    while events.iter().filter(|e| e.event == "stt_final").count() < 2
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
        events = app_events(&log);
    }
    let partials: Vec<_> = events.iter().filter(|e| e.event == "stt_partial").collect();
    for p in &partials {
        eprintln!("partial: {}", p.fields);
    }
    for e in events
        .iter()
        .filter(|e| e.event == "stt_final" || e.event == "stt_endpoint")
    {
        eprintln!("{}: {}", e.event, e.fields);
    }
    for r in &finals {
        let ms = (r.ts_unix_us - r.speech_end_unix_us) / 1000;
        // The bench compares it with the silence wait; here the endpoint's kind is checked.
        eprintln!("end of speech → final text: {ms} ms ({:?})", r.text);
    }
    assert!(
        partials.iter().any(|p| p.field("complete") == "false"),
        "the pause after \"of\" was judged incomplete"
    );
    // Each request ends by smart endpointing. On a busy machine the transcription at the
    // pause, which the verdict waits for, can outlast the 2 s silence wait (CI: 3.9 s for
    // "Turn on the kitchen lights."): then the silence wait ends it first and only the
    // late "complete" verdict shows the check worked. A verdict in time must end it.
    for said in ["france", "lights"] {
        let by_smart = events.iter().any(|e| {
            e.event == "stt_final"
                && e.field("endpoint") == "smart"
                && words(e.field("text")).contains(&said.to_owned())
        });
        let late_verdict = partials.iter().any(|p| {
            p.field("complete") == "true"
                && words(p.field("text")).contains(&said.to_owned())
                && p.field("speech_end_to_partial_ms")
                    .parse::<u64>()
                    .unwrap_or(0)
                    >= 2000
        });
        // Busier still, the transcription at the pause itself (read ahead from the
        // silence's start) ends after the silence wait: no verdict comes at all (the pause
        // was no longer pending when its turn came), and the final reuses that transcript
        // (recognize_ms 0) after 2 s or more (CI: 3.8 s for "Turn on the kitchen lights.").
        let read_too_late = events.iter().any(|e| {
            e.event == "stt_final"
                && e.field("endpoint") == "silence"
                && e.field("recognize_ms") == "0"
                && words(e.field("text")).contains(&said.to_owned())
                && e.field("speech_end_to_text_ms").parse::<u64>().unwrap_or(0) >= 2000
        });
        eprintln!(
            "{said:?}: final by smart endpointing {by_smart}, complete after the silence wait \
             {late_verdict}, read at the pause after the silence wait {read_too_late}"
        );
        assert!(
            by_smart || late_verdict || read_too_late,
            "the request with {said:?} ended by smart endpointing"
        );
    }
    host.terminate();
}

/// `endpoint = turn_model`: the Smart Turn model hears the pauses inside a sentence of
/// real speech (JFK's "ask not — what your country can do for you — ask what you can do
/// for your country") as a turn not yet finished, and the end of it, and of a finished
/// request, as finished: both end well before `vad_silence_ms`. espeak-ng's "What is the
/// capital of", with the falling pitch it gives every fragment, the model takes for a
/// finished turn; its transcript does not read complete, so the question waits for
/// "France?"
/// (The clip starts after "And so my fellow Americans,".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_model_waits_out_pauses_mid_sentence_and_ends_a_finished_request_early() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("turns.wav");
    let jfk = read_wav_16k(&model("audio/jfk.wav"));
    // 5 s before it: the dialog starts listening once the host is ready, which takes a
    // while on a busy machine, and the sentence must be heard from its first word.
    let mut audio = vec![0.0; 16_000 * 5];
    audio.extend(&jfk[16_000 * 24 / 10..]);
    audio.extend(vec![0.0; 16_000 * 4]);
    audio.extend(espeak("What is the capital of"));
    audio.extend(vec![0.0; 16_000 * 9 / 10]);
    audio.extend(espeak("France?"));
    audio.extend(vec![0.0; 16_000 * 4]);
    audio.extend(espeak("Turn on the kitchen lights."));
    audio.extend(vec![0.0; 16_000 * 4]);
    write_wav_16k(&input, &audio);
    let (_setup, mut host, finals, events) = turn_model_finals(&input, "00000000000000d5", 3).await;
    let said: Vec<Vec<String>> = finals.iter().map(|r| words(&r.text)).collect();
    let checks: Vec<_> = events.iter().filter(|e| e.event == "stt_turn").collect();
    let ask = "ask not what your country can do for you, ask what you can do for your country.";
    let wer = word_error_rate(ask, &finals[0].text);
    assert!(
        wer <= 0.15,
        "the sentence in one piece: WER {wer}, {said:?}"
    );
    assert!(
        said[1].contains(&"capital".to_owned()) && said[1].contains(&"france".to_owned()),
        "the question in one piece: {said:?}"
    );
    assert!(said[2].contains(&"lights".to_owned()), "{said:?}");
    assert!(
        checks
            .iter()
            .any(|c| c.field("model_complete") == "false" && c.field("complete") == "false"),
        "a pause inside the sentence was judged unfinished by the model, and went on"
    );
    assert!(
        checks.iter().any(|c| c.field("model_complete") == "true"
            && c.field("text_check") == "incomplete"
            && c.field("complete") == "false"),
        "the pause after \"of\": the model heard a finished turn, the text did not"
    );
    let turn_finals: Vec<_> = events
        .iter()
        .filter(|e| e.event == "stt_final" && e.field("endpoint") == "turn_model")
        .collect();
    // The sentence and the request end at a pause (the model and the text agree); the
    // question may wait out the silence (the model hears "… of France" unfinished). On a
    // busy machine the verdict, which waits for the transcription at the pause, can come
    // after the silence wait has ended the utterance (CI: the 9 s sentence's took 2.5 s,
    // its final came by `silence`): then the verdict on that transcription shows it.
    let partials: Vec<_> = events.iter().filter(|e| e.event == "stt_partial").collect();
    for said in ["country", "lights"] {
        let by_final = turn_finals.iter().any(|f| f.field("text").contains(said));
        let by_verdict = partials.iter().any(|p| {
            p.field("text").contains(said)
                && checks.iter().any(|c| {
                    c.field("complete") == "true"
                        && c.field("speech_end_to_verdict_ms")
                            == p.field("speech_end_to_partial_ms")
                })
        });
        eprintln!(
            "{said:?}: final by the turn model {by_final}, its verdict complete {by_verdict}"
        );
        assert!(
            by_final || by_verdict,
            "the utterance with {said:?} judged finished by the turn model and the text check"
        );
    }
    // The turn model decided well before the 2 s silence wait (~200 ms pause + VAD tail +
    // one check when idle; loose, the machine may be busy). The verdict also waits for the
    // transcription, which the silence wait needs too and which took 1.4 s for the 9 s
    // sentence on a busy CI machine: printed, not bounded.
    for c in checks.iter().filter(|c| c.field("complete") == "true") {
        assert_eq!(c.field("text_check"), "complete", "{}", c.fields);
        let model_ms: i64 = c.field("speech_end_to_model_ms").parse().unwrap();
        eprintln!(
            "turn model {model_ms} ms, verdict {} ms after the speech ended",
            c.field("speech_end_to_verdict_ms")
        );
        assert!(
            model_ms < 1500,
            "the turn model judged {model_ms} ms after the speech ended"
        );
    }
    host.terminate();
}

/// `endpoint = turn_model`: a question that ends on a stranded word ("What's the weather
/// like?") and a request that ends on a particle ("Turn the kitchen light on.") read as
/// likely complete. They end at the late check (`smart_silence_ms`), where before they
/// waited out the 2 s silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turn_model_ends_a_question_on_a_stranded_word_at_the_late_check() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("likely.wav");
    let mut audio = vec![0.0; 16_000 * 5];
    audio.extend(espeak("What's the weather like?"));
    audio.extend(vec![0.0; 16_000 * 4]);
    audio.extend(espeak("Turn the kitchen light on."));
    audio.extend(vec![0.0; 16_000 * 4]);
    write_wav_16k(&input, &audio);
    let (_setup, mut host, finals, events) = turn_model_finals(&input, "00000000000000d6", 2).await;
    let ends: Vec<_> = events
        .iter()
        .filter(|e| e.event == "stt_final" && !e.field("text").is_empty())
        .collect();
    assert_eq!(ends.len(), 2, "two stt_final lines in app.log");
    for (r, e) in finals.iter().zip(&ends) {
        eprintln!("{:?} ended by {}", r.text, e.field("endpoint"));
    }
    let partials: Vec<_> = events.iter().filter(|e| e.event == "stt_partial").collect();
    for (said, e) in ["weather", "kitchen"].into_iter().zip(&ends) {
        assert!(
            e.field("text").to_lowercase().contains(said),
            "{}",
            e.fields
        );
        let likely = partials
            .iter()
            .find(|p| p.field("text").to_lowercase().contains(said) && p.field("reads") == "likely")
            .unwrap_or_else(|| panic!("the text at the pause reads likely complete: {said:?}"));
        // The late check ends it. On a busy machine the verdict itself can come after
        // the 2 s silence wait has ended the utterance: then the silence did.
        let verdict_ms: i64 = likely.field("speech_end_to_partial_ms").parse().unwrap();
        let by = e.field("endpoint");
        assert!(
            by == "smart" || (by == "silence" && verdict_ms >= 1900),
            "{said:?} ended by {by} (verdict {verdict_ms} ms after the speech), not at the late check"
        );
    }
    host.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_and_low_noise_give_no_result() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("noise.wav");
    let mut seed = 7u32;
    let noise: Vec<f32> = (0..16_000 * 12)
        .map(|i| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let n = ((seed >> 8) as f32 / 16_777_216.0 - 0.5) * 0.02;
            // 5 s of digital silence, then 7 s of low noise.
            if i < 16_000 * 5 { 0.0 } else { n }
        })
        .collect();
    write_wav_16k(&input, &noise);
    let (_setup, mut host, port) = stt_host(&input, &[]);
    let mut stt = SttServiceClient::new(channel(port));
    let dialog = "00000000000000d2";
    stt.start(StartRequest {
        dialog_id: dialog.into(),
        barge_in_min_ms: 0,
    })
    .await
    .unwrap();
    let mut results = stt
        .results(DialogRef {
            dialog_id: dialog.into(),
        })
        .await
        .unwrap()
        .into_inner();
    // No words: at most a start of speech and an empty final if the VAD was fooled.
    let words = async {
        while let Some(r) = results.next().await {
            let r = r.unwrap();
            if !r.text.is_empty() {
                return r;
            }
        }
        std::future::pending().await
    };
    let got = tokio::time::timeout(Duration::from_secs(14), words).await;
    assert!(
        got.is_err(),
        "silence or noise became a transcript: {got:?}"
    );
    host.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_errors_are_clear_and_frames_flow() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("quiet.wav");
    write_wav_16k(&input, &vec![0.0; 16_000 * 2]);
    let (_setup, mut host, port) = stt_host(&input, &[]);
    let mut stt = SttServiceClient::new(channel(port));

    let err = stt
        .stop(StopRequest {
            dialog_id: "abc".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err}");
    let err = stt
        .start(StartRequest {
            dialog_id: "bad id!".into(),
            barge_in_min_ms: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    let err = stt
        .start(StartRequest {
            dialog_id: "d1".into(),
            barge_in_min_ms: 5000,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.message().contains("barge_in_min_ms = 5000"), "{err}");
    stt.start(StartRequest {
        dialog_id: "d1".into(),
        barge_in_min_ms: 0,
    })
    .await
    .unwrap();
    let err = stt
        .start(StartRequest {
            dialog_id: "d2".into(),
            barge_in_min_ms: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("\"d1\""), "{err}");
    let err = stt
        .results(DialogRef {
            dialog_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("Start"), "{err}");
    let err = stt
        .stop(StopRequest {
            dialog_id: "d2".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    stt.stop(StopRequest {
        dialog_id: "d1".into(),
    })
    .await
    .unwrap();

    // The echo-cancelled 16 kHz frames, 10 ms each, in sequence, to several subscribers.
    let mut a = stt
        .audio_frames(AudioFramesRequest { frame_ms: 0 })
        .await
        .unwrap()
        .into_inner();
    let mut b = stt
        .audio_frames(AudioFramesRequest { frame_ms: 80 })
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    for _ in 0..20 {
        let f = a.next().await.unwrap().unwrap();
        assert_eq!(
            (f.sample_rate, f.channels, f.pcm_s16le.len()),
            (16_000, 1, 320)
        );
        if let Some(prev) = last {
            assert_eq!(f.seq, prev + 1);
        }
        last = Some(f.seq);
    }
    // In 80 ms blocks: seq moves by 8 frames per message.
    let b1 = b.next().await.unwrap().unwrap();
    let b2 = b.next().await.unwrap().unwrap();
    assert_eq!((b1.pcm_s16le.len(), b2.seq - b1.seq), (2560, 8));
    for bad in [5, 15, 1010] {
        let err = stt
            .audio_frames(AudioFramesRequest { frame_ms: bad })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad}");
        assert!(err.message().contains("multiple of 10"), "{err}");
    }
    host.terminate();
}

#[test]
fn a_missing_capture_device_is_a_clear_error() {
    let mut setup = Setup::new();
    setup.loader("restart_backoff_ms", "100");
    setup.section(
        "stt",
        &[
            ("port", &free_port().to_string()),
            ("start_timeout_ms", "60000"),
            ("input", "device:no-such-microphone"),
            ("whisper_model", model("ggml-tiny.en.bin").to_str().unwrap()),
            (
                "vad_model",
                model("openwakeword/silero_vad.onnx").to_str().unwrap(),
            ),
            (
                "onnxruntime_library",
                model("onnxruntime/libonnxruntime.so").to_str().unwrap(),
            ),
        ],
    );
    let (status, out) = setup.run_to_exit("run", Duration::from_secs(120));
    assert!(!status.success());
    assert!(out.contains("input = wav:"), "names the fix: {out}");
}
