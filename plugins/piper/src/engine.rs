//! A Piper voice through ONNX Runtime: espeak-ng IPA → phoneme ids → audio.
//!
//! The voice's config (`<model>.onnx.json`) gives the sample rate, the espeak-ng language,
//! `phoneme_id_map` and the inference scales. Inputs (checked at load): `input` i64 [1, N]
//! (ids laid out as Piper's own `phonemes_to_ids`: `^`, `_`, then each phoneme's id followed
//! by `_`, then `$`), `input_lengths` i64 [1], `scales` f32 [noise_scale, length_scale,
//! noise_w]; output f32 [1, 1, 1, samples].

use std::collections::{HashMap, HashSet};
use std::path::Path;

use ort::session::Session;
use ort::value::Tensor;

use crate::config::Settings;

/// Piper's defaults for scales a voice config leaves out (as piper-tts has them).
const DEFAULT_NOISE_SCALE: f32 = 0.667;
const DEFAULT_LENGTH_SCALE: f32 = 1.0;
const DEFAULT_NOISE_W: f32 = 0.8;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Load(String),
    #[error("{path}: {message}")]
    VoiceConfig { path: String, message: String },
    #[error("Piper inference failed: {0}")]
    Inference(String),
}

/// What a Piper voice config says, as far as synthesis needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceConfig {
    pub sample_rate: u32,
    /// The espeak-ng voice of its phonemes (`en-us`).
    pub espeak_voice: String,
    /// The language it speaks as `language_REGION` (`en_US`): the config's `language.code`,
    /// else read from the espeak-ng voice.
    pub language: String,
    /// One line for people: "Piper, English (United States), medium quality".
    pub description: String,
    pub noise_scale: f32,
    pub length_scale: f32,
    pub noise_w: f32,
    /// Phoneme (one character) → its ids.
    pub ids: HashMap<char, Vec<i64>>,
}

impl VoiceConfig {
    /// Reads and checks `path` (a Piper `.onnx.json`).
    pub fn load(path: &Path) -> Result<VoiceConfig, EngineError> {
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::VoiceConfig {
            path: path.display().to_string(),
            message: format!(
                "{e}; it is the voice's config beside its model, fetched with \
                 `voicehost models fetch --only piper`"
            ),
        })?;
        VoiceConfig::parse(&text).map_err(|message| EngineError::VoiceConfig {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses a Piper voice config's JSON text.
    pub fn parse(text: &str) -> Result<VoiceConfig, String> {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let phoneme_type = json["phoneme_type"].as_str().unwrap_or("espeak");
        if phoneme_type != "espeak" {
            return Err(format!(
                "phoneme_type {phoneme_type:?}: this plugin speaks espeak-ng phonemes only"
            ));
        }
        let speakers = json["num_speakers"].as_u64().unwrap_or(1);
        if speakers > 1 {
            return Err(format!(
                "a voice of {speakers} speakers: this plugin takes single-speaker voices"
            ));
        }
        let sample_rate = json["audio"]["sample_rate"]
            .as_u64()
            .and_then(|r| u32::try_from(r).ok())
            .ok_or("no audio.sample_rate")?;
        let scale = |name: &str, default: f32| match &json["inference"][name] {
            serde_json::Value::Null => Ok(default),
            v => v
                .as_f64()
                .map(|x| x as f32)
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or(format!("inference.{name} is {v}; expected a number ≥ 0")),
        };
        let map = json["phoneme_id_map"]
            .as_object()
            .ok_or("no phoneme_id_map object")?;
        let mut ids = HashMap::new();
        for (symbol, list) in map {
            let bad = || format!("phoneme_id_map[{symbol:?}] is not a list of ids");
            let list: Vec<i64> = list
                .as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|id| id.as_i64().ok_or_else(bad))
                .collect::<Result<_, _>>()?;
            // Multi-character entries (vowel clusters of some newer voices) are not used.
            let mut chars = symbol.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                ids.insert(c, list);
            }
        }
        for symbol in ['_', '^', '$'] {
            if ids.get(&symbol).is_none_or(Vec::is_empty) {
                return Err(format!("phoneme_id_map has no {symbol:?}"));
            }
        }
        let espeak_voice = json["espeak"]["voice"]
            .as_str()
            .unwrap_or("en-us")
            .to_owned();
        Ok(VoiceConfig {
            sample_rate,
            language: json["language"]["code"]
                .as_str()
                .filter(|code| !code.is_empty())
                .map_or_else(|| language_code(&espeak_voice), str::to_owned),
            description: description(&json),
            espeak_voice,
            noise_scale: scale("noise_scale", DEFAULT_NOISE_SCALE)?,
            length_scale: scale("length_scale", DEFAULT_LENGTH_SCALE)?,
            noise_w: scale("noise_w", DEFAULT_NOISE_W)?,
            ids,
        })
    }

    /// Phoneme ids of `phonemes`: `^ _`, each known phoneme's ids and `_`, then `$`.
    /// Phonemes the map lacks are skipped and returned apart.
    pub fn phoneme_ids(&self, phonemes: &str) -> (Vec<i64>, Vec<char>) {
        let id = |c: char| self.ids.get(&c).map(Vec::as_slice).unwrap_or_default();
        let mut out = Vec::with_capacity(2 * phonemes.len() + 3);
        let mut missing = Vec::new();
        out.extend_from_slice(id('^'));
        out.extend_from_slice(id('_'));
        for c in phonemes.chars() {
            match self.ids.get(&c) {
                Some(ids) => {
                    out.extend_from_slice(ids);
                    out.extend_from_slice(id('_'));
                }
                None => missing.push(c),
            }
        }
        out.extend_from_slice(id('$'));
        (out, missing)
    }
}

/// An espeak-ng voice as `language_REGION`: `en-us` → `en_US`, `en-gb-x-rp` → `en_GB`,
/// `de` → `de` (and `en_US` for an empty one).
pub fn language_code(espeak_voice: &str) -> String {
    let mut parts = espeak_voice.split('-');
    let language = parts.next().unwrap_or_default().to_ascii_lowercase();
    if language.is_empty() {
        return "en_US".to_owned();
    }
    match parts.next() {
        Some(region) if region.len() == 2 && region.chars().all(|c| c.is_ascii_alphabetic()) => {
            format!("{language}_{}", region.to_ascii_uppercase())
        }
        _ => language,
    }
}

/// "Piper, English (United States), medium quality", from what a voice config says.
fn description(json: &serde_json::Value) -> String {
    let mut parts = vec!["Piper".to_owned()];
    let language = &json["language"];
    if let Some(name) = language["name_english"].as_str() {
        parts.push(match language["country_english"].as_str() {
            Some(country) => format!("{name} ({country})"),
            None => name.to_owned(),
        });
    }
    if let Some(quality) = json["audio"]["quality"].as_str() {
        parts.push(format!("{quality} quality"));
    }
    parts.join(", ")
}

/// A loaded Piper voice.
pub struct Piper {
    session: Session,
    voice: VoiceConfig,
    /// [noise_scale, length_scale / speed, noise_w].
    scales: [f32; 3],
    /// Phonemes already reported as missing from the map (each is logged once).
    reported: HashSet<char>,
}

impl std::fmt::Debug for Piper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Piper")
            .field("sample_rate", &self.voice.sample_rate)
            .field("phonemes", &self.voice.ids.len())
            .field("scales", &self.scales)
            .finish_non_exhaustive()
    }
}

impl Piper {
    /// Loads the voice config and the model, and checks the model's inputs.
    pub fn load(s: &Settings) -> Result<Piper, EngineError> {
        voicehost_onnx::require_model(&s.model, "piper").map_err(EngineError::Load)?;
        let voice = VoiceConfig::load(&s.model_config)?;
        let session = voicehost_onnx::builder(&s.onnxruntime, "voicehost-piper", s.threads)
            .map_err(EngineError::Load)?
            .commit_from_file(&s.model)
            .map_err(|e| EngineError::Load(format!("{}: {e}", s.model.display())))?;
        let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        if names != ["input", "input_lengths", "scales"] {
            return Err(EngineError::Load(format!(
                "{} has inputs {names:?}; expected a single-speaker Piper voice's \
                 [input, input_lengths, scales]",
                s.model.display()
            )));
        }
        let scales = [
            voice.noise_scale,
            voice.length_scale / s.speed,
            voice.noise_w,
        ];
        Ok(Piper {
            session,
            voice,
            scales,
            reported: HashSet::new(),
        })
    }

    /// The voice's config.
    pub fn voice(&self) -> &VoiceConfig {
        &self.voice
    }

    /// Audio of `phonemes` (espeak-ng IPA) at the voice's sample rate.
    pub fn synthesize(&mut self, phonemes: &str) -> Result<Vec<f32>, EngineError> {
        let (ids, missing) = self.voice.phoneme_ids(phonemes);
        for c in missing {
            if self.reported.insert(c) {
                tracing::warn!(
                    phoneme = %c,
                    codepoint = %format!("U+{:04X}", u32::from(c)),
                    "Phoneme not in the voice's phoneme_id_map; skipped"
                );
            }
        }
        // `^ _ $` alone: nothing to say.
        if ids.len() <= 3 {
            return Ok(Vec::new());
        }
        let infer = |e: ort::Error| EngineError::Inference(e.to_string());
        let n = ids.len();
        let inputs = ort::inputs![
            "input" => Tensor::from_array(([1usize, n], ids)).map_err(infer)?,
            "input_lengths" => Tensor::from_array(([1usize], vec![n as i64])).map_err(infer)?,
            "scales" => Tensor::from_array(([3usize], self.scales.to_vec())).map_err(infer)?,
        ];
        let outputs = self.session.run(inputs).map_err(infer)?;
        let (_, audio) = outputs[0].try_extract_tensor::<f32>().map_err(infer)?;
        Ok(audio.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{
        "audio": {"sample_rate": 22050},
        "espeak": {"voice": "en-us"},
        "inference": {"noise_scale": 0.5, "length_scale": 1.2},
        "phoneme_type": "espeak",
        "num_speakers": 1,
        "phoneme_id_map": {"_": [0], "^": [1], "$": [2], " ": [3], "a": [14], "b": [15, 16], "ab": [99]}
    }"#;

    #[test]
    fn a_voice_config_is_read_with_piper_defaults() {
        let v = VoiceConfig::parse(CONFIG).unwrap();
        assert_eq!(v.sample_rate, 22_050);
        assert_eq!(v.espeak_voice, "en-us");
        assert_eq!(
            (v.language.as_str(), v.description.as_str()),
            ("en_US", "Piper")
        );
        assert_eq!((v.noise_scale, v.length_scale, v.noise_w), (0.5, 1.2, 0.8));
        assert_eq!(v.ids.len(), 6, "the two-character entry is left out");
    }

    #[test]
    fn the_language_is_the_configs_code_else_the_espeak_voices() {
        let mut json: serde_json::Value = serde_json::from_str(CONFIG).unwrap();
        json["language"] = serde_json::json!({"code": "en_GB", "name_english": "English",
            "country_english": "Great Britain"});
        json["audio"]["quality"] = "low".into();
        let v = VoiceConfig::parse(&json.to_string()).unwrap();
        assert_eq!(v.language, "en_GB");
        assert_eq!(v.description, "Piper, English (Great Britain), low quality");
        for (espeak, code) in [
            ("en-us", "en_US"),
            ("en-gb-x-rp", "en_GB"),
            ("de", "de"),
            ("", "en_US"),
        ] {
            assert_eq!(language_code(espeak), code, "{espeak}");
        }
    }

    #[test]
    fn ids_are_framed_and_padded_as_piper_does() {
        let v = VoiceConfig::parse(CONFIG).unwrap();
        let (ids, missing) = v.phoneme_ids("a bé");
        assert_eq!(ids, [1, 0, 14, 0, 3, 0, 15, 16, 0, 2]);
        assert_eq!(missing, ['é']);
    }

    #[test]
    fn broken_configs_say_what_is_wrong() {
        let cases = [
            ("[]", "no audio.sample_rate"),
            ("{", "not JSON"),
            (
                r#"{"audio": {"sample_rate": 22050}, "phoneme_id_map": {"_": [0], "^": [1]}}"#,
                "phoneme_id_map has no '$'",
            ),
            (
                r#"{"audio": {"sample_rate": 22050}, "phoneme_id_map": {"_": ["x"]}}"#,
                "phoneme_id_map[\"_\"] is not a list of ids",
            ),
            (
                r#"{"phoneme_type": "text", "audio": {"sample_rate": 22050}}"#,
                "espeak-ng phonemes only",
            ),
            (
                r#"{"num_speakers": 4, "audio": {"sample_rate": 22050}}"#,
                "single-speaker",
            ),
            (
                r#"{"audio": {"sample_rate": 22050}, "inference": {"noise_w": "x"},
                   "phoneme_id_map": {"_": [0], "^": [1], "$": [2]}}"#,
                "inference.noise_w",
            ),
        ];
        for (text, needle) in cases {
            let err = VoiceConfig::parse(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
