//! The speech-embedding model, run as a stream.
//!
//! openWakeWord embeds the last 76 mel frames every 80 ms (8 new frames). The model's time
//! axis has only unpadded convolutions and three max-pools of stride 2 (8 in all), so a
//! window 8 frames later shares all but the newest positions of every layer with the one
//! before. [`Streaming`] cuts the model at those pools into four pieces (from the stock
//! `embedding_model.onnx`, at load), keeps each piece's input of the previous window and
//! runs every piece only on the positions that are new: about a ninth of the arithmetic of
//! the whole window, with the same result.
//!
//! A model of another shape is run whole, window by window.

use std::collections::VecDeque;
use std::ops::Range;
use std::path::Path;

use ort::session::Session;
use ort::value::Tensor;
use prost::Message;

use crate::onnx_split::{ModelProto, NodeProto, piece};

/// Mel bins per frame, and with the model's zero padding on either side.
const BINS: usize = 32;
const PADDED: usize = BINS + 2;
pub const DIM: usize = 96;

/// One piece of the model: its session and its time geometry.
struct Stage {
    session: Session,
    /// Input positions of a whole window.
    whole: usize,
    /// Input positions needed for the new outputs of one step.
    context: usize,
}

/// Positions of one stage input: each `channels × freq` values, channel-major.
#[derive(Default)]
struct Positions {
    slices: VecDeque<Vec<f32>>,
    channels: usize,
    freq: usize,
}

impl Positions {
    /// The last `n` positions as a `[1, C, n, F]` tensor.
    fn tensor(&self, n: usize) -> Result<Tensor<f32>, String> {
        let (c, f) = (self.channels, self.freq);
        let start = self.slices.len() - n;
        let mut data = vec![0.0; c * n * f];
        for (t, slice) in self.slices.iter().skip(start).enumerate() {
            for ch in 0..c {
                data[ch * n * f + t * f..ch * n * f + (t + 1) * f]
                    .copy_from_slice(&slice[ch * f..(ch + 1) * f]);
            }
        }
        Tensor::from_array(([1usize, c, n, f], data)).map_err(|e| e.to_string())
    }

    /// Appends the positions of a `[1, C, T, F]` output, keeping the last `keep`.
    fn push(&mut self, shape: &[i64], data: &[f32], keep: usize) {
        let [_, c, t, f] = [shape[0], shape[1], shape[2], shape[3]].map(|d| d as usize);
        self.channels = c;
        self.freq = f;
        for ti in 0..t {
            let mut slice = Vec::with_capacity(c * f);
            for ch in 0..c {
                slice.extend_from_slice(&data[ch * t * f + ti * f..ch * t * f + (ti + 1) * f]);
            }
            self.slices.push_back(slice);
        }
        let excess = self.slices.len().saturating_sub(keep);
        self.slices.drain(..excess);
    }
}

/// The embedding model cut at its time pools.
pub struct Streaming {
    stages: Vec<Stage>,
    /// The input positions of stages 1.. for the current window.
    levels: Vec<Positions>,
    /// The levels hold the previous window.
    valid: bool,
    /// Frames the window moves by.
    step: usize,
}

impl std::fmt::Debug for Streaming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let geometry: Vec<(usize, usize)> =
            self.stages.iter().map(|s| (s.whole, s.context)).collect();
        f.debug_struct("Streaming")
            .field("stages", &geometry)
            .field("valid", &self.valid)
            .finish_non_exhaustive()
    }
}

/// Why the model cannot be streamed, for the log.
type Unsupported = String;

/// Time geometry of the nodes `range`: (positions lost to unpadded convolutions, time
/// stride of a final pool), or why the piece is not a plain stack.
fn geometry(nodes: &[NodeProto], last: bool) -> Result<(usize, usize), Unsupported> {
    let mut lost = 0;
    let mut stride = 1;
    for (i, n) in nodes.iter().enumerate() {
        match n.op_type.as_str() {
            "Conv" => {
                let kernel = n.ints("kernel_shape").unwrap_or_default();
                let ones = |name| n.ints(name).is_none_or(|v| v.iter().all(|&x| x == 1));
                let time_pads = n
                    .ints("pads")
                    .is_none_or(|p| p.len() == 4 && p[0] == 0 && p[2] == 0);
                if kernel.len() != 2 || !ones("strides") || !ones("dilations") || !time_pads {
                    return Err(format!(
                        "convolution {} is not a plain stride-1 one",
                        n.name
                    ));
                }
                lost += kernel[0] as usize - 1;
            }
            "MaxPool" => {
                let kernel = n.ints("kernel_shape").unwrap_or_default();
                let strides = n.ints("strides").unwrap_or_default();
                match (kernel.first(), strides.first()) {
                    (Some(1), Some(1)) => {}
                    (Some(2), Some(2)) if i + 1 == nodes.len() && !last => stride = 2,
                    _ => return Err(format!("max-pool {} pools time unexpectedly", n.name)),
                }
            }
            "Relu" | "LeakyRelu" | "BatchNormalization" | "Max" => {}
            "Reshape" if last && i + 1 == nodes.len() => {}
            other => return Err(format!("operator {other} is not supported for streaming")),
        }
    }
    Ok((lost, stride))
}

impl Streaming {
    /// Cuts `model` (openWakeWord's `embedding_model.onnx`) into streaming pieces for
    /// windows of `window` frames moving by `step`.
    pub fn load(
        model: &Path,
        onnxruntime: &Path,
        window: usize,
        step: usize,
    ) -> Result<Streaming, Unsupported> {
        let bytes = std::fs::read(model).map_err(|e| e.to_string())?;
        let proto = ModelProto::decode(bytes.as_slice()).map_err(|e| e.to_string())?;
        let graph = proto.graph.as_ref().ok_or("no graph")?;
        let nodes = &graph.node;
        // The model opens with the frequency padding and a reshape to NCHW, done here.
        let first_conv = nodes
            .iter()
            .position(|n| n.op_type == "Conv")
            .ok_or("no convolution")?;
        let head: Vec<&str> = nodes[..first_conv]
            .iter()
            .map(|n| n.op_type.as_str())
            .collect();
        if head != ["Pad", "Reshape"] {
            return Err(format!("the model opens with {head:?}, not [Pad, Reshape]"));
        }
        let pools: Vec<usize> = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                n.op_type == "MaxPool" && n.ints("strides").and_then(|s| s.first()) == Some(&2)
            })
            .map(|(i, _)| i)
            .collect();
        let output = graph.output.first().ok_or("no output")?.name.clone();
        let mut ranges: Vec<(Range<usize>, String, String)> = Vec::new();
        let mut start = first_conv;
        let mut input = nodes[first_conv].input.first().cloned().ok_or("no input")?;
        for &p in &pools {
            let out = nodes[p].output.first().cloned().ok_or("no pool output")?;
            ranges.push((start..p + 1, input, out.clone()));
            start = p + 1;
            input = out;
        }
        ranges.push((start..nodes.len(), input, output));

        let mut stages = Vec::new();
        let window_step = step;
        let (mut whole, mut step) = (window, step);
        for (i, (range, input, output)) in ranges.iter().enumerate() {
            let last = i + 1 == ranges.len();
            let (lost, stride) = geometry(&nodes[range.clone()], last)?;
            let after = whole.checked_sub(lost).ok_or("the window is too short")?;
            if after % stride != 0 || (!last && step % stride != 0) {
                return Err("the pools do not line up with the window step".to_owned());
            }
            let context = if last { whole } else { step + lost };
            if last && after != 1 {
                return Err(format!("the model ends with {after} positions, not 1"));
            }
            let session = voicehost_onnx::builder(onnxruntime, "voicehost-kwd", 1)?
                .commit_from_memory(&piece(&proto, range.clone(), input, output))
                .map_err(|e| format!("piece {i}: {e}"))?;
            stages.push(Stage {
                session,
                whole,
                context,
            });
            whole = after / stride;
            step /= stride;
        }
        Ok(Streaming {
            levels: (1..stages.len()).map(|_| Positions::default()).collect(),
            stages,
            valid: false,
            step: window_step,
        })
    }

    /// Forgets the previous window.
    pub fn invalidate(&mut self) {
        self.valid = false;
    }

    /// The embedding of `window` (76 mel frames); `new` frames arrived since the last call.
    pub fn embed(&mut self, window: &[[f32; BINS]], new: usize) -> Result<[f32; DIM], String> {
        let stream = self.valid && new == self.step && window.len() == self.stages[0].whole;
        let frames = if stream {
            self.stages[0].context
        } else {
            window.len()
        };
        let first = &window[window.len() - frames..];
        let mut data = vec![0.0; frames * PADDED];
        for (t, frame) in first.iter().enumerate() {
            data[t * PADDED + 1..t * PADDED + 1 + BINS].copy_from_slice(frame);
        }
        let mut x =
            Tensor::from_array(([1usize, 1, frames, PADDED], data)).map_err(|e| e.to_string())?;
        let n = self.stages.len();
        for i in 0..n {
            let (next_whole, next_context) = self
                .stages
                .get(i + 1)
                .map_or((0, 0), |s| (s.whole, s.context));
            let out = self.stages[i]
                .session
                .run(ort::inputs![x])
                .map_err(|e| format!("embedding piece {i}: {e}"))?;
            let (shape, values) = out[0]
                .try_extract_tensor::<f32>()
                .map_err(|e| format!("embedding piece {i}: {e}"))?;
            if i + 1 == n {
                let embedding: [f32; DIM] = values
                    .try_into()
                    .map_err(|_| format!("the embedding has {} values, not {DIM}", values.len()))?;
                self.valid = true;
                return Ok(embedding);
            }
            let level = &mut self.levels[i];
            level.push(&shape[..], values, next_whole);
            let take = if stream { next_context } else { next_whole };
            if level.slices.len() < take {
                return Err(format!("embedding piece {i} gave too few positions"));
            }
            x = level.tensor(take)?;
        }
        Err("the embedding model has no pieces".to_owned())
    }
}
