//! Piper's keys of the `[tts]` section (the SDK reads the output and queue keys).

use std::path::{Path, PathBuf};

use voicehost_tts_sdk::voicehost_plugin_runtime::keys::{Key, Kind};
use voicehost_tts_sdk::{PluginConfig, PluginError};

/// The model a default config loads.
pub const DEFAULT_MODEL: &str = "models/piper/en_US-joe-medium.onnx";

/// Piper's keys (beside the SDK's).
pub const KEYS: &[Key] = &[
    Key::new(
        "model",
        Kind::ModelFile,
        DEFAULT_MODEL,
        "Piper voice model (VITS ONNX)",
    ),
    Key::new(
        "model_config",
        Kind::ModelFile,
        "models/piper/en_US-joe-medium.onnx.json",
        "The voice's Piper config (sample rate, phoneme ids, scales); unset: the model's path + .json",
    ),
    Key::new(
        "voice",
        Kind::Text { max_len: 64 },
        "en_US-joe-medium",
        "The voice's name: the model's file name without .onnx (one voice per model)",
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
        "Speaking rate (the voice's length_scale is divided by it)",
    ),
    Key::new(
        "threads",
        Kind::Int { min: 1, max: 64 },
        "1",
        "CPU threads of inference",
    ),
];

#[derive(Debug, Clone)]
pub struct Settings {
    pub model: PathBuf,
    pub model_config: PathBuf,
    pub voice: String,
    pub onnxruntime: PathBuf,
    pub speed: f32,
    pub threads: usize,
}

impl Settings {
    pub fn from_config(c: &PluginConfig) -> Result<Self, PluginError> {
        let model = c.value::<PathBuf>("model")?;
        // Piper's convention: the config sits beside the model as `<model>.json`.
        let model_config = match c.get("model_config") {
            Some(_) => c.value::<PathBuf>("model_config")?,
            None => PathBuf::from(format!("{}.json", model.display())),
        };
        let name = voice_name(&model);
        let voice = match c.get("voice") {
            Some(_) => c.value::<String>("voice")?,
            None => name.clone(),
        };
        PluginConfig::check(
            model.extension().is_some_and(|e| e == "onnx"),
            format!(
                "[{}] model = {:?}: expected a Piper voice .onnx file, e.g. {DEFAULT_MODEL}",
                c.section(),
                model.display().to_string()
            ),
        )?;
        PluginConfig::check(
            voice == name,
            format!(
                "[{}] voice = {voice:?}: a Piper model has one voice, named after its file; \
                 the model is {}, so use voice = {name} (or leave voice unset)",
                c.section(),
                model.display()
            ),
        )?;
        Ok(Settings {
            model,
            model_config,
            voice,
            onnxruntime: c.value::<PathBuf>("onnxruntime_library")?,
            speed: c.value("speed")?,
            threads: c.value("threads")?,
        })
    }
}

/// A Piper voice's name: its model's file name without `.onnx` (`en_US-joe-medium`).
pub fn voice_name(model: &Path) -> String {
    model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(entries: &[(&str, &str)]) -> Result<Settings, PluginError> {
        let c = PluginConfig::new(
            "tts",
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .with_keys(KEYS.to_vec());
        // As the runtime does before the plugin starts: values against their keys' kinds.
        c.validate()?;
        Settings::from_config(&c)
    }

    #[test]
    fn defaults_follow_the_model() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.voice, "en_US-joe-medium");
        assert_eq!(
            s.model_config,
            PathBuf::from("models/piper/en_US-joe-medium.onnx.json")
        );
        assert_eq!((s.speed, s.threads), (1.0, 1));
        let other = settings(&[("model", "/v/en_GB-alan-low.onnx")]).unwrap();
        assert_eq!(other.voice, "en_GB-alan-low");
        assert_eq!(
            other.model_config,
            PathBuf::from("/v/en_GB-alan-low.onnx.json")
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("speed", "3")], "speed"),
            (&[("speed", "fast")], "speed"),
            (&[("threads", "0")], "threads"),
            (&[("voice", "af_heart")], "[tts] voice = \"af_heart\""),
            (
                &[("model", "/v/kokoro.bin")],
                "[tts] model = \"/v/kokoro.bin\"",
            ),
        ];
        for (entries, needle) in cases {
            let err = settings(entries).unwrap_err().to_string();
            assert!(err.contains(needle), "{entries:?}: {err}");
        }
    }
}
