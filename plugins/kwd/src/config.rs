//! The `[kwd]` section.

use std::path::PathBuf;

use voicehost_plugin_runtime::keys::{Key, Kind, Problem};
use voicehost_plugin_runtime::{PluginConfig, PluginError};

use crate::engine::{EngineKind, ModelPaths, model_name};
use crate::micro::engine::{MAX_WINDOW, Manifest};

#[derive(Debug, Clone)]
pub struct Settings {
    pub models: ModelPaths,
    /// Threshold per wake model, in `models.wake` order.
    pub thresholds: Vec<f32>,
    pub cooldown_ms: u64,
    /// `host:port` of the stt service whose AudioFrames kwd listens to.
    pub audio_source: String,
    /// Detect calls served at once, each with an engine of its own.
    pub max_detect_streams: usize,
}

/// kwd's keys.
pub const KEYS: &[Key] = &[
    Key::new(
        "engine",
        Kind::Choice(&["openwakeword", "microwakeword"]),
        "openwakeword",
        "Wake-word engine: openwakeword (ONNX models) or microwakeword (TensorFlow Lite models)",
    ),
    Key::new(
        "wake_models",
        Kind::ModelFiles,
        "models/openwakeword/alexa_v0.1.onnx",
        "Wake models of the engine (.onnx for openwakeword, .tflite for microwakeword), \
         comma-separated; each fires on its own",
    ),
    Key::new(
        "confidence_threshold",
        Kind::Float { min: 0.0, max: 1.0 },
        "0.6",
        "Score above which a wake model fires (microwakeword: for a model without the \
         probability_cutoff of its manifest)",
    ),
    Key::new(
        "model_thresholds",
        Kind::NamedScores,
        "",
        "Per-model thresholds, name:score, overriding confidence_threshold (and a \
         microWakeWord manifest's cutoff)",
    ),
    Key::new(
        "micro_window",
        Kind::Int {
            min: 0,
            max: MAX_WINDOW as i64,
        },
        "0",
        "microwakeword: outputs (30 ms apart) averaged into a model's score; 0: each \
         model's manifest (sliding_window_size)",
    ),
    Key::new(
        "cooldown_ms",
        Kind::Int {
            min: 0,
            max: 3_600_000,
        },
        "1000",
        "After a detection, the same model stays quiet this long",
    ),
    Key::new(
        "audio_source",
        Kind::SocketAddr,
        "127.0.0.1:5004",
        "host:port of stt, whose audio kwd hears (the host fills in the [stt] port)",
    ),
    Key::new(
        "max_detect_streams",
        Kind::Int { min: 1, max: 32 },
        "4",
        "Detect calls (wake words in audio a caller streams, e.g. the Wyoming server) served at once",
    ),
    Key::new(
        "melspectrogram_model",
        Kind::ModelFile,
        "models/openwakeword/melspectrogram.onnx",
        "openWakeWord's melspectrogram model",
    ),
    Key::new(
        "embedding_model",
        Kind::ModelFile,
        "models/openwakeword/embedding_model.onnx",
        "openWakeWord's embedding model",
    ),
    Key::new(
        "onnxruntime_library",
        Kind::ModelFile,
        "models/onnxruntime/libonnxruntime.so",
        "ONNX Runtime library",
    ),
    Key::new(
        "tflite_library",
        Kind::ModelFile,
        "models/microwakeword/libtensorflowlite_c.so",
        "TensorFlow Lite C library (engine = microwakeword)",
    ),
];

/// `engine` as configured.
fn engine(c: &PluginConfig) -> Result<EngineKind, PluginError> {
    Ok(match c.value::<String>("engine")?.as_str() {
        "microwakeword" => EngineKind::MicroWakeWord,
        _ => EngineKind::OpenWakeWord,
    })
}

/// `wake_models` as configured: the paths, in order.
fn wake_models(c: &PluginConfig) -> Result<Vec<PathBuf>, PluginError> {
    let wake: String = c.value("wake_models")?;
    Ok(wake
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect())
}

/// What is wrong with the keys together, each at its key, for `voicehost validate` (the
/// plugin's `check_config`; start refuses them too): a wake model the engine cannot load
/// (`.tflite` for microwakeword, `.onnx` for openwakeword) or whose manifest is broken, and
/// a `model_thresholds` name that is not one of the wake models. Each key's own form and
/// range are checked before (its [`Kind`]).
pub fn problems(c: &PluginConfig) -> Vec<Problem> {
    let (engine, wake) = match (engine(c), wake_models(c)) {
        (Ok(engine), Ok(wake)) => (engine, wake),
        (Err(e), _) | (_, Err(e)) => return vec![Problem::new("", e.message.to_string())],
    };
    let mut problems = Vec::new();
    for path in &wake {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        let problem = match (engine, extension) {
            (EngineKind::MicroWakeWord, "tflite") => Manifest::beside(path).err(),
            (EngineKind::OpenWakeWord, "onnx") => None,
            (EngineKind::MicroWakeWord, _) => Some(format!(
                "{} is not a TensorFlow Lite model: engine = microwakeword loads .tflite \
                 models (e.g. models/microwakeword/alexa.tflite); for openWakeWord's .onnx \
                 models set engine = openwakeword",
                path.display()
            )),
            (EngineKind::OpenWakeWord, _) => Some(format!(
                "{} is not an ONNX model: engine = openwakeword loads .onnx models (e.g. \
                 models/openwakeword/alexa_v0.1.onnx); for microWakeWord's .tflite models \
                 set engine = microwakeword",
                path.display()
            )),
        };
        problems.extend(problem.map(|m| Problem::new("wake_models", m)));
    }
    let names: Vec<String> = wake.iter().map(|p| model_name(p)).collect();
    let overrides: String = c.value("model_thresholds").unwrap_or_default();
    for (name, _) in threshold_entries(&overrides).filter_map(Result::ok) {
        if !names.iter().any(|n| n == name) {
            problems.push(Problem::new(
                "model_thresholds",
                not_a_wake_model(name, &names),
            ));
        }
    }
    problems
}

/// `model_thresholds`' entries, `name:threshold` each, both trimmed; an entry without its
/// `:` is `Err(entry)`.
fn threshold_entries(overrides: &str) -> impl Iterator<Item = Result<(&str, &str), &str>> {
    overrides
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            entry
                .split_once(':')
                .map(|(name, value)| (name.trim(), value.trim()))
                .ok_or(entry)
        })
}

/// Why `model_thresholds` cannot name `name`, which is none of the wake models `names`.
fn not_a_wake_model(name: &str, names: &[String]) -> String {
    format!(
        "{name:?} is not one of wake_models ({}); name a model by its file name without .onnx \
         or .tflite",
        names.join(", ")
    )
}

impl Settings {
    pub fn from_config(c: &PluginConfig) -> Result<Self, PluginError> {
        let engine = engine(c)?;
        let threshold: f32 = c.value("confidence_threshold")?;
        in_unit(threshold, "confidence_threshold")?;
        let cooldown_ms: u64 = c.value("cooldown_ms")?;
        let wake = wake_models(c)?;
        PluginConfig::check(
            !wake.is_empty(),
            "[kwd] wake_models is empty; name at least one model, e.g. models/openwakeword/alexa_v0.1.onnx",
        )?;
        let names: Vec<String> = wake.iter().map(|p| model_name(p)).collect();
        // A microWakeWord model fires at the cutoff it was tuned for, unless told otherwise.
        let mut thresholds = Vec::with_capacity(wake.len());
        for path in &wake {
            let cutoff = match engine {
                EngineKind::MicroWakeWord => Manifest::beside(path)
                    .map_err(|e| PluginError::config(format!("[kwd] wake_models: {e}")))?
                    .map(|m| m.probability_cutoff),
                EngineKind::OpenWakeWord => None,
            };
            thresholds.push(cutoff.unwrap_or(threshold));
        }
        let overrides: String = c.value("model_thresholds")?;
        for entry in threshold_entries(&overrides) {
            let (name, value) = entry.map_err(|entry| {
                PluginError::config(format!(
                    "[kwd] model_thresholds entry {entry:?} is not name:threshold, e.g. hey_jarvis_v0.1:0.5"
                ))
            })?;
            let index = names.iter().position(|n| n == name).ok_or_else(|| {
                PluginError::config(format!(
                    "[kwd] model_thresholds: {}",
                    not_a_wake_model(name, &names)
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
        let micro_window: usize = c.value("micro_window")?;
        let audio_source: String = c.value("audio_source")?;
        let max_detect_streams: usize = c.value("max_detect_streams")?;
        Ok(Settings {
            models: ModelPaths {
                engine,
                onnxruntime: c.value::<PathBuf>("onnxruntime_library")?,
                tflite: c.value::<PathBuf>("tflite_library")?,
                melspectrogram: c.value::<PathBuf>("melspectrogram_model")?,
                embedding: c.value::<PathBuf>("embedding_model")?,
                wake,
                micro_window: (micro_window > 0).then_some(micro_window),
            },
            thresholds,
            cooldown_ms,
            audio_source,
            max_detect_streams,
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

    /// A `[kwd]` section of `entries` with kwd's keys.
    fn section(entries: &[(&str, &str)]) -> PluginConfig {
        PluginConfig::new(
            "kwd",
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .with_keys(KEYS.to_vec())
    }

    fn settings(entries: &[(&str, &str)]) -> Result<Settings, String> {
        let c = section(entries);
        // As at start: the section is checked against the keys first.
        c.validate()
            .and_then(|()| Settings::from_config(&c))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_listen_to_stt_with_alexa() {
        let s = settings(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.thresholds, [0.6]);
        assert_eq!(s.cooldown_ms, 1000);
        assert_eq!(s.audio_source, "127.0.0.1:5004");
        assert_eq!(s.max_detect_streams, 4);
        assert!(s.models.wake[0].ends_with("alexa_v0.1.onnx"));
    }

    #[test]
    fn a_micro_wake_word_model_fires_at_its_manifests_cutoff_unless_told() {
        let dir = std::env::temp_dir().join(format!("vh-kwd-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = r#"{"wake_word": "Alexa", "micro": {"probability_cutoff": 0.9,
            "sliding_window_size": 5, "feature_step_size": 10}}"#;
        std::fs::write(dir.join("alexa.json"), manifest).unwrap();
        let alexa = dir.join("alexa.tflite");
        let other = dir.join("other.tflite");
        let models = format!("{}, {}", alexa.display(), other.display());
        let s = settings(&[("engine", "microwakeword"), ("wake_models", &models)])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.models.engine, EngineKind::MicroWakeWord);
        // alexa: its manifest's 0.9; other (no manifest): confidence_threshold.
        assert_eq!(s.thresholds, [0.9, 0.6]);
        let s = settings(&[
            ("engine", "microwakeword"),
            ("wake_models", &models),
            ("model_thresholds", "alexa:0.95"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.thresholds, [0.95, 0.6]);
        assert_eq!(s.models.micro_window, None, "the manifest's window");
        let s = settings(&[
            ("engine", "microwakeword"),
            ("wake_models", &models),
            ("micro_window", "1"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.models.micro_window, Some(1));
        std::fs::write(dir.join("alexa.json"), "{not json").unwrap();
        let err = settings(&[("engine", "microwakeword"), ("wake_models", &models)])
            .err()
            .unwrap_or_default();
        assert!(
            err.contains("alexa.json is not a microWakeWord manifest"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
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

    /// `check_config`'s problems for a section (each key's own form is checked first).
    fn problems_of(entries: &[(&str, &str)]) -> Vec<(String, String)> {
        let c = section(entries);
        c.validate().unwrap_or_else(|e| panic!("{e}"));
        problems(&c)
            .into_iter()
            .map(|p| (p.key, p.message))
            .collect()
    }

    #[test]
    fn keys_that_do_not_fit_together_are_problems_at_their_key() {
        assert_eq!(problems_of(&[]), []);
        assert_eq!(
            problems_of(&[
                ("wake_models", "m/alexa_v0.1.onnx, m/hey_jarvis_v0.1.onnx"),
                ("model_thresholds", "hey_jarvis_v0.1:0.4"),
            ]),
            []
        );
        let found = problems_of(&[("engine", "microwakeword")]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "wake_models");
        assert!(
            found[0]
                .1
                .contains("alexa_v0.1.onnx is not a TensorFlow Lite model")
                && found[0].1.contains("set engine = openwakeword"),
            "{found:?}"
        );
        let found = problems_of(&[("wake_models", "m/alexa.tflite")]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].1.contains("alexa.tflite is not an ONNX model")
                && found[0].1.contains("set engine = microwakeword"),
            "{found:?}"
        );
        let found = problems_of(&[("model_thresholds", "alexa_v0.1:0.5, alexxa:0.8")]);
        assert_eq!(
            found,
            [(
                "model_thresholds".to_owned(),
                "\"alexxa\" is not one of wake_models (alexa_v0.1); name a model by its file \
                 name without .onnx or .tflite"
                    .to_owned()
            )]
        );
    }

    #[test]
    fn bad_values_are_named_with_the_fix() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("confidence_threshold", "1.5")],
                "confidence_threshold = \"1.5\" is invalid: expected a number from 0 to 1",
            ),
            (
                &[("confidence_threshold", "-0.1")],
                "expected a number from 0 to 1",
            ),
            (
                &[("cooldown_ms", "-1")],
                "cooldown_ms = \"-1\" is invalid: expected an integer from 0 to 3600000",
            ),
            (
                &[("wake_models", " , ")],
                "wake_models = \" , \" is invalid",
            ),
            (
                &[("model_thresholds", "alexa_v0.1=0.5")],
                "expected comma-separated name:score pairs",
            ),
            (
                &[("model_thresholds", "jarvis:0.5")],
                "\"jarvis\" is not one of wake_models (alexa_v0.1)",
            ),
            (
                &[("model_thresholds", "alexa_v0.1:2")],
                "model_thresholds = \"alexa_v0.1:2\" is invalid",
            ),
            (
                &[("micro_window", "101")],
                "micro_window = \"101\" is invalid: expected an integer from 0 to 100",
            ),
            (
                &[("max_detect_streams", "0")],
                "max_detect_streams = \"0\" is invalid: expected an integer from 1 to 32",
            ),
            (
                &[("audio_source", "stt")],
                "audio_source = \"stt\" is invalid: expected host:port",
            ),
        ];
        for (entries, expected) in cases {
            let err = settings(entries).err().unwrap_or_default();
            assert!(err.contains(expected), "{entries:?}: {err}");
        }
    }
}
