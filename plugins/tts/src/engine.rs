//! Kokoro-82M through ONNX Runtime: phonemes → token ids → 24 kHz audio.
//!
//! Inputs (checked at load): `tokens` int64 [1, n+2] (ids framed by 0), `style` f32
//! [1, 256] (row n - 1 of the voice file for n ids), `speed` f32 [1]; output `audio` f32.
//! At most 510 ids per run: longer phoneme strings are split at word boundaries, never cut.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::Tensor;

use crate::config::{Device, Settings};

/// Kokoro's output rate.
pub const SAMPLE_RATE: u32 = 24_000;
/// Most phoneme ids per inference.
pub const MAX_IDS: usize = 510;
const STYLE_DIM: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Load(String),
    #[error("unknown voice {name:?}: no {path}; the voices are the .bin files in {dir}")]
    UnknownVoice {
        name: String,
        path: String,
        dir: String,
    },
    #[error("Kokoro inference failed: {0}")]
    Inference(String),
}

/// A loaded Kokoro model with its vocabulary and voices.
pub struct Kokoro {
    session: Session,
    vocab: HashMap<char, i64>,
    voices_dir: PathBuf,
    voices: HashMap<String, Vec<f32>>,
}

impl std::fmt::Debug for Kokoro {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kokoro")
            .field("vocab", &self.vocab.len())
            .field("voices", &self.voices.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Kokoro {
    /// Loads the model, the vocabulary and the configured voice.
    pub fn load(s: &Settings) -> Result<Kokoro, EngineError> {
        for path in [&s.model, &s.vocab] {
            voicehost_onnx::require_model(path, "kokoro").map_err(EngineError::Load)?;
        }
        let load_err = |e: ort::Error| EngineError::Load(format!("{}: {e}", s.model.display()));
        let mut builder = voicehost_onnx::builder(&s.onnxruntime, "voicehost-tts", s.threads)
            .map_err(EngineError::Load)?;
        if s.device == Device::Cuda {
            builder = cuda(builder)?;
        }
        let session = builder.commit_from_file(&s.model).map_err(load_err)?;
        let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        if names != ["tokens", "style", "speed"] {
            return Err(EngineError::Load(format!(
                "{} has inputs {names:?}; expected Kokoro v1.0's [tokens, style, speed]",
                s.model.display()
            )));
        }
        let vocab = load_vocab(&s.vocab)?;
        let mut kokoro = Kokoro {
            session,
            vocab,
            voices_dir: s.voices_dir.clone(),
            voices: HashMap::new(),
        };
        kokoro.voice(&s.voice)?;
        Ok(kokoro)
    }

    /// The style table of `name`, loaded on first use.
    fn voice(&mut self, name: &str) -> Result<&[f32], EngineError> {
        if !self.voices.contains_key(name) {
            let path = self.voices_dir.join(format!("{name}.bin"));
            let unknown = || EngineError::UnknownVoice {
                name: name.to_owned(),
                path: path.display().to_string(),
                dir: self.voices_dir.display().to_string(),
            };
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid || !path.is_file() {
                return Err(unknown());
            }
            let bytes = std::fs::read(&path).map_err(|_| unknown())?;
            if bytes.len() != MAX_IDS * STYLE_DIM * 4 {
                return Err(EngineError::Load(format!(
                    "{} has {} bytes; a Kokoro voice has {} (510×256 f32)",
                    path.display(),
                    bytes.len(),
                    MAX_IDS * STYLE_DIM * 4
                )));
            }
            let table = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            self.voices.insert(name.to_owned(), table);
        }
        Ok(self.voices.get(name).map(Vec::as_slice).unwrap_or_default())
    }

    /// Whether `name` can be used (loading it if needed).
    pub fn has_voice(&mut self, name: &str) -> Result<(), EngineError> {
        self.voice(name).map(|_| ())
    }

    /// Token ids of espeak-ng IPA (after [`kokoro_symbol`]); symbols outside the vocabulary
    /// are skipped.
    pub fn ids(&self, phonemes: &str) -> Vec<i64> {
        phonemes
            .chars()
            .filter_map(|c| self.vocab.get(&kokoro_symbol(c)).copied())
            .collect()
    }

    /// Synthesises `phonemes` with `voice` at `speed`, splitting at word boundaries so that
    /// no run exceeds [`MAX_IDS`].
    pub fn synthesize(
        &mut self,
        phonemes: &str,
        voice: &str,
        speed: f32,
    ) -> Result<Vec<f32>, EngineError> {
        let mut audio = Vec::new();
        for piece in split_ids(&self.ids(phonemes), self.vocab.get(&' ').copied()) {
            audio.extend(self.run(&piece, voice, speed)?);
        }
        Ok(audio)
    }

    fn run(&mut self, ids: &[i64], voice: &str, speed: f32) -> Result<Vec<f32>, EngineError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One style row per phoneme count: n ids use row n - 1 (as Kokoro's reference
        // pipeline and kokoro-onnx do).
        let row = (ids.len() - 1).min(MAX_IDS - 1);
        let style = self.voice(voice)?[row * STYLE_DIM..(row + 1) * STYLE_DIM].to_vec();
        let mut tokens = Vec::with_capacity(ids.len() + 2);
        tokens.push(0);
        tokens.extend_from_slice(ids);
        tokens.push(0);
        let infer = |e: ort::Error| EngineError::Inference(e.to_string());
        let n = tokens.len();
        let inputs = ort::inputs![
            "tokens" => Tensor::from_array(([1usize, n], tokens)).map_err(infer)?,
            "style" => Tensor::from_array(([1usize, STYLE_DIM], style)).map_err(infer)?,
            "speed" => Tensor::from_array(([1usize], vec![speed])).map_err(infer)?,
        ];
        let outputs = self.session.run(inputs).map_err(infer)?;
        let (_, audio) = outputs["audio"]
            .try_extract_tensor::<f32>()
            .map_err(infer)?;
        Ok(audio.to_vec())
    }
}

#[cfg(feature = "cuda")]
fn cuda(
    builder: ort::session::builder::SessionBuilder,
) -> Result<ort::session::builder::SessionBuilder, EngineError> {
    builder
        .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
        .map_err(|e| EngineError::Load(format!("CUDA execution provider: {e}")))
}

#[cfg(not(feature = "cuda"))]
fn cuda(
    _: ort::session::builder::SessionBuilder,
) -> Result<ort::session::builder::SessionBuilder, EngineError> {
    Err(EngineError::Load(
        "[tts] device = cuda, but this plugin was built without CUDA; rebuild with \
         `cargo build --release -p voicehost-plugin-tts --features cuda` or set device = cpu"
            .to_owned(),
    ))
}

/// espeak-ng's IPA symbol → the one Kokoro was trained on.
pub fn kokoro_symbol(c: char) -> char {
    match c {
        'r' => 'ɹ',
        'ʲ' => 'j',
        'x' => 'k',
        'ɬ' => 'l',
        other => other,
    }
}

/// Splits ids into runs of at most `MAX_IDS - 1`, preferring to cut after a space id.
fn split_ids(ids: &[i64], space: Option<i64>) -> Vec<Vec<i64>> {
    let limit = MAX_IDS - 1;
    let mut out = Vec::new();
    let mut rest = ids;
    while rest.len() > limit {
        let cut = space
            .and_then(|sp| rest[..limit].iter().rposition(|id| *id == sp))
            .map_or(limit, |p| p + 1);
        out.push(rest[..cut].to_vec());
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        out.push(rest.to_vec());
    }
    out
}

fn load_vocab(path: &Path) -> Result<HashMap<char, i64>, EngineError> {
    let bad = |m: String| EngineError::Load(format!("{}: {m}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let mut map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    // The file is `{"vocab": {symbol: id, …}}` (a bare map is accepted too).
    if let Some(serde_json::Value::Object(inner)) = map.remove("vocab") {
        map = inner;
    }
    let mut vocab = HashMap::new();
    for (symbol, id) in map {
        let mut chars = symbol.chars();
        let (Some(c), None, Some(id)) = (chars.next(), chars.next(), id.as_i64()) else {
            return Err(bad(format!(
                "entry {symbol:?} is not one symbol with an integer id"
            )));
        };
        vocab.insert(c, id);
    }
    Ok(vocab)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn espeak_symbols_map_onto_kokoros() {
        let mapped: String = "rʲxɬə".chars().map(kokoro_symbol).collect();
        assert_eq!(mapped, "ɹjklə");
    }

    #[test]
    fn long_id_runs_split_at_spaces_and_never_drop() {
        let space = 16;
        let mut ids = Vec::new();
        for _ in 0..200 {
            ids.extend([50, 51, 52, space]);
        }
        let pieces = split_ids(&ids, Some(space));
        assert!(pieces.iter().all(|p| p.len() < MAX_IDS));
        assert!(
            pieces[..pieces.len() - 1]
                .iter()
                .all(|p| p.last() == Some(&space))
        );
        assert_eq!(pieces.concat(), ids, "nothing truncated");
        // No spaces at all: still split, still complete.
        let flat = vec![7; 1200];
        assert_eq!(split_ids(&flat, Some(space)).concat(), flat);
    }
}
