//! openWakeWord in streaming form: 16 kHz audio → melspectrogram → speech embedding →
//! wake classifiers, one score per model for every 80 ms chunk.
//!
//! The state machine follows openwakeword 0.4.0's `Model.predict`, so the same audio gives
//! the same scores:
//! - each 1280-sample chunk is turned into mel frames together with the 480 samples before
//!   it (3 hops of overlap), scaled as `x / 10 + 2`;
//! - the mel history starts as 76 frames of ones, the embedding history as the embeddings
//!   of 10 s of silence;
//! - every chunk adds one embedding of the last 76 mel frames; a classifier sees its last
//!   `n` embeddings (16 for the released models);
//! - the first five chunks after a reset score 0 (the histories are still mostly filler).
//!
//! Samples are `f32` on the 16-bit scale (−32768 … 32767), as the models were trained.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::Tensor;

use crate::embedding::Streaming;
use crate::micro::engine::MicroWakeWord;

/// Sample rate the models expect.
pub const RATE: u32 = 16_000;
/// Samples per chunk: 80 ms.
pub const CHUNK: usize = 1280;
/// The wake models' scores at one point of the audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Where: how many samples of the `push` that returned it had been consumed (the
    /// scores are of the audio up to there).
    pub at: usize,
    /// One per model, in [`Engine::models`] order.
    pub scores: Vec<f32>,
}

/// Samples of the previous chunk that the mel frames of a chunk also see.
const OVERLAP: usize = 480;
const MEL_BINS: usize = 32;
/// Mel frames per embedding window.
const MEL_WINDOW: usize = 76;
/// Mel frames between embedding windows (one chunk).
const MEL_STEP: usize = 8;
const EMBEDDING: usize = 96;
/// Chunks after a reset whose scores are forced to 0.
const WARMUP_CHUNKS: u64 = 5;
/// Silence the embedding history is primed with, as openWakeWord does.
const PRIME_SAMPLES: usize = 10 * RATE as usize;

/// Which wake-word engine runs (`[kwd] engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EngineKind {
    /// openWakeWord (ONNX models; the released ones are CC BY-NC-SA 4.0).
    #[default]
    OpenWakeWord,
    /// microWakeWord (TensorFlow Lite models; Apache-2.0).
    MicroWakeWord,
}

impl EngineKind {
    /// Its `[kwd] engine` value, as `GetState` reports it.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::OpenWakeWord => "openwakeword",
            EngineKind::MicroWakeWord => "microwakeword",
        }
    }
}

/// Which engine, and where its models are.
#[derive(Debug, Clone)]
pub struct ModelPaths {
    pub engine: EngineKind,
    pub onnxruntime: PathBuf,
    pub melspectrogram: PathBuf,
    pub embedding: PathBuf,
    /// The TensorFlow Lite C library (microWakeWord).
    pub tflite: PathBuf,
    pub wake: Vec<PathBuf>,
    /// microWakeWord: how many of a model's latest outputs (30 ms apart) are averaged into
    /// its score; `None`: its manifest's `sliding_window_size`.
    pub micro_window: Option<usize>,
}

/// One wake-word classifier.
struct Classifier {
    name: String,
    input: String,
    /// Embeddings it looks at.
    frames: usize,
    session: Session,
}

/// The wake-word engine `[kwd] engine` names, with its models and streaming state.
#[derive(Debug)]
pub enum Engine {
    OpenWakeWord(Box<OpenWakeWord>),
    MicroWakeWord(MicroWakeWord),
}

impl Engine {
    /// Loads the engine `paths` names, with its models.
    pub fn load(paths: &ModelPaths) -> Result<Engine, String> {
        Ok(match paths.engine {
            EngineKind::OpenWakeWord => Engine::OpenWakeWord(Box::new(OpenWakeWord::load(paths)?)),
            EngineKind::MicroWakeWord => Engine::MicroWakeWord(
                MicroWakeWord::load(&paths.tflite, &paths.wake, paths.micro_window)
                    .map_err(|e| format!("microWakeWord: {e}"))?,
            ),
        })
    }

    /// The names of the wake models, e.g. `alexa_v0.1` or `alexa`, in configuration order.
    pub fn models(&self) -> Vec<String> {
        match self {
            Engine::OpenWakeWord(e) => e.models(),
            Engine::MicroWakeWord(e) => e.models(),
        }
    }

    /// Forgets the audio heard so far, as after a gap in the stream.
    pub fn reset(&mut self) -> Result<(), String> {
        match self {
            Engine::OpenWakeWord(e) => {
                e.reset();
                Ok(())
            }
            Engine::MicroWakeWord(e) => e.reset().map_err(|e| format!("microWakeWord: {e}")),
        }
    }

    /// Feeds samples (16 kHz, 16-bit scale); returns the scores at every point the engine
    /// scored: the end of each 80 ms chunk for openWakeWord, of each model step (30 ms)
    /// for microWakeWord — the finer the step, the sooner a detection fires.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<Scored>, String> {
        match self {
            Engine::OpenWakeWord(e) => e.push(samples),
            Engine::MicroWakeWord(e) => e.push(samples).map_err(|e| format!("microWakeWord: {e}")),
        }
    }

    /// Audio per message to ask of stt (ms): openWakeWord's chunk (80 ms), so the
    /// listener wakes once per chunk; 10 ms for microWakeWord, which scores every 30 ms
    /// and would otherwise wait for the rest of an 80 ms message.
    pub fn frame_ms(&self) -> u32 {
        match self {
            Engine::OpenWakeWord(_) => (CHUNK as u32) * 1000 / RATE,
            Engine::MicroWakeWord(_) => 10,
        }
    }

    /// Whether openWakeWord's embedding model runs as a stream (see [`crate::embedding`]);
    /// false for microWakeWord, whose models always stream.
    pub fn streaming(&self) -> bool {
        matches!(self, Engine::OpenWakeWord(e) if e.streaming())
    }

    /// openWakeWord: runs the embedding model whole for every window instead of as a
    /// stream (to compare the two). Nothing for microWakeWord.
    pub fn set_streaming(&mut self, on: bool) {
        if let Engine::OpenWakeWord(e) = self {
            e.set_streaming(on);
        }
    }

    /// Which engine it is.
    pub fn kind(&self) -> EngineKind {
        match self {
            Engine::OpenWakeWord(_) => EngineKind::OpenWakeWord,
            Engine::MicroWakeWord(_) => EngineKind::MicroWakeWord,
        }
    }

    /// The engine's name and what it runs on, for the log.
    pub fn describe(&self) -> String {
        match self {
            Engine::OpenWakeWord(e) => format!(
                "openWakeWord (embedding model {})",
                if e.streaming() { "streamed" } else { "whole" }
            ),
            Engine::MicroWakeWord(e) => format!("microWakeWord (TensorFlow Lite {})", e.version()),
        }
    }
}

/// openWakeWord's feature models and every classifier, with their streaming state.
pub struct OpenWakeWord {
    mel: Session,
    /// The whole embedding model: priming, and every window when it cannot be streamed.
    embedding: Session,
    /// The same model cut for streaming, used when it could be cut.
    streaming: Option<Streaming>,
    /// Use `streaming` (on by default when available).
    stream: bool,
    classifiers: Vec<Classifier>,
    /// Embeddings of silence, the start of the embedding history after a reset.
    primed: Vec<[f32; EMBEDDING]>,
    /// Samples not yet a whole chunk.
    pending: Vec<f32>,
    /// The last `OVERLAP + CHUNK` samples (fewer right after a reset).
    history: Vec<f32>,
    mels: VecDeque<[f32; MEL_BINS]>,
    embeddings: VecDeque<[f32; EMBEDDING]>,
    /// Chunks scored since the last reset.
    chunks: u64,
}

impl std::fmt::Debug for OpenWakeWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenWakeWord")
            .field("models", &self.models())
            .field("chunks", &self.chunks)
            .finish_non_exhaustive()
    }
}

/// The one input and output of `session`, with the input's shape, or why not.
fn single_io(session: &Session, model: &Path) -> Result<(String, Vec<i64>), String> {
    let (inputs, outputs) = (session.inputs(), session.outputs());
    if inputs.len() != 1 || outputs.len() != 1 {
        return Err(format!(
            "{} has {} inputs and {} outputs; an openWakeWord model has one of each",
            model.display(),
            inputs.len(),
            outputs.len()
        ));
    }
    let shape = inputs[0]
        .dtype()
        .tensor_shape()
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    Ok((inputs[0].name().to_owned(), shape))
}

impl OpenWakeWord {
    /// Loads the feature models and the classifiers, checking their shapes.
    pub fn load(paths: &ModelPaths) -> Result<OpenWakeWord, String> {
        let session = |model: &Path| {
            voicehost_onnx::session(
                &paths.onnxruntime,
                "voicehost-kwd",
                model,
                "openwakeword",
                1,
            )
        };
        let mel = session(&paths.melspectrogram)?;
        let (_, shape) = single_io(&mel, &paths.melspectrogram)?;
        if shape.len() != 2 {
            return Err(format!(
                "{} takes a {}-d input; openWakeWord's melspectrogram model takes [batch, samples]",
                paths.melspectrogram.display(),
                shape.len()
            ));
        }
        let embedding = session(&paths.embedding)?;
        let (_, shape) = single_io(&embedding, &paths.embedding)?;
        if shape.get(1..) != Some(&[MEL_WINDOW as i64, MEL_BINS as i64, 1]) {
            return Err(format!(
                "{} takes {shape:?}; openWakeWord's embedding model takes [n, 76, 32, 1]",
                paths.embedding.display()
            ));
        }
        if paths.wake.is_empty() {
            return Err("no wake model given; name at least one in wake_models".to_owned());
        }
        let mut classifiers = Vec::new();
        for path in &paths.wake {
            let session = session(path)?;
            let (input, shape) = single_io(&session, path)?;
            let frames = match shape.as_slice() {
                [1, n, d] if *n > 0 && *d == EMBEDDING as i64 => *n as usize,
                _ => {
                    return Err(format!(
                        "{} takes {shape:?}; a wake model takes [1, n, 96] speech embeddings",
                        path.display()
                    ));
                }
            };
            let name = model_name(path);
            if classifiers.iter().any(|c: &Classifier| c.name == name) {
                return Err(format!(
                    "wake model {name:?} is named twice in wake_models; name each model once"
                ));
            }
            classifiers.push(Classifier {
                name,
                input,
                frames,
                session,
            });
        }
        let streaming =
            match Streaming::load(&paths.embedding, &paths.onnxruntime, MEL_WINDOW, MEL_STEP) {
                Ok(s) => Some(s),
                Err(why) => {
                    tracing::warn!(
                        model = %paths.embedding.display(),
                        reason = %why,
                        "The embedding model runs whole for every window"
                    );
                    None
                }
            };
        let mut engine = OpenWakeWord {
            mel,
            embedding,
            stream: streaming.is_some(),
            streaming,
            classifiers,
            primed: Vec::new(),
            pending: Vec::new(),
            history: Vec::new(),
            mels: VecDeque::new(),
            embeddings: VecDeque::new(),
            chunks: 0,
        };
        engine.primed = engine.prime().map_err(|e| format!("openWakeWord: {e}"))?;
        engine.reset();
        // One chunk through every model, so the first real one is not slower.
        engine
            .push(&[0.0; CHUNK])
            .map_err(|e| format!("openWakeWord: {e}"))?;
        engine.reset();
        Ok(engine)
    }

    /// The names of the wake models, e.g. `alexa_v0.1`, in configuration order.
    pub fn models(&self) -> Vec<String> {
        self.classifiers.iter().map(|c| c.name.clone()).collect()
    }

    /// Forgets the audio heard so far, as after a gap in the stream.
    pub fn reset(&mut self) {
        self.pending.clear();
        self.history.clear();
        self.mels = std::iter::repeat_n([1.0; MEL_BINS], MEL_WINDOW).collect();
        self.embeddings = self.primed.iter().copied().collect();
        self.chunks = 0;
        if let Some(s) = &mut self.streaming {
            s.invalidate();
        }
    }

    /// Whether the embedding model runs as a stream (see [`crate::embedding`]).
    pub fn streaming(&self) -> bool {
        self.stream
    }

    /// Runs the embedding model whole for every window instead of as a stream (to compare
    /// the two); `true` goes back to streaming when the model could be cut.
    pub fn set_streaming(&mut self, on: bool) {
        self.stream = on && self.streaming.is_some();
        self.reset();
    }

    /// Feeds samples (16 kHz, 16-bit scale); returns the scores of every chunk completed,
    /// one per model in [`OpenWakeWord::models`] order.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<Scored>, String> {
        // Samples from an earlier push that the first chunk completes.
        let earlier = self.pending.len();
        self.pending.extend_from_slice(samples);
        let mut scored = Vec::new();
        let mut taken = 0;
        while self.pending.len() >= CHUNK {
            let chunk: Vec<f32> = self.pending.drain(..CHUNK).collect();
            taken += CHUNK;
            scored.push(Scored {
                at: taken - earlier,
                scores: self.chunk(&chunk)?,
            });
        }
        Ok(scored)
    }

    fn chunk(&mut self, chunk: &[f32]) -> Result<Vec<f32>, String> {
        self.history.extend_from_slice(chunk);
        let keep = self.history.len().saturating_sub(OVERLAP + CHUNK);
        self.history.drain(..keep);
        let history = std::mem::take(&mut self.history);
        let frames = self.melspectrogram(&history);
        self.history = history;
        let frames = frames?;
        let new = frames.len();
        self.mels.extend(frames);
        let excess = self.mels.len().saturating_sub(MEL_WINDOW);
        self.mels.drain(..excess);

        let embedding = match (&mut self.streaming, self.stream) {
            (Some(s), true) => vec![s.embed(self.mels.make_contiguous(), new)?],
            _ => {
                let window: Vec<f32> = self.mels.iter().flatten().copied().collect();
                self.embed(window, 1)?
            }
        };
        self.embeddings.extend(embedding);
        let longest = self.classifiers.iter().map(|c| c.frames).max().unwrap_or(0);
        let excess = self.embeddings.len().saturating_sub(longest);
        self.embeddings.drain(..excess);

        let warm = self.chunks >= WARMUP_CHUNKS;
        self.chunks += 1;
        let mut scores = Vec::with_capacity(self.classifiers.len());
        for c in &mut self.classifiers {
            let features: Vec<f32> = self
                .embeddings
                .iter()
                .skip(self.embeddings.len() - c.frames)
                .flatten()
                .copied()
                .collect();
            let input = Tensor::from_array(([1usize, c.frames, EMBEDDING], features))
                .map_err(|e| e.to_string())?;
            let out = c
                .session
                .run(ort::inputs![c.input.as_str() => input])
                .map_err(|e| format!("wake model {}: {e}", c.name))?;
            let (_, score) = out[0]
                .try_extract_tensor::<f32>()
                .map_err(|e| format!("wake model {}: {e}", c.name))?;
            let score = score.first().copied().unwrap_or(0.0);
            scores.push(if warm { score } else { 0.0 });
        }
        Ok(scores)
    }

    /// Mel frames of `samples`, scaled as openWakeWord does.
    fn melspectrogram(&mut self, samples: &[f32]) -> Result<Vec<[f32; MEL_BINS]>, String> {
        let input = Tensor::from_array(([1usize, samples.len()], samples.to_vec()))
            .map_err(|e| e.to_string())?;
        let out = self
            .mel
            .run(ort::inputs![input])
            .map_err(|e| format!("melspectrogram: {e}"))?;
        let (_, values) = out[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| format!("melspectrogram: {e}"))?;
        Ok(values
            .chunks_exact(MEL_BINS)
            .map(|frame| std::array::from_fn(|i| frame[i] / 10.0 + 2.0))
            .collect())
    }

    /// Embeddings of `n` windows of 76 mel frames laid out one after another.
    fn embed(&mut self, windows: Vec<f32>, n: usize) -> Result<Vec<[f32; EMBEDDING]>, String> {
        let input = Tensor::from_array(([n, MEL_WINDOW, MEL_BINS, 1], windows))
            .map_err(|e| e.to_string())?;
        let out = self
            .embedding
            .run(ort::inputs![input])
            .map_err(|e| format!("embedding: {e}"))?;
        let (_, values) = out[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| format!("embedding: {e}"))?;
        Ok(values
            .chunks_exact(EMBEDDING)
            .map(|e| std::array::from_fn(|i| e[i]))
            .collect())
    }

    /// The embeddings of 10 s of silence that the longest classifier sees at first: the
    /// last windows (step 8) of its mel frames.
    fn prime(&mut self) -> Result<Vec<[f32; EMBEDDING]>, String> {
        let mels = self.melspectrogram(&vec![0.0; PRIME_SAMPLES])?;
        let longest = self.classifiers.iter().map(|c| c.frames).max().unwrap_or(0);
        let starts: Vec<usize> = (0..=mels.len().saturating_sub(MEL_WINDOW))
            .step_by(MEL_STEP)
            .collect();
        let starts = &starts[starts.len().saturating_sub(longest)..];
        let windows: Vec<f32> = starts
            .iter()
            .flat_map(|&s| mels[s..s + MEL_WINDOW].iter().flatten().copied())
            .collect();
        self.embed(windows, starts.len())
    }
}

/// A wake model's name: its file name without `.onnx` or `.tflite`, e.g. `alexa_v0.1`.
pub fn model_name(path: &Path) -> String {
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
    let file = file.unwrap_or_default();
    let name = file.strip_suffix(".onnx");
    name.or_else(|| file.strip_suffix(".tflite"))
        .unwrap_or(&file)
        .to_owned()
}
