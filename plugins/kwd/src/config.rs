//! The `[kwd]` section.

use std::path::PathBuf;

use voicehost_plugin_runtime::{PluginConfig, PluginError};

use crate::engine::{ModelPaths, model_name};

#[derive(Debug, Clone)]
pub struct Settings {
    pub models: ModelPaths,
    /// Threshold per wake model, in `models.wake` order.
    pub thresholds: Vec<f32>,
    pub cooldown_ms: u64,
    /// `host:port` of the stt service whose AudioFrames kwd listens to.
    pub audio_source: String,
}

impl Settings {
    pub fn from_config(c: &PluginConfig) -> Result<Self, PluginError> {
        let threshold: f32 = c.parse_or("confidence_threshold", 0.6)?;
        in_unit(threshold, "confidence_threshold")?;
        let cooldown_ms: i64 = c.parse_or("cooldown_ms", 1000)?;
        PluginConfig::check(
            (0..=3_600_000).contains(&cooldown_ms),
            format!(
                "[kwd] cooldown_ms = {cooldown_ms} is out of range; use 0 to 3600000 (1000 is one second)"
            ),
        )?;
        let wake: String = c.parse_or(
            "wake_models",
            "models/openwakeword/alexa_v0.1.onnx".to_owned(),
        )?;
        let wake: Vec<PathBuf> = wake
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        PluginConfig::check(
            !wake.is_empty(),
            "[kwd] wake_models is empty; name at least one model, e.g. models/openwakeword/alexa_v0.1.onnx",
        )?;
        let names: Vec<String> = wake.iter().map(|p| model_name(p)).collect();
        let mut thresholds = vec![threshold; wake.len()];
        let overrides: String = c.parse_or("model_thresholds", String::new())?;
        for entry in overrides
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (name, value) = entry.split_once(':').ok_or_else(|| {
                PluginError::config(format!(
                    "[kwd] model_thresholds entry {entry:?} is not name:threshold, e.g. hey_jarvis_v0.1:0.5"
                ))
            })?;
            let (name, value) = (name.trim(), value.trim());
            let index = names.iter().position(|n| n == name).ok_or_else(|| {
                PluginError::config(format!(
                    "[kwd] model_thresholds names {name:?}, which is not in wake_models ({})",
                    names.join(", ")
                ))
            })?;
            let value: f32 = value.parse().map_err(|_| {
                PluginError::config(format!(
                    "[kwd] model_thresholds: {value:?} for {name} is not a number; use 0 to 1"
                ))
            })?;
            in_unit(value, &format!("model_thresholds {name}"))?;
            thresholds[index] = value;
        }
        let audio_source: String = c.parse_or("audio_source", "127.0.0.1:5004".to_owned())?;
        PluginConfig::check(
            audio_source.parse::<std::net::SocketAddr>().is_ok(),
            format!("[kwd] audio_source = {audio_source:?} is not host:port (e.g. 127.0.0.1:5004)"),
        )?;
        Ok(Settings {
            models: ModelPaths {
                onnxruntime: c.parse_or(
                    "onnxruntime_library",
                    PathBuf::from("models/onnxruntime/libonnxruntime.so"),
                )?,
                melspectrogram: c.parse_or(
                    "melspectrogram_model",
                    PathBuf::from("models/openwakeword/melspectrogram.onnx"),
                )?,
                embedding: c.parse_or(
                    "embedding_model",
                    PathBuf::from("models/openwakeword/embedding_model.onnx"),
                )?,
                wake,
            },
            thresholds,
            cooldown_ms: cooldown_ms as u64,
            audio_source,
        })
    }
}

fn in_unit(value: f32, what: &str) -> Result<(), PluginError> {
    PluginConfig::check(
        (0.0..=1.0).contains(&value),
        format!("[kwd] {what} = {value} is out of range; use a score from 0 to 1 (default 0.6)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(entries: &[(&str, &str)]) -> Result<Settings, String> {
        let c = PluginConfig::new(
            "kwd",
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Settings::from_config(&c).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_listen_to_stt_with_alexa() {
        let s = settings(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.thresholds, [0.6]);
        assert_eq!(s.cooldown_ms, 1000);
        assert_eq!(s.audio_source, "127.0.0.1:5004");
        assert!(s.models.wake[0].ends_with("alexa_v0.1.onnx"));
    }

    #[test]
    fn each_model_may_have_its_own_threshold() {
        let s = settings(&[
            ("wake_models", "m/alexa_v0.1.onnx, m/hey_jarvis_v0.1.onnx"),
            ("confidence_threshold", "0.7"),
            ("model_thresholds", "hey_jarvis_v0.1:0.4"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.thresholds, [0.7, 0.4]);
    }

    #[test]
    fn bad_values_are_named_with_the_fix() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("confidence_threshold", "1.5")],
                "confidence_threshold = 1.5 is out of range",
            ),
            (
                &[("confidence_threshold", "-0.1")],
                "use a score from 0 to 1",
            ),
            (&[("cooldown_ms", "-1")], "cooldown_ms = -1 is out of range"),
            (&[("wake_models", " , ")], "wake_models is empty"),
            (
                &[("model_thresholds", "alexa_v0.1=0.5")],
                "is not name:threshold",
            ),
            (
                &[("model_thresholds", "jarvis:0.5")],
                "\"jarvis\", which is not in wake_models",
            ),
            (
                &[("model_thresholds", "alexa_v0.1:2")],
                "model_thresholds alexa_v0.1 = 2",
            ),
            (
                &[("audio_source", "stt")],
                "audio_source = \"stt\" is not host:port",
            ),
        ];
        for (entries, expected) in cases {
            let err = settings(entries).err().unwrap_or_default();
            assert!(err.contains(expected), "{entries:?}: {err}");
        }
    }
}
