//! Converts Whisper weights from CTranslate2 (`model.bin`) to the ggml file whisper.cpp
//! (and so whisper-rs) loads.
//!
//! The ggml file is: magic `0x67676d6c`; eleven `i32` hyper-parameters; the mel filter bank
//! (`i32` n_mel, `i32` n_fft, f32 data) from openai-whisper's `mel_filters.npz`; the
//! vocabulary (`i32` count, then `i32` length + bytes per token) from its `.tiktoken` file;
//! then every tensor as `i32` rank, `i32` name length, `i32` type (0 f32, 1 f16), the dims
//! innermost first, the name and the data. Matrices are f16; biases, norms and positional
//! embeddings f32, as whisper.cpp expects.
//!
//! CTranslate2 fuses attention projections: self-attention Q,K,V are one `linear_0` (split in
//! three along the rows) and cross-attention K,V one `linear_1` (split in two). Whisper's key
//! projections have no bias; the fused bias holds zeros there, which are checked and dropped.

use std::collections::BTreeSet;
use std::io::{self, Write};

use half::{bf16, f16};

use super::ct2::{Ct2Model, DType, Variable};

mod assets;
mod ggml;

pub use assets::{MelFilters, WhisperAssets, mel_filters, npz_f32, parse_npy_f32, parse_tiktoken};
pub use ggml::{GgmlSummary, GgmlTensor, read_ggml};

pub(crate) const GGML_MAGIC: u32 = 0x6767_6d6c;
/// Vocabulary sizes from this one up use `multilingual.tiktoken`.
const MULTILINGUAL_VOCAB: usize = 51865;

#[derive(Debug, thiserror::Error)]
pub enum WhisperError {
    #[error("the CTranslate2 model has no variable `{0}`: it is not a Whisper model")]
    Missing(String),
    #[error("`{name}` has shape {shape:?}, expected {expected}")]
    Shape {
        name: String,
        shape: Vec<usize>,
        expected: String,
    },
    #[error(
        "`{0}` is stored as {1:?}; only float16/float32/bfloat16 models convert (quantised CTranslate2 models do not)"
    )]
    DType(String, DType),
    #[error("the fused key bias in `{0}` is not zero (max |x| = {1}): unexpected model layout")]
    KeyBias(String, f32),
    #[error("the CTranslate2 model has tensors the converter does not know: {0}")]
    Unknown(String),
    #[error("the model is a {0}, not a WhisperSpec")]
    Spec(String),
    #[error("no mel filter bank for {0} mel bins in mel_filters.npz")]
    NoMelFilters(usize),
    #[error("mel_filters.npz: {0}")]
    Npz(String),
    #[error("tiktoken vocabulary line {line}: {message}")]
    Tiktoken { line: usize, message: String },
    #[error("writing the ggml file: {0}")]
    Io(#[from] io::Error),
}

/// The hyper-parameters written to the ggml header, in file order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    pub n_vocab: usize,
    pub n_audio_ctx: usize,
    pub n_audio_state: usize,
    pub n_audio_head: usize,
    pub n_audio_layer: usize,
    pub n_text_ctx: usize,
    pub n_text_state: usize,
    pub n_text_head: usize,
    pub n_text_layer: usize,
    pub n_mels: usize,
}

impl Hparams {
    fn from_model(m: &Ct2Model) -> Result<Hparams, WhisperError> {
        let dims2 = |name: &str| -> Result<(usize, usize), WhisperError> {
            let v = var(m, name)?;
            match v.shape[..] {
                [a, b] => Ok((a, b)),
                _ => Err(shape_error(name, v, "2 dimensions")),
            }
        };
        let (n_vocab, n_text_state) = dims2("decoder/embeddings/weight")?;
        let (n_audio_ctx, n_audio_state) = dims2("encoder/position_encodings/encodings")?;
        let (n_text_ctx, _) = dims2("decoder/position_encodings/encodings")?;
        let conv1 = var(m, "encoder/conv1/weight")?;
        let n_mels = match conv1.shape[..] {
            [_, mels, 3] => mels,
            _ => {
                return Err(shape_error(
                    "encoder/conv1/weight",
                    conv1,
                    "[state, mels, 3]",
                ));
            }
        };
        let heads = |name: &str| {
            m.scalar_int(name)
                .and_then(|h| usize::try_from(h).ok())
                .filter(|&h| h > 0)
                .ok_or_else(|| WhisperError::Missing(name.to_owned()))
        };
        let layers = |prefix: &str| {
            (0..)
                .take_while(|i| {
                    m.get(&format!("{prefix}/layer_{i}/ffn/linear_0/weight"))
                        .is_some()
                })
                .count()
        };
        Ok(Hparams {
            n_vocab,
            n_audio_ctx,
            n_audio_state,
            n_audio_head: heads("encoder/num_heads")?,
            n_audio_layer: layers("encoder"),
            n_text_ctx,
            n_text_state,
            n_text_head: heads("decoder/num_heads")?,
            n_text_layer: layers("decoder"),
            n_mels,
        })
    }

    fn to_array(self) -> [usize; 10] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
        ]
    }
}

fn var<'m>(m: &'m Ct2Model, name: &str) -> Result<&'m Variable, WhisperError> {
    m.get(name)
        .ok_or_else(|| WhisperError::Missing(name.to_owned()))
}

fn shape_error(name: &str, v: &Variable, expected: &str) -> WhisperError {
    WhisperError::Shape {
        name: name.to_owned(),
        shape: v.shape.clone(),
        expected: expected.to_owned(),
    }
}

/// Output element type of a ggml tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    F32,
    F16,
}

/// Writes ggml tensors from CTranslate2 variables and remembers which were used.
struct Emitter<'a, W: Write> {
    model: &'a Ct2Model,
    out: W,
    used: BTreeSet<String>,
    progress: &'a mut dyn FnMut(u64),
}

impl<W: Write> Emitter<'_, W> {
    /// Writes `name` from `part` of `parts` equal row blocks of CTranslate2 variable `src`;
    /// `shape` replaces the source shape (same element count) when given.
    fn tensor(
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
        let ftype: i32 = match out {
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

    /// A linear layer: `weight` (f16) and `bias` (f32), optionally a row block of a fused one.
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

    fn layer_norm(&mut self, dst: &str, src: &str) -> Result<(), WhisperError> {
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
    fn self_attention(&mut self, dst: &str, src: &str) -> Result<(), WhisperError> {
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

    fn ffn(&mut self, dst: &str, src: &str) -> Result<(), WhisperError> {
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

    fn cross_attention(&mut self, dst: &str, src: &str) -> Result<(), WhisperError> {
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

/// Converts `model` to ggml, writing to `out`; `progress` gets the bytes of each tensor
/// written. Returns the hyper-parameters.
pub fn convert(
    model: &Ct2Model,
    assets: &WhisperAssets,
    out: impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<Hparams, WhisperError> {
    if model.spec != "WhisperSpec" {
        return Err(WhisperError::Spec(model.spec.clone()));
    }
    let hp = Hparams::from_model(model)?;
    let filters = assets
        .mel_filters
        .get(&hp.n_mels)
        .ok_or(WhisperError::NoMelFilters(hp.n_mels))?;
    let vocab = if hp.n_vocab >= MULTILINGUAL_VOCAB {
        &assets.multilingual
    } else {
        &assets.gpt2
    };

    let mut e = Emitter {
        model,
        out,
        used: BTreeSet::new(),
        progress,
    };
    let mut head = Vec::new();
    head.extend_from_slice(&GGML_MAGIC.to_le_bytes());
    for x in hp.to_array() {
        head.extend_from_slice(&(x as i32).to_le_bytes());
    }
    head.extend_from_slice(&1i32.to_le_bytes()); // ftype: f16
    head.extend_from_slice(&(filters.n_mel as i32).to_le_bytes());
    head.extend_from_slice(&(filters.n_fft as i32).to_le_bytes());
    filters
        .data
        .iter()
        .for_each(|x| head.extend_from_slice(&x.to_le_bytes()));
    head.extend_from_slice(&(vocab.len() as i32).to_le_bytes());
    for token in vocab {
        head.extend_from_slice(&(token.len() as i32).to_le_bytes());
        head.extend_from_slice(token);
    }
    e.out.write_all(&head)?;
    (e.progress)(head.len() as u64);

    let whole = (0, 1);
    e.tensor(
        "encoder.positional_embedding",
        "encoder/position_encodings/encodings",
        whole,
        None,
        Out::F32,
    )?;
    for conv in ["conv1", "conv2"] {
        e.tensor(
            &format!("encoder.{conv}.weight"),
            &format!("encoder/{conv}/weight"),
            whole,
            None,
            Out::F16,
        )?;
        // whisper.cpp keeps conv biases as [n_state, 1] matrices.
        e.tensor(
            &format!("encoder.{conv}.bias"),
            &format!("encoder/{conv}/bias"),
            whole,
            Some(&[hp.n_audio_state, 1]),
            Out::F32,
        )?;
    }
    for i in 0..hp.n_audio_layer {
        let (dst, src) = (format!("encoder.blocks.{i}"), format!("encoder/layer_{i}"));
        e.self_attention(&dst, &src)?;
        e.ffn(&dst, &src)?;
    }
    e.layer_norm("encoder.ln_post", "encoder/layer_norm")?;

    e.tensor(
        "decoder.positional_embedding",
        "decoder/position_encodings/encodings",
        whole,
        None,
        Out::F32,
    )?;
    e.tensor(
        "decoder.token_embedding.weight",
        "decoder/embeddings/weight",
        whole,
        None,
        Out::F16,
    )?;
    for i in 0..hp.n_text_layer {
        let (dst, src) = (format!("decoder.blocks.{i}"), format!("decoder/layer_{i}"));
        e.self_attention(&dst, &src)?;
        e.cross_attention(&dst, &src)?;
        e.ffn(&dst, &src)?;
    }
    e.layer_norm("decoder.ln", "decoder/layer_norm")?;
    e.out.flush()?;

    // Every array must have found its place; scalars are attributes (heads, flags).
    let unknown: Vec<&str> = model
        .names()
        .filter(|n| !e.used.contains(*n))
        .filter(|n| model.get(n).is_some_and(|v| !v.shape.is_empty()))
        .collect();
    if !unknown.is_empty() {
        return Err(WhisperError::Unknown(unknown.join(", ")));
    }
    Ok(hp)
}

#[cfg(test)]
mod tests;
