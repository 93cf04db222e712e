//! microWakeWord in streaming form: 16 kHz audio → the micro frontend's 40-channel
//! features every 10 ms → each wake model, fed three frames at a time (its input), its
//! state kept inside the interpreter between calls → the mean of its last
//! `sliding_window_size` outputs (the model's manifest) is its probability.
//!
//! Scores come out at every model step (30 ms: the models take three 10 ms frames per
//! call), not per 80 ms chunk as openWakeWord's: a detection fires as soon as the mean
//! crosses the threshold, about 40 ms sooner on average than at the end of a chunk. The
//! detector, the cooldown and the re-arming (counted in audio) are the same for both
//! engines.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::frontend::{FEATURES, Frontend, STEP};
use super::tflite::{Library, StreamingModel};
use crate::engine::{CHUNK, Scored};

/// Probabilities averaged when a model's manifest does not say.
const DEFAULT_WINDOW: usize = 5;
/// The widest window a manifest or `[kwd] micro_window` may ask for.
pub const MAX_WINDOW: usize = 100;

/// What a model's JSON manifest (beside the `.tflite`, same stem) says.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub wake_word: String,
    /// Detection threshold the model was tuned for.
    pub probability_cutoff: f32,
    pub sliding_window_size: usize,
}

#[derive(serde::Deserialize)]
struct ManifestFile {
    wake_word: String,
    micro: MicroSection,
}

#[derive(serde::Deserialize)]
struct MicroSection {
    probability_cutoff: f32,
    sliding_window_size: usize,
    feature_step_size: Option<u32>,
}

impl Manifest {
    /// The manifest beside `model` (`alexa.tflite` → `alexa.json`); `Ok(None)` when there
    /// is none.
    pub fn beside(model: &Path) -> Result<Option<Manifest>, String> {
        let path = model.with_extension("json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let m: ManifestFile = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not a microWakeWord manifest ({e}); it needs wake_word and micro.probability_cutoff and micro.sliding_window_size",
                path.display()
            )
        })?;
        let step = m.micro.feature_step_size.unwrap_or(10);
        if step != 10 {
            return Err(format!(
                "{}: feature_step_size {step} ms; this engine makes features every 10 ms",
                path.display()
            ));
        }
        if !(0.0..=1.0).contains(&m.micro.probability_cutoff)
            || !(1..=MAX_WINDOW).contains(&m.micro.sliding_window_size)
        {
            return Err(format!(
                "{}: probability_cutoff {} or sliding_window_size {} out of range (0-1, 1-100)",
                path.display(),
                m.micro.probability_cutoff,
                m.micro.sliding_window_size
            ));
        }
        Ok(Some(Manifest {
            wake_word: m.wake_word,
            probability_cutoff: m.micro.probability_cutoff,
            sliding_window_size: m.micro.sliding_window_size,
        }))
    }
}

/// One wake model with its streaming state.
struct Wake {
    name: String,
    model: StreamingModel,
    /// Feature frames not yet given to the model (fewer than it takes at once).
    input: Vec<f32>,
    /// Its latest outputs, at most `window`.
    outputs: VecDeque<f32>,
    window: usize,
}

impl Wake {
    /// Feeds one feature frame; true when the model ran and has a full window of outputs
    /// (a new [`Wake::mean`]).
    fn frame(&mut self, frame: &[f32; FEATURES]) -> Result<bool, String> {
        self.input.extend_from_slice(frame);
        if self.input.len() < self.model.frames() * FEATURES {
            return Ok(false);
        }
        let p = self
            .model
            .invoke(&self.input)
            .map_err(|e| format!("{}: {e}", self.name))?;
        self.input.clear();
        if self.outputs.len() == self.window {
            self.outputs.pop_front();
        }
        self.outputs.push_back(p);
        Ok(self.outputs.len() == self.window)
    }

    /// The mean of its latest full window of outputs: its probability (0 until there is one).
    fn mean(&self) -> f32 {
        if self.outputs.len() < self.window {
            return 0.0;
        }
        self.outputs.iter().sum::<f32>() / self.window as f32
    }

    fn reset(&mut self) -> Result<(), String> {
        self.input.clear();
        self.outputs.clear();
        self.model
            .reset()
            .map_err(|e| format!("{}: {e}", self.name))
    }
}

/// The frontend and every wake model, with their streaming state.
pub struct MicroWakeWord {
    frontend: Frontend,
    wakes: Vec<Wake>,
    /// Samples not yet a whole frontend step, as 16-bit PCM.
    pending: Vec<i16>,
    frames: Vec<[f32; FEATURES]>,
    /// Where the library was loaded from (for the log).
    library: PathBuf,
    version: String,
}

impl std::fmt::Debug for MicroWakeWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MicroWakeWord")
            .field("models", &self.models())
            .field("library", &self.library)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl MicroWakeWord {
    /// Loads the TFLite library and each wake model (`.tflite`, its manifest beside it);
    /// each score is the mean of `window` outputs (`None`: the manifest's window).
    pub fn load(
        library: &Path,
        wake: &[PathBuf],
        window: Option<usize>,
    ) -> Result<MicroWakeWord, String> {
        if wake.is_empty() {
            return Err("no wake model given; name at least one in wake_models".to_owned());
        }
        if let Some(w) = window
            && !(1..=MAX_WINDOW).contains(&w)
        {
            return Err(format!(
                "a window of {w} outputs is out of range; average 1 to {MAX_WINDOW}"
            ));
        }
        let lib: Arc<Library> = Library::load(library)?;
        let mut wakes: Vec<Wake> = Vec::new();
        for path in wake {
            if path.extension().and_then(|e| e.to_str()) != Some("tflite") {
                return Err(format!(
                    "{} is not a .tflite model; engine = microwakeword takes microWakeWord models, e.g. models/microwakeword/alexa.tflite",
                    path.display()
                ));
            }
            let name = crate::engine::model_name(path);
            if wakes.iter().any(|w| w.name == name) {
                return Err(format!(
                    "wake model {name:?} is named twice in wake_models; name each model once"
                ));
            }
            let manifest = Manifest::beside(path)?;
            let window =
                window.unwrap_or(manifest.map_or(DEFAULT_WINDOW, |m| m.sliding_window_size));
            let model = StreamingModel::load(&lib, path)?;
            if model.features() != FEATURES {
                return Err(format!(
                    "{} takes {} features per frame; microWakeWord's frontend makes {FEATURES}",
                    path.display(),
                    model.features()
                ));
            }
            wakes.push(Wake {
                name,
                input: Vec::with_capacity(model.frames() * FEATURES),
                model,
                outputs: VecDeque::with_capacity(window),
                window,
            });
        }
        let mut engine = MicroWakeWord {
            frontend: Frontend::new(),
            wakes,
            pending: Vec::with_capacity(STEP),
            frames: Vec::new(),
            library: library.to_owned(),
            version: lib.version(),
        };
        // One chunk through every model, so the first real one is not slower.
        engine.push(&[0.0; CHUNK])?;
        engine.reset()?;
        Ok(engine)
    }

    /// The names of the wake models, e.g. `alexa`, in configuration order.
    pub fn models(&self) -> Vec<String> {
        self.wakes.iter().map(|w| w.name.clone()).collect()
    }

    /// The TFLite library's version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Forgets the audio heard so far: the frontend's noise estimate, each model's state.
    pub fn reset(&mut self) -> Result<(), String> {
        self.pending.clear();
        self.frontend.reset();
        self.wakes.iter_mut().try_for_each(Wake::reset)
    }

    /// Feeds samples (16 kHz, 16-bit scale); returns the scores at every point where a
    /// model ran (each model's latest mean), in [`MicroWakeWord::models`] order.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<Scored>, String> {
        let mut scored = Vec::new();
        for (i, &s) in samples.iter().enumerate() {
            self.pending.push(s.round().clamp(-32768.0, 32767.0) as i16);
            // A frame ends only at a step's end: the frontend's window moves by STEP.
            if self.pending.len() == STEP && self.step()? {
                scored.push(Scored {
                    at: i + 1,
                    scores: self.wakes.iter().map(Wake::mean).collect(),
                });
            }
        }
        Ok(scored)
    }

    /// One step of audio through the frontend and the models; true when a model gave a
    /// new mean.
    fn step(&mut self) -> Result<bool, String> {
        self.frames.clear();
        self.frontend.push(&self.pending, &mut self.frames);
        self.pending.clear();
        let mut ran = false;
        for frame in &self.frames {
            for wake in &mut self.wakes {
                ran |= wake.frame(frame)?;
            }
        }
        Ok(ran)
    }
}
