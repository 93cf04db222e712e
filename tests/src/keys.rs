//! Config keys for the real tts, stt and kwd plugins with the fetched models, as the
//! `keys` of [`Setup::section_with`](crate::Setup::section_with).

use std::path::Path;

use crate::{free_port, model};

/// `[tts]` keys for the real tts plugin with the fetched models, writing to `out` (a WAV).
pub fn tts_keys(port: u16, out: &Path) -> Vec<(String, String)> {
    vec![
        ("port".into(), port.to_string()),
        ("start_timeout_ms".into(), "60000".into()),
        (
            "model".into(),
            model("kokoro/kokoro-v1.0.int8.onnx").display().to_string(),
        ),
        (
            "vocab".into(),
            model("kokoro/vocab.json").display().to_string(),
        ),
        (
            "voices_dir".into(),
            model("kokoro/voices/af_heart.bin")
                .parent()
                .unwrap()
                .display()
                .to_string(),
        ),
        (
            "onnxruntime_library".into(),
            model("onnxruntime/libonnxruntime.so").display().to_string(),
        ),
        ("output".into(), format!("wav:{}", out.display())),
        ("cache_phrases".into(), "Yes?".into()),
    ]
}

/// `[tts]` keys for the Piper tts plugin with the fetched voice (`en_US-joe-medium`),
/// writing to `out` (a WAV).
pub fn piper_keys(port: u16, out: &Path) -> Vec<(String, String)> {
    vec![
        ("library".into(), "libvoicehost_plugin_piper.so".into()),
        ("port".into(), port.to_string()),
        ("start_timeout_ms".into(), "60000".into()),
        (
            "model".into(),
            model("piper/en_US-joe-medium.onnx").display().to_string(),
        ),
        (
            "onnxruntime_library".into(),
            model("onnxruntime/libonnxruntime.so").display().to_string(),
        ),
        ("output".into(), format!("wav:{}", out.display())),
        ("cache_phrases".into(), "Yes?".into()),
    ]
}

/// `[kwd]` keys for the shipped default engine, microWakeWord with its alexa model at the
/// shipped threshold and window.
pub fn kwd_micro_keys(port: u16) -> Vec<(String, String)> {
    let mut keys = kwd_keys(port);
    keys.retain(|(k, _)| k != "wake_models");
    keys.extend([
        ("engine".into(), "microwakeword".into()),
        ("model_thresholds".into(), "alexa:0.8".into()),
        ("micro_window".into(), "1".into()),
        (
            "wake_models".into(),
            model("microwakeword/alexa.tflite").display().to_string(),
        ),
        (
            "tflite_library".into(),
            model("microwakeword/libtensorflowlite_c.so")
                .display()
                .to_string(),
        ),
    ]);
    keys
}

/// `[stt]` keys for the real stt plugin with the fetched models, reading `input` (a WAV
/// file, in real time). No tts runs beside it: AEC3 works without a far end.
pub fn stt_keys(port: u16, input: &Path) -> Vec<(String, String)> {
    vec![
        ("port".into(), port.to_string()),
        ("start_timeout_ms".into(), "60000".into()),
        ("input".into(), format!("wav:{}", input.display())),
        (
            "whisper_model".into(),
            model("ggml-tiny.en.bin").display().to_string(),
        ),
        (
            "vad_model".into(),
            model("openwakeword/silero_vad.onnx").display().to_string(),
        ),
        (
            "onnxruntime_library".into(),
            model("onnxruntime/libonnxruntime.so").display().to_string(),
        ),
        (
            "render_reference".into(),
            format!("127.0.0.1:{}", free_port()),
        ),
    ]
}

/// `[kwd]` keys for the real kwd plugin with the fetched models (alexa).
pub fn kwd_keys(port: u16) -> Vec<(String, String)> {
    let oww = |name: &str| {
        model(&format!("openwakeword/{name}.onnx"))
            .display()
            .to_string()
    };
    vec![
        ("port".into(), port.to_string()),
        ("start_timeout_ms".into(), "30000".into()),
        ("wake_models".into(), oww("alexa_v0.1")),
        ("melspectrogram_model".into(), oww("melspectrogram")),
        ("embedding_model".into(), oww("embedding_model")),
        (
            "onnxruntime_library".into(),
            model("onnxruntime/libonnxruntime.so").display().to_string(),
        ),
    ]
}
