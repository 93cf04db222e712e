//! The fetched models load in the runtimes the plugins use: the converted Whisper ggml in
//! whisper-rs (transcribing real speech exactly), Kokoro and openWakeWord in ONNX Runtime
//! (load-dynamic, the library from `models/`), and the GGUF header.
//!
//! Needs a fetched `models/` (`voicehost models fetch`; the README's test command does it).

#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use ort::value::{TensorElementType, ValueType};
use voicehost_tests::{WHISPER_THREADS, model, word_error_rate};

const JFK: &str = "And so my fellow Americans, ask not what your country can do for you, \
                   ask what you can do for your country.";

/// 16 kHz mono s16 WAV → f32 samples.
fn read_wav(path: &std::path::Path) -> Vec<f32> {
    let mut reader = hound::WavReader::open(path).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.sample_rate, spec.channels), (16_000, 1), "{path:?}");
    reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect()
}

fn transcribe(ctx: &whisper_rs::WhisperContext, samples: &[f32]) -> String {
    let mut state = ctx.create_state().unwrap();
    let mut params =
        whisper_rs::FullParams::new(whisper_rs::SamplingStrategy::Greedy { best_of: 1 });
    params.set_language(Some("en"));
    params.set_n_threads(WHISPER_THREADS as i32);
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_special(false);
    params.set_print_timestamps(false);
    state.full(params, samples).unwrap();
    state
        .as_iter()
        .map(|segment| segment.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn converted_whisper_tiny_en_transcribes_real_speech_exactly() {
    transcribes_real_speech_exactly("ggml-tiny.en.bin");
}

#[test]
fn whisper_tiny_en_q8_0_transcribes_real_speech_exactly() {
    transcribes_real_speech_exactly("ggml-tiny.en-q8_0.bin");
}

/// The converted Whisper model `file` (in models/) loads in whisper.cpp and hears jfk.wav
/// and the packaged English clips without a word wrong.
fn transcribes_real_speech_exactly(file: &str) {
    // whisper.cpp logs to stderr by default; with no log backend this discards them.
    whisper_rs::install_logging_hooks();
    let ctx = whisper_rs::WhisperContext::new_with_params(
        model(file).to_str().unwrap(),
        whisper_rs::WhisperContextParameters::default(),
    )
    .unwrap_or_else(|e| panic!("whisper.cpp loads the converted {file}: {e}"));

    let text = transcribe(&ctx, &read_wav(&model("audio/jfk.wav")));
    assert_eq!(
        word_error_rate(JFK, &text),
        0.0,
        "{file}: jfk.wav heard as {text:?}"
    );

    for clip in ["hello_world", "quick_brown_fox"] {
        let reference = std::fs::read_to_string(model(&format!("audio/en/{clip}.txt"))).unwrap();
        let text = transcribe(&ctx, &read_wav(&model(&format!("audio/en/{clip}.wav"))));
        assert_eq!(
            word_error_rate(&reference, &text),
            0.0,
            "{file}: {clip}.wav: expected {reference:?}, heard {text:?}"
        );
    }
}

/// ONNX Runtime from `models/onnxruntime`, once per process (ort allows one environment).
fn environment() -> &'static Environment {
    static ENV: OnceLock<Environment> = OnceLock::new();
    ENV.get_or_init(|| {
        ort::init_from(model("onnxruntime/libonnxruntime.so"))
            .expect("libonnxruntime.so from models/ loads")
            .with_name("voicehost-tests")
            .build()
            .unwrap()
    })
}

fn session(relative: &str) -> Session {
    Session::builder(environment())
        .unwrap()
        .commit_from_file(model(relative))
        .unwrap_or_else(|e| panic!("{relative} does not load: {e}"))
}

/// (name, element type, dims with -1 for dynamic) of every input or output.
fn signature(outlets: &[ort::value::Outlet]) -> Vec<(String, TensorElementType, Vec<i64>)> {
    outlets
        .iter()
        .map(|o| match o.dtype() {
            ValueType::Tensor { ty, shape, .. } => (o.name().to_owned(), *ty, shape.to_vec()),
            other => panic!("{} is not a tensor: {other}", o.name()),
        })
        .collect()
}

#[test]
fn kokoro_has_the_expected_inputs_and_outputs() {
    let s = session("kokoro/kokoro-v1.0.int8.onnx");
    let inputs = signature(s.inputs());
    assert_eq!(
        inputs,
        vec![
            ("tokens".to_owned(), TensorElementType::Int64, vec![1, -1]),
            ("style".to_owned(), TensorElementType::Float32, vec![1, 256]),
            ("speed".to_owned(), TensorElementType::Float32, vec![1]),
        ]
    );
    let outputs = signature(s.outputs());
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert_eq!(outputs[0].0, "audio");
    assert_eq!(outputs[0].1, TensorElementType::Float32);

    // The default voice holds one 256-wide style row per possible token count.
    let voice = std::fs::read(model("kokoro/voices/af_heart.bin")).unwrap();
    assert_eq!(voice.len(), 510 * 256 * 4);
    let vocab = std::fs::read_to_string(model("kokoro/vocab.json")).unwrap();
    assert!(vocab.contains("\"ɹ\""), "vocab.json has the IPA symbols");
}

#[test]
fn openwakeword_models_have_the_expected_shapes() {
    let mel = signature(session("openwakeword/melspectrogram.onnx").inputs());
    assert_eq!(mel.len(), 1);
    assert_eq!((mel[0].1, mel[0].2.len()), (TensorElementType::Float32, 2));

    let emb = signature(session("openwakeword/embedding_model.onnx").inputs());
    assert_eq!(emb.len(), 1);
    assert_eq!(emb[0].1, TensorElementType::Float32);
    assert_eq!(emb[0].2[1..], [76, 32, 1]);
    let emb_out = signature(session("openwakeword/embedding_model.onnx").outputs());
    assert_eq!(emb_out[0].2[1..], [1, 1, 96]);

    for wake in ["alexa_v0.1.onnx", "hey_jarvis_v0.1.onnx"] {
        let s = session(&format!("openwakeword/{wake}"));
        let input = signature(s.inputs());
        assert_eq!(input[0].2[1..], [16, 96], "{wake}");
        let output = signature(s.outputs());
        assert_eq!(output[0].2[1..], [1], "{wake}");
    }

    let vad = signature(session("openwakeword/silero_vad.onnx").inputs());
    let names: Vec<&str> = vad.iter().map(|(n, ..)| n.as_str()).collect();
    assert!(
        names.contains(&"input") && names.contains(&"sr"),
        "{names:?}"
    );
}

#[test]
fn smollm2_gguf_header_is_a_chat_model() {
    let file = std::fs::File::open(model("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    let header = voicehost_models::gguf::read_header(file).unwrap();
    assert_eq!(header.version, 3);
    assert_eq!(header.architecture(), Some("llama"));
    assert_eq!(header.context_length(), Some(8192));
    assert!(header.tensor_count > 100, "{}", header.tensor_count);
    let template = header.chat_template().expect("a chat template");
    assert!(template.contains("<|im_start|>"), "ChatML: {template}");
}
