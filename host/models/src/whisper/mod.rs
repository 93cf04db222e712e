//! Converts Whisper weights from CTranslate2 (`model.bin`) to the ggml file whisper.cpp
//! (and so whisper-rs) loads.
//!
//! The ggml file is: magic `0x67676d6c`; eleven `i32` hyper-parameters; the mel filter bank
//! (`i32` n_mel, `i32` n_fft, f32 data) from openai-whisper's `mel_filters.npz`; the
//! vocabulary (`i32` count, then `i32` length + bytes per token) from its `.tiktoken` file;
//! then every tensor as `i32` rank, `i32` name length, `i32` type (0 f32, 1 f16, 8 Q8_0),
//! the dims innermost first, the name and the data. Matrices are f16 ([`Weights::F16`], file
//! ftype 1) or Q8_0 ([`Weights::Q8_0`], ftype 2007, the tensors whisper.cpp's quantizer
//! quantises); conv kernels f16; biases, norms and positional embeddings f32, as whisper.cpp
//! expects.
//!
//! CTranslate2 fuses attention projections: self-attention Q,K,V are one `linear_0` (split in
//! three along the rows) and cross-attention K,V one `linear_1` (split in two). Whisper's key
//! projections have no bias; the fused bias holds zeros there, which are checked and dropped.

use std::collections::BTreeSet;
use std::io::{self, Write};

// The tests (`use super::*`) build f16 data; the converter's own f16 work is in `tensors`.
#[cfg(test)]
use half::f16;

use super::ct2::{Ct2Model, DType, Variable};
use tensors::{Emitter, Out};

mod assets;
mod ggml;
pub mod q8_0;
mod tensors;

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
    #[error("`{name}` has rows of {row} values, not a multiple of 32: it cannot be stored as Q8_0")]
    Q8Row { name: String, row: usize },
    #[error("writing the ggml file: {0}")]
    Io(#[from] io::Error),
}

/// The type of the weight matrices of a converted model (whisper.cpp's `wtype`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Weights {
    /// f16, as CTranslate2 stores them.
    #[default]
    F16,
    /// ggml's Q8_0 (8-bit blocks of 32 with an f16 scale): about half the size.
    Q8_0,
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

/// Converts `model` to ggml with `weights` matrices, writing to `out`; `progress` gets the
/// bytes of each tensor written. Returns the hyper-parameters.
pub fn convert(
    model: &Ct2Model,
    assets: &WhisperAssets,
    weights: Weights,
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
        weights,
    };
    let mut head = Vec::new();
    head.extend_from_slice(&GGML_MAGIC.to_le_bytes());
    for x in hp.to_array() {
        head.extend_from_slice(&(x as i32).to_le_bytes());
    }
    let ftype = match weights {
        Weights::F16 => 1,
        Weights::Q8_0 => q8_0::FILE_FTYPE,
    };
    head.extend_from_slice(&ftype.to_le_bytes());
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
