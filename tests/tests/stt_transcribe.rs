//! stt `Transcribe` and `GetInfo` end to end: audio a caller sends (as the Wyoming server
//! does), transcribed by the real Whisper plugin the host loaded, with no microphone
//! (`input = null`) and while a dialog listens to real speech on its input.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use tokio_stream::StreamExt;
use tonic::Code;
use voicehost_proto::common::v1::DialogRef;
use voicehost_proto::stt::v1::stt_service_client::SttServiceClient;
use voicehost_proto::stt::v1::{
    GetInfoRequest, StartRequest, StopRequest, TranscribeRequest, TranscribeResponse,
};
use voicehost_tests::{
    HostProc, Setup, channel, free_port, model, read_wav_16k, stt_keys, word_error_rate,
    write_wav_16k,
};

const JFK: &str = "And so my fellow Americans, ask not what your country can do for you, \
                   ask what you can do for your country.";

type Client = SttServiceClient<tonic::transport::Channel>;

/// A host with the logger and stt (the real Whisper plugin, `ggml-tiny.en`) reading `input`.
fn stt_host(input: &str, extra: &[(&str, &str)]) -> (Setup, HostProc, Client) {
    let mut setup = Setup::new();
    let port = free_port();
    let mut overrides = vec![("input", input)];
    overrides.extend_from_slice(extra);
    setup.section_with("stt", stt_keys(port, Path::new("unused.wav")), &overrides);
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(120));
    (setup, host, SttServiceClient::new(channel(port)))
}

fn jfk() -> Vec<f32> {
    read_wav_16k(&model("audio/jfk.wav"))
}

fn request(samples: &[f32], language: &str) -> TranscribeRequest {
    TranscribeRequest {
        pcm_s16le: voicehost_audio::to_s16le(samples),
        sample_rate: 16_000,
        language: language.into(),
    }
}

/// Transcribes `req`, printing the figures under `label`.
async fn transcribe(stt: &mut Client, req: TranscribeRequest, label: &str) -> TranscribeResponse {
    let started = Instant::now();
    let r = stt.transcribe(req).await.unwrap().into_inner();
    eprintln!(
        "{label}: audio {} ms, recognize_ms {} ms, call {} ms, language {:?}: {:?}",
        r.audio_ms,
        r.recognize_ms,
        started.elapsed().as_millis(),
        r.language,
        r.text
    );
    r
}

/// Asserts `req` is refused with INVALID_ARGUMENT whose message holds each of `names`.
async fn refused(stt: &mut Client, req: TranscribeRequest, names: &[&str]) {
    let status = stt.transcribe(req).await.expect_err("INVALID_ARGUMENT");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    for name in names {
        assert!(status.message().contains(name), "{name:?} in {status:?}");
    }
    eprintln!("refused: {}", status.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_audio_is_transcribed_without_a_microphone_or_a_dialog() {
    let (_setup, mut host, mut stt) = stt_host("null", &[("max_transcribe_ms", "12000")]);

    let info = stt.get_info(GetInfoRequest {}).await.unwrap().into_inner();
    eprintln!("GetInfo: {info:?}");
    assert_eq!(info.engine, "voicehost-plugin-stt");
    assert!(!info.engine_version.is_empty(), "{info:?}");
    assert_eq!(info.model, "ggml-tiny.en");
    assert_eq!(info.languages, ["en"]);

    let audio = jfk();
    let r = transcribe(&mut stt, request(&audio, ""), "jfk.wav").await;
    let wer = word_error_rate(JFK, &r.text);
    assert!(wer <= 0.05, "WER {wer}: heard {:?}", r.text);
    assert_eq!(r.audio_ms as usize, audio.len() / 16);
    assert_eq!(r.language, "en", "the configured language");
    assert!(r.recognize_ms > 0, "{r:?}");
    // A region of a listed language is that language.
    let r = transcribe(&mut stt, request(&audio, "en-US"), "jfk.wav in en-US").await;
    assert!(word_error_rate(JFK, &r.text) <= 0.05, "{r:?}");
    assert_eq!(r.language, "en");
    // Silence holds no speech: empty text, not "Thank you.".
    let r = transcribe(&mut stt, request(&vec![0.0; 16_000], ""), "1 s of silence").await;
    assert_eq!((r.text.as_str(), r.audio_ms), ("", 1000), "{r:?}");

    // Every bad argument is named, with what to send instead.
    let mut wrong_rate = request(&audio, "");
    wrong_rate.sample_rate = 44_100;
    refused(
        &mut stt,
        wrong_rate,
        &["sample_rate = 44100", "resample to 16000 Hz"],
    )
    .await;
    let mut odd = request(&audio[..1600], "");
    odd.pcm_s16le.pop();
    refused(&mut stt, odd, &["3199 bytes", "odd"]).await;
    refused(&mut stt, request(&[], ""), &["pcm_s16le is empty"]).await;
    refused(
        &mut stt,
        request(&vec![0.1; 16_000 * 25 / 2], ""),
        &["12500 ms", "max_transcribe_ms = 12000"],
    )
    .await;
    refused(
        &mut stt,
        request(&audio, "de"),
        &["language \"de\"", "ggml-tiny.en", "\"en\""],
    )
    .await;
    // Still serving after all that.
    let r = transcribe(&mut stt, request(&audio[..16_000 * 3], ""), "first 3 s").await;
    assert!(r.text.to_lowercase().contains("fellow"), "{r:?}");
    host.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_audio_takes_its_turn_while_a_dialog_listens_to_speech() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("jfk-padded.wav");
    let mut local = vec![0.0; 16_000 * 2];
    local.extend(jfk());
    local.extend(vec![0.0; 16_000 * 5]);
    write_wav_16k(&input, &local);
    let (_setup, mut host, mut stt) = stt_host(&format!("wav:{}", input.display()), &[]);
    let dialog = "00000000000000e1";
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
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(30), results.next())
            .await
            .expect("a result within 30 s")
            .unwrap()
            .unwrap()
    };
    // The user talks on the local input; meanwhile a caller sends its audio.
    let started = next().await;
    assert!(started.speech_started, "{started:?}");
    let caller = transcribe(&mut stt, request(&jfk(), ""), "jfk.wav, dialog listening").await;
    let wer = word_error_rate(JFK, &caller.text);
    assert!(wer <= 0.05, "WER {wer}: heard {:?}", caller.text);
    // The dialog's own utterance is untouched by it: its one final, right.
    let local = next().await;
    assert!(local.is_final, "{local:?}");
    let wer = word_error_rate(JFK, &local.text);
    assert!(wer <= 0.05, "WER {wer}: the dialog heard {:?}", local.text);
    eprintln!(
        "the dialog's final: end of speech → text {} ms",
        (local.ts_unix_us - local.speech_end_unix_us) / 1000
    );
    let more = tokio::time::timeout(Duration::from_secs(2), results.next()).await;
    assert!(more.is_err(), "a second result: {more:?}");
    // Once the dialog stopped, it still transcribes.
    stt.stop(StopRequest {
        dialog_id: dialog.into(),
    })
    .await
    .unwrap();
    let after = transcribe(&mut stt, request(&jfk(), ""), "jfk.wav, dialog stopped").await;
    assert!(word_error_rate(JFK, &after.text) <= 0.05, "{after:?}");
    host.terminate();
}
