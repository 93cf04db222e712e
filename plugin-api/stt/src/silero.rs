//! Silero VAD (ONNX): the speech probability of each 32 ms window. Two generations of the
//! model are read, told apart by their inputs: v4 (`input`, `sr`, `h`, `c`; openWakeWord
//! ships it) and v5/v6 (`input` with 64 samples of the previous window in front, `state`,
//! `sr`; the `silero-vad` package's `silero_vad_16k_op15.onnx`).

use std::path::Path;

use ort::session::Session;
use ort::value::Tensor;

/// Samples per Silero window at 16 kHz (32 ms).
pub const WINDOW: usize = 512;
/// v5/v6: samples of the previous window the model sees in front of each window.
const CONTEXT: usize = 64;
/// Floats of recurrent state, both generations: v4 `h` and `c` ([2,1,64] each), v6
/// `state` ([2,1,128]).
const STATE: usize = 256;

/// Which Silero the model file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Inputs `input`, `sr`, `h`, `c`; outputs `output`, `hn`, `cn`.
    V4,
    /// Inputs `input` (64 context + 512 samples), `state`, `sr`; outputs `output`,
    /// `stateN` (v5 and v6).
    V6,
}

/// Silero VAD with its recurrent state.
pub struct Silero {
    session: Session,
    version: Version,
    state: VadState,
}

impl std::fmt::Debug for Silero {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Silero")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Silero's recurrent state at one moment (and, v6, the end of the last window).
#[derive(Debug, Clone)]
pub struct VadState {
    recurrent: Vec<f32>,
    context: Vec<f32>,
}

impl Default for VadState {
    fn default() -> Self {
        VadState {
            recurrent: vec![0.0; STATE],
            context: vec![0.0; CONTEXT],
        }
    }
}

impl Silero {
    pub fn load(model: &Path, onnxruntime: &Path) -> Result<Silero, String> {
        let session =
            voicehost_onnx::session(onnxruntime, "voicehost-stt", model, "silero-vad", 1)?;
        let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        let version = if names.contains(&"state") {
            Version::V6
        } else if names.contains(&"h") && names.contains(&"c") {
            Version::V4
        } else {
            return Err(format!(
                "{}: not a Silero VAD model this version reads (inputs {names:?}; expected \
                 input, state, sr (v5/v6) or input, sr, h, c (v4))",
                model.display()
            ));
        };
        Ok(Silero {
            session,
            version,
            state: VadState::default(),
        })
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The recurrent state, to be put back with [`Silero::set_state`].
    pub fn state(&self) -> VadState {
        self.state.clone()
    }

    pub fn set_state(&mut self, state: VadState) {
        self.state = state;
    }

    /// Speech probability of one 512-sample window.
    pub fn probability(&mut self, window: &[f32]) -> Result<f32, String> {
        let e = |e: ort::Error| e.to_string();
        let sr = Tensor::from_array(((), vec![16_000i64])).map_err(e)?;
        let (p, recurrent) = match self.version {
            Version::V4 => {
                let (h, c) = self.state.recurrent.split_at(STATE / 2);
                let inputs = ort::inputs![
                    "input" => Tensor::from_array(([1usize, window.len()], window.to_vec())).map_err(e)?,
                    "sr" => sr,
                    "h" => Tensor::from_array(([2usize, 1, 64], h.to_vec())).map_err(e)?,
                    "c" => Tensor::from_array(([2usize, 1, 64], c.to_vec())).map_err(e)?,
                ];
                let out = self.session.run(inputs).map_err(e)?;
                let p = out["output"].try_extract_tensor::<f32>().map_err(e)?.1[0];
                let mut recurrent = out["hn"].try_extract_tensor::<f32>().map_err(e)?.1.to_vec();
                recurrent.extend_from_slice(out["cn"].try_extract_tensor::<f32>().map_err(e)?.1);
                (p, recurrent)
            }
            Version::V6 => {
                let mut input = Vec::with_capacity(CONTEXT + window.len());
                input.extend_from_slice(&self.state.context);
                input.extend_from_slice(window);
                let inputs = ort::inputs![
                    "input" => Tensor::from_array(([1usize, input.len()], input)).map_err(e)?,
                    "state" => Tensor::from_array(([2usize, 1, 128], self.state.recurrent.clone())).map_err(e)?,
                    "sr" => sr,
                ];
                let out = self.session.run(inputs).map_err(e)?;
                let p = out["output"].try_extract_tensor::<f32>().map_err(e)?.1[0];
                let recurrent = out["stateN"]
                    .try_extract_tensor::<f32>()
                    .map_err(e)?
                    .1
                    .to_vec();
                (p, recurrent)
            }
        };
        if recurrent.len() != STATE {
            return Err(format!(
                "Silero {:?} returned {} floats of state, not {STATE}",
                self.version,
                recurrent.len()
            ));
        }
        self.state.recurrent = recurrent;
        if window.len() >= CONTEXT {
            self.state.context = window[window.len() - CONTEXT..].to_vec();
        }
        Ok(p)
    }
}

#[cfg(test)]
#[path = "silero_tests.rs"]
mod tests;
