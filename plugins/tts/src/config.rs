//! Kokoro's keys of the `[tts]` section (the SDK reads the output and queue keys).

use std::path::PathBuf;

use voicehost_tts_sdk::{PluginConfig, PluginError};

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
        let path = |key: &str, default: &str| -> Result<PathBuf, PluginError> {
            c.parse_or(key, PathBuf::from(default))
        };
        let s = Settings {
            model: path("model", "models/kokoro/kokoro-v1.0.int8.onnx")?,
            vocab: path("vocab", "models/kokoro/vocab.json")?,
            voices_dir: path("voices_dir", "models/kokoro/voices")?,
            voice: c.parse_or("voice", "af_heart".to_owned())?,
            onnxruntime: path(
                "onnxruntime_library",
                "models/onnxruntime/libonnxruntime.so",
            )?,
            speed: c.parse_or("speed", 1.0)?,
            device: c.parse_or("device", Device::Cpu)?,
            threads: c.parse_or("threads", 2)?,
        };
        PluginConfig::check(
            (0.5..=2.0).contains(&s.speed),
            format!("[tts] speed = {} is out of range; use 0.5 to 2.0", s.speed),
        )?;
        PluginConfig::check(
            (1..=64).contains(&s.threads),
            format!("[tts] threads = {} is out of range; use 1 to 64", s.threads),
        )?;
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
