//! Kokoro's keys of the `[tts]` section (the SDK reads the output and queue keys).

use std::path::PathBuf;

use voicehost_tts_sdk::voicehost_plugin_runtime::keys::{Key, Kind};
use voicehost_tts_sdk::{PluginConfig, PluginError};

/// Kokoro's keys (beside the SDK's).
pub const KEYS: &[Key] = &[
    Key::new(
        "model",
        Kind::ModelFile,
        "models/kokoro/kokoro-v1.0.int8.onnx",
        "Kokoro-82M ONNX model",
    ),
    Key::new(
        "vocab",
        Kind::ModelFile,
        "models/kokoro/vocab.json",
        "Kokoro's phoneme vocabulary",
    ),
    Key::new(
        "voices_dir",
        Kind::Path,
        "models/kokoro/voices",
        "Directory of the voices (NAME.bin)",
    ),
    Key::new(
        "voice",
        Kind::Text { max_len: 64 },
        "af_heart",
        "Default voice (a .bin in voices_dir)",
    ),
    Key::new(
        "onnxruntime_library",
        Kind::ModelFile,
        "models/onnxruntime/libonnxruntime.so",
        "ONNX Runtime library",
    ),
    Key::new(
        "speed",
        Kind::Float { min: 0.5, max: 2.0 },
        "1.0",
        "Speaking rate",
    ),
    Key::new(
        "device",
        Kind::Choice(&["cpu", "cuda"]),
        "cpu",
        "Where inference runs",
    ),
    Key::new(
        "threads",
        Kind::Int { min: 1, max: 64 },
        "2",
        "CPU threads of inference",
    ),
];

/// Where inference runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    Cuda,
}

impl std::str::FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda),
            _ => Err("expected cpu or cuda".to_owned()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub model: PathBuf,
    pub vocab: PathBuf,
    pub voices_dir: PathBuf,
    pub voice: String,
    pub onnxruntime: PathBuf,
    pub speed: f32,
    pub device: Device,
    pub threads: usize,
}

impl Settings {
    pub fn from_config(c: &PluginConfig) -> Result<Self, PluginError> {
        let s = Settings {
            model: c.value::<PathBuf>("model")?,
            vocab: c.value::<PathBuf>("vocab")?,
            voices_dir: c.value::<PathBuf>("voices_dir")?,
            voice: c.value("voice")?,
            onnxruntime: c.value::<PathBuf>("onnxruntime_library")?,
            speed: c.value("speed")?,
            device: c.value::<Device>("device")?,
            threads: c.value("threads")?,
        };
        PluginConfig::check(
            is_voice_name(&s.voice),
            format!(
                "[tts] voice = {:?} is not a voice name (letters, digits, _), e.g. af_heart",
                s.voice
            ),
        )?;
        Ok(s)
    }
}

/// A Kokoro voice name: the stem of a `.bin` file in `voices_dir`.
pub fn is_voice_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
