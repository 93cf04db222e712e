//! Smart Turn v3 (Pipecat's end-of-turn model, ONNX): from the audio alone, the
//! probability that the speaker finished their turn. A Whisper-tiny encoder with a
//! classifier on the last 8 s of the utterance ([`LogMel`] features).

use std::path::Path;
use std::time::{Duration, Instant};

use ort::session::Session;
use ort::value::Tensor;

use super::mel::{FRAMES, LogMel, N_MELS};

/// The Smart Turn model and its feature extractor.
pub struct SmartTurn {
    session: Session,
    mel: LogMel,
}

impl std::fmt::Debug for SmartTurn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartTurn").finish_non_exhaustive()
    }
}

/// One judgement of the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnCheck {
    /// Probability that the turn is complete.
    pub probability: f32,
    /// Computing the features.
    pub features: Duration,
    /// Running the model.
    pub model: Duration,
}

/// What judges from the audio whether a turn is over: [`SmartTurn`] (or a stand-in in
/// tests).
pub trait TurnModel: Send + std::fmt::Debug {
    /// How likely `audio` (the utterance so far with the pause after it) ends the turn.
    fn check(&mut self, audio: &[f32]) -> Result<TurnCheck, String>;
}

impl TurnModel for SmartTurn {
    fn check(&mut self, audio: &[f32]) -> Result<TurnCheck, String> {
        SmartTurn::check(self, audio)
    }
}

impl SmartTurn {
    /// Loads `model` (Smart Turn v3.x, input `input_features` [1, 80, 800]) on one ONNX
    /// Runtime thread.
    pub fn load(model: &Path, onnxruntime: &Path) -> Result<SmartTurn, String> {
        let session =
            voicehost_onnx::session(onnxruntime, "voicehost-stt", model, "smart-turn", 1)?;
        let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        if names != ["input_features"] {
            return Err(format!(
                "{}: not a Smart Turn v3 model (inputs {names:?}; expected input_features)",
                model.display()
            ));
        }
        Ok(SmartTurn {
            session,
            mel: LogMel::new(),
        })
    }

    /// How likely `audio` (16 kHz mono, the utterance so far with the pause after it) ends
    /// a complete turn; only its last 8 s are heard.
    pub fn check(&mut self, audio: &[f32]) -> Result<TurnCheck, String> {
        let started = Instant::now();
        let features = self.mel.features(audio);
        let features_took = started.elapsed();
        let probability = self.probability(features)?;
        Ok(TurnCheck {
            probability,
            features: features_took,
            model: started.elapsed() - features_took,
        })
    }

    /// The model's probability of a complete turn on `features` ([`LogMel::features`]:
    /// [`N_MELS`] × [`FRAMES`]).
    pub fn probability(&mut self, features: Vec<f32>) -> Result<f32, String> {
        if features.len() != N_MELS * FRAMES {
            return Err(format!(
                "Smart Turn takes {} features, not {}",
                N_MELS * FRAMES,
                features.len()
            ));
        }
        let e = |e: ort::Error| format!("Smart Turn: {e}");
        let input = Tensor::from_array(([1usize, N_MELS, FRAMES], features)).map_err(e)?;
        let out = self
            .session
            .run(ort::inputs!["input_features" => input])
            .map_err(e)?;
        out[0]
            .try_extract_tensor::<f32>()
            .map_err(e)?
            .1
            .first()
            .copied()
            .ok_or_else(|| "Smart Turn returned no probability".to_owned())
    }
}
