//! The converter's tensor writer: each CTranslate2 variable, or a row block of a fused
//! one, written as a ggml tensor record (f32, f16 or Q8_0), and the mapping from
//! CTranslate2's layer, attention, norm and MLP names to whisper.cpp's.

use std::collections::BTreeSet;
use std::io::Write;

use half::{bf16, f16};

use super::{Weights, WhisperError, q8_0, shape_error, var};
use crate::ct2::{Ct2Model, DType, Variable};

/// Output element type of a ggml tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Out {
    F32,
    /// f16, or the model's weight type ([`Weights`]) for a matrix (two dimensions).
    F16,
}

/// Writes ggml tensors from CTranslate2 variables and remembers which were used.
pub(super) struct Emitter<'a, W: Write> {
    pub(super) model: &'a Ct2Model,
    pub(super) out: W,
    pub(super) used: BTreeSet<String>,
    pub(super) progress: &'a mut dyn FnMut(u64),
    /// The type of the weight matrices.
    pub(super) weights: Weights,
}

impl<W: Write> Emitter<'_, W> {
    /// Writes `name` from `part` of `parts` equal row blocks of CTranslate2 variable `src`;
    /// `shape` replaces the source shape (same element count) when given.
    pub(super) fn tensor(
        &mut self,
        name: &str,
        src: &str,
        (part, parts): (usize, usize),
        shape: Option<&[usize]>,
        out: Out,
    ) -> Result<(), WhisperError> {
        let v = var(self.model, src)?;
        let values = self.values(src, v, part, parts)?;
        let mut dims: Vec<usize> = match shape {
            Some(s) => s.to_vec(),
            None => {
                let mut d = v.shape.clone();
                d[0] /= parts;
                d
            }
        };
        debug_assert_eq!(dims.iter().product::<usize>(), values.len());
        dims.reverse();
        // whisper.cpp's quantizer quantises every 2-D tensor but the conv biases and the
        // positional embeddings (which this converter writes as f32): the linear layers'
        // weights and the token embedding. Conv kernels (3-D) stay f16, as whisper.cpp
        // creates them.
        let q8 = out == Out::F16 && dims.len() == 2 && self.weights == Weights::Q8_0;
        if q8 && !dims[0].is_multiple_of(q8_0::BLOCK) {
            return Err(WhisperError::Q8Row {
                name: name.to_owned(),
                row: dims[0],
            });
        }
        let ftype: i32 = match out {
            _ if q8 => q8_0::GGML_TYPE,
            Out::F32 => 0,
            Out::F16 => 1,
        };
        let mut header = Vec::with_capacity(16 + 4 * dims.len() + name.len());
        for x in [dims.len() as i32, name.len() as i32, ftype] {
            header.extend_from_slice(&x.to_le_bytes());
        }
        for d in &dims {
            header.extend_from_slice(&(*d as i32).to_le_bytes());
        }
        header.extend_from_slice(name.as_bytes());
        self.out.write_all(&header)?;
        let mut data = Vec::with_capacity(values.len() * 4);
        match out {
            // Rows are whole blocks, so the blocks of the flat data are the rows' blocks.
            _ if q8 => q8_0::quantize(&values, &mut data),
            Out::F32 => values
                .iter()
                .for_each(|x| data.extend_from_slice(&x.to_le_bytes())),
            Out::F16 => values
                .iter()
                .for_each(|x| data.extend_from_slice(&f16::from_f32(*x).to_le_bytes())),
        }
        self.out.write_all(&data)?;
        (self.progress)((header.len() + data.len()) as u64);
        self.used.insert(src.to_owned());
        Ok(())
    }

    /// Elements of row block `part` of `parts` of `v`, as f32.
    fn values(
        &self,
        src: &str,
        v: &Variable,
        part: usize,
        parts: usize,
    ) -> Result<Vec<f32>, WhisperError> {
        if v.shape.is_empty() || !v.shape[0].is_multiple_of(parts) {
            return Err(shape_error(
                src,
                v,
                &format!("a first dimension divisible by {parts}"),
            ));
        }
        let block = v.len() / parts;
        let size = v.dtype.size();
        let raw = &self.model.data(v)[part * block * size..(part + 1) * block * size];
        let decode: fn(&[u8]) -> f32 = match v.dtype {
            DType::F32 => |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            DType::F16 => |b| f16::from_le_bytes([b[0], b[1]]).to_f32(),
            DType::BF16 => |b| bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            other => return Err(WhisperError::DType(src.to_owned(), other)),
        };
        Ok(raw.chunks_exact(size).map(decode).collect())
    }

    /// Marks row block `part` of a fused bias as used after checking it is all zeros.
    fn zero_bias(&mut self, src: &str, part: usize, parts: usize) -> Result<(), WhisperError> {
        let v = var(self.model, src)?;
        let max = self
            .values(src, v, part, parts)?
            .iter()
            .fold(0f32, |m, x| m.max(x.abs()));
        if max > 1e-6 {
            return Err(WhisperError::KeyBias(src.to_owned(), max));
        }
        self.used.insert(src.to_owned());
        Ok(())
    }

    /// A linear layer: `weight` (f16 or Q8_0) and `bias` (f32), optionally a row block of a
    /// fused one.
    fn linear(&mut self, dst: &str, src: &str, part: (usize, usize)) -> Result<(), WhisperError> {
        self.tensor(
            &format!("{dst}.weight"),
            &format!("{src}/weight"),
            part,
            None,
            Out::F16,
        )?;
        self.tensor(
            &format!("{dst}.bias"),
            &format!("{src}/bias"),
            part,
            None,
            Out::F32,
        )
    }

    pub(super) fn layer_norm(&mut self, dst: &str, src: &str) -> Result<(), WhisperError> {
        let whole = (0, 1);
        self.tensor(
            &format!("{dst}.weight"),
            &format!("{src}/gamma"),
            whole,
            None,
            Out::F32,
        )?;
        self.tensor(
            &format!("{dst}.bias"),
            &format!("{src}/beta"),
            whole,
            None,
            Out::F32,
        )
    }

    /// Self-attention with fused Q,K,V plus its layer norm.
    pub(super) fn self_attention(&mut self, dst: &str, src: &str) -> Result<(), WhisperError> {
        let src = format!("{src}/self_attention");
        self.layer_norm(&format!("{dst}.attn_ln"), &format!("{src}/layer_norm"))?;
        let qkv = format!("{src}/linear_0");
        self.linear(&format!("{dst}.attn.query"), &qkv, (0, 3))?;
        self.tensor(
            &format!("{dst}.attn.key.weight"),
            &format!("{qkv}/weight"),
            (1, 3),
            None,
            Out::F16,
        )?;
        self.zero_bias(&format!("{qkv}/bias"), 1, 3)?;
        self.linear(&format!("{dst}.attn.value"), &qkv, (2, 3))?;
        self.linear(
            &format!("{dst}.attn.out"),
            &format!("{src}/linear_1"),
            (0, 1),
        )
    }

    pub(super) fn ffn(&mut self, dst: &str, src: &str) -> Result<(), WhisperError> {
        self.layer_norm(&format!("{dst}.mlp_ln"), &format!("{src}/ffn/layer_norm"))?;
        self.linear(
            &format!("{dst}.mlp.0"),
            &format!("{src}/ffn/linear_0"),
            (0, 1),
        )?;
        self.linear(
            &format!("{dst}.mlp.2"),
            &format!("{src}/ffn/linear_1"),
            (0, 1),
        )
    }

    pub(super) fn cross_attention(&mut self, dst: &str, src: &str) -> Result<(), WhisperError> {
        let src = format!("{src}/attention");
        self.layer_norm(
            &format!("{dst}.cross_attn_ln"),
            &format!("{src}/layer_norm"),
        )?;
        self.linear(
            &format!("{dst}.cross_attn.query"),
            &format!("{src}/linear_0"),
            (0, 1),
        )?;
        let kv = format!("{src}/linear_1");
        self.tensor(
            &format!("{dst}.cross_attn.key.weight"),
            &format!("{kv}/weight"),
            (0, 2),
            None,
            Out::F16,
        )?;
        self.zero_bias(&format!("{kv}/bias"), 0, 2)?;
        self.linear(&format!("{dst}.cross_attn.value"), &kv, (1, 2))?;
        self.linear(
            &format!("{dst}.cross_attn.out"),
            &format!("{src}/linear_2"),
            (0, 1),
        )
    }
}
