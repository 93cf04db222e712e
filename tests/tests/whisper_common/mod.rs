//! Whisper tiny for the end-to-end tests that check what the assistant said (the stt
//! plugin's own `Recognizer`; shared by the test binaries with `mod whisper_common;`).

use voicehost_plugin_stt::Recognizer;
use voicehost_tests::{WHISPER_THREADS, model};

/// 16 kHz `samples` transcribed by Whisper tiny.
pub fn transcribe(samples: &[f32]) -> String {
    let recognizer =
        Recognizer::load(&model("ggml-tiny.en.bin"), WHISPER_THREADS, "en", 0.9).unwrap();
    recognizer
        .transcribe(samples)
        .unwrap()
        .map(|t| t.text)
        .unwrap_or_default()
}
