//! The echo test: the microphone hears the user and, 150 ms late and attenuated, the
//! assistant's own voice (Kokoro through the tts engine). With the played signal as far
//! end, the stt plugin's AEC3 must leave the user's words and remove the assistant's.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use voicehost_plugin_stt::{EchoCanceller, FRAME, Recognizer};
use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;
use voicehost_proto::tts::v1::{SpeakRequest, Wait};
use voicehost_tests::{Setup, WHISPER_THREADS, channel, free_port, model, tts_keys};

const ECHO: &str = "The weather today is sunny and warm, with a light breeze from the west. \
                    Tomorrow brings heavy rain in the afternoon.";
const ECHO_WORDS: [&str; 5] = ["weather", "sunny", "breeze", "tomorrow", "rain"];

/// What the assistant says, at 16 kHz: spoken by the real tts plugin into a WAV file.
fn assistant_voice() -> Vec<f32> {
    let mut setup = Setup::new();
    let port = free_port();
    let out = setup.dir.path().join("assistant.wav");
    setup.section_with("tts", tts_keys(port, &out), &[("output_pacing", "fast")]);
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(120));
    let before = hound::WavReader::open(&out)
        .map(|r| r.len() as usize)
        .unwrap_or(0);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        TtsServiceClient::new(channel(port))
            .speak(SpeakRequest {
                text: ECHO.into(),
                dialog_id: String::new(),
                voice: String::new(),
                wait: Wait::Finished as i32,
            })
            .await
            .unwrap();
    });
    host.terminate();
    let mut r = hound::WavReader::open(&out).unwrap();
    let audio: Vec<f32> = r
        .samples::<i16>()
        .skip(before)
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    let mut resampler = voicehost_audio::Resampler::new(24_000, 16_000).unwrap();
    let mut out = resampler.process(&audio);
    out.extend(resampler.flush());
    out
}

fn jfk() -> Vec<f32> {
    let mut r = hound::WavReader::open(model("audio/jfk.wav")).unwrap();
    r.samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect()
}

fn heard(recognizer: &Recognizer, audio: &[f32]) -> String {
    recognizer
        .transcribe(audio)
        .unwrap()
        .map(|t| t.text.to_lowercase())
        .unwrap_or_default()
}

#[test]
fn aec3_removes_the_assistants_voice_and_keeps_the_users() {
    let far = assistant_voice();
    let near = jfk();
    let delay = 16_000 * 150 / 1000;
    let len = near.len().max(far.len() + delay) + 16_000;
    let echo_at = |i: usize| {
        if i >= delay {
            far.get(i - delay).copied().unwrap_or(0.0) * 0.5
        } else {
            0.0
        }
    };
    let mic: Vec<f32> = (0..len)
        .map(|i| near.get(i).copied().unwrap_or(0.0) + echo_at(i))
        .collect();

    let aec = EchoCanceller::new().unwrap();
    let mut cleaned = Vec::with_capacity(len);
    for start in (0..len - FRAME).step_by(FRAME) {
        let render: Vec<f32> = (start..start + FRAME)
            .map(|i| far.get(i).copied().unwrap_or(0.0))
            .collect();
        aec.render(&render);
        let mut frame = mic[start..start + FRAME].to_vec();
        aec.capture(&mut frame);
        cleaned.extend(frame);
    }
    let stats = aec.stats();

    // The suppression figure: the echo alone through a fresh canceller, measured over its
    // second half (after AEC3 has converged).
    let solo = EchoCanceller::new().unwrap();
    let (mut echo_in, mut echo_out) = (0.0f64, 0.0f64);
    let end = far.len() + delay;
    for start in (0..end - FRAME).step_by(FRAME) {
        let render: Vec<f32> = (start..start + FRAME)
            .map(|i| far.get(i).copied().unwrap_or(0.0))
            .collect();
        solo.render(&render);
        let mut frame: Vec<f32> = (start..start + FRAME).map(echo_at).collect();
        let before: f64 = frame.iter().map(|s| f64::from(s * s)).sum();
        solo.capture(&mut frame);
        if start > end / 2 {
            echo_in += before;
            echo_out += frame.iter().map(|s| f64::from(s * s)).sum::<f64>();
        }
    }
    let erle = 10.0 * (echo_in / echo_out.max(1e-12)).log10();
    eprintln!(
        "AEC3: echo energy reduced by {erle:.1} dB (measured); AEC3's own ERLE statistic {:?}, delay estimate {:?} ms",
        solo.stats().erle_db,
        stats.delay_ms
    );
    assert!(
        erle > 10.0,
        "AEC3 removed only {erle:.1} dB of a plain echo"
    );

    let recognizer =
        Recognizer::load(&model("ggml-tiny.en.bin"), WHISPER_THREADS, "en", 0.6).unwrap();
    let raw = heard(&recognizer, &mic);
    let clean = heard(&recognizer, &cleaned);
    eprintln!("without AEC: {raw:?}\nwith AEC3:   {clean:?}");
    assert!(
        ECHO_WORDS.iter().any(|w| raw.contains(w)),
        "the echo must be audible without AEC for this test to mean anything: {raw:?}"
    );
    assert!(
        clean.contains("country"),
        "the user's words survive: {clean:?}"
    );
    for w in ECHO_WORDS {
        assert!(
            !clean.contains(w),
            "the assistant's word {w:?} was not removed: {clean:?}"
        );
    }
}
