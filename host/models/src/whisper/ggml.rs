//! Reading a whisper.cpp ggml file back (header, vocabulary, tensor table), to check what
//! the converter wrote.

use super::{GGML_MAGIC, Hparams, q8_0};

/// What a ggml Whisper file holds, read back without the tensor data.
#[derive(Debug, Clone)]
pub struct GgmlSummary {
    pub hparams: Hparams,
    pub ftype: i32,
    pub mel: (usize, usize),
    pub vocab: Vec<Vec<u8>>,
    pub tensors: Vec<GgmlTensor>,
}

/// One tensor entry of a ggml file.
#[derive(Debug, Clone)]
pub struct GgmlTensor {
    pub name: String,
    /// Dimensions, innermost first.
    pub dims: Vec<usize>,
    /// 0 f32, 1 f16, 8 Q8_0.
    pub ttype: i32,
    /// Byte offset of the data in the file.
    pub offset: usize,
}

/// Reads a ggml Whisper file's header, vocabulary and tensor table.
pub fn read_ggml(bytes: &[u8]) -> Result<GgmlSummary, String> {
    let mut pos = 0usize;
    let i32_at = |pos: &mut usize| -> Result<i32, String> {
        let b = bytes
            .get(*pos..*pos + 4)
            .ok_or_else(|| format!("truncated at byte {pos}"))?;
        *pos += 4;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let to_usize = |x: i32| usize::try_from(x).map_err(|_| format!("negative size {x}"));
    if i32_at(&mut pos)? as u32 != GGML_MAGIC {
        return Err("not a ggml file (bad magic)".to_owned());
    }
    let mut h = [0usize; 10];
    for slot in &mut h {
        *slot = to_usize(i32_at(&mut pos)?)?;
    }
    let hparams = Hparams {
        n_vocab: h[0],
        n_audio_ctx: h[1],
        n_audio_state: h[2],
        n_audio_head: h[3],
        n_audio_layer: h[4],
        n_text_ctx: h[5],
        n_text_state: h[6],
        n_text_head: h[7],
        n_text_layer: h[8],
        n_mels: h[9],
    };
    let ftype = i32_at(&mut pos)?;
    let n_mel = to_usize(i32_at(&mut pos)?)?;
    let n_fft = to_usize(i32_at(&mut pos)?)?;
    pos += n_mel * n_fft * 4;
    let n_vocab = to_usize(i32_at(&mut pos)?)?;
    let mut vocab = Vec::with_capacity(n_vocab);
    for _ in 0..n_vocab {
        let len = to_usize(i32_at(&mut pos)?)?;
        let token = bytes.get(pos..pos + len).ok_or("truncated vocabulary")?;
        vocab.push(token.to_vec());
        pos += len;
    }
    let mut tensors = Vec::new();
    while pos < bytes.len() {
        let n_dims = to_usize(i32_at(&mut pos)?)?;
        let name_len = to_usize(i32_at(&mut pos)?)?;
        let ttype = i32_at(&mut pos)?;
        let dims = (0..n_dims)
            .map(|_| i32_at(&mut pos).and_then(to_usize))
            .collect::<Result<Vec<_>, _>>()?;
        let name = bytes
            .get(pos..pos + name_len)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .ok_or("truncated tensor name")?;
        pos += name_len;
        let n: usize = dims.iter().product();
        let size = match ttype {
            0 => n * 4,
            1 => n * 2,
            q8_0::GGML_TYPE if n.is_multiple_of(q8_0::BLOCK) => n / q8_0::BLOCK * q8_0::BLOCK_BYTES,
            _ => {
                return Err(format!(
                    "tensor {name} has type {ttype} and {n} values: not read"
                ));
            }
        };
        let offset = pos;
        pos += size;
        if pos > bytes.len() {
            return Err(format!("tensor {name} is truncated"));
        }
        tensors.push(GgmlTensor {
            name,
            dims,
            ttype,
            offset,
        });
    }
    Ok(GgmlSummary {
        hparams,
        ftype,
        mel: (n_mel, n_fft),
        vocab,
        tensors,
    })
}
