//! The tokenizer and audio front-end data a whisper.cpp ggml file embeds, read from
//! openai-whisper's `mel_filters.npz` and `.tiktoken` files.

use std::collections::BTreeMap;
use std::io::{self, Read};

use super::WhisperError;

/// A mel filter bank `[n_mel, n_fft]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MelFilters {
    pub n_mel: usize,
    pub n_fft: usize,
    pub data: Vec<f32>,
}

/// The tokenizer and audio front-end data that the ggml file embeds.
#[derive(Debug, Clone, Default)]
pub struct WhisperAssets {
    /// Filter banks by mel-bin count (80, 128).
    pub mel_filters: BTreeMap<usize, MelFilters>,
    /// Tokens of `gpt2.tiktoken` (English-only models), in rank order.
    pub gpt2: Vec<Vec<u8>>,
    /// Tokens of `multilingual.tiktoken`, in rank order.
    pub multilingual: Vec<Vec<u8>>,
}

/// Reads the `<f4` array `name.npy` from an `.npz` archive: (shape, data).
pub fn npz_f32(npz: &[u8], name: &str) -> Result<(Vec<usize>, Vec<f32>), WhisperError> {
    let bad = |m: String| WhisperError::Npz(m);
    let mut archive =
        zip::ZipArchive::new(io::Cursor::new(npz)).map_err(|e| bad(format!("not a zip: {e}")))?;
    let mut file = archive
        .by_name(&format!("{name}.npy"))
        .map_err(|e| bad(format!("{name}.npy: {e}")))?;
    let mut npy = Vec::new();
    file.read_to_end(&mut npy)
        .map_err(|e| bad(format!("{name}.npy: {e}")))?;
    parse_npy_f32(&npy).map_err(|m| bad(format!("{name}.npy: {m}")))
}

/// Parses a NumPy `.npy` (format 1.x–3.x) holding little-endian f32 in C order.
pub fn parse_npy_f32(npy: &[u8]) -> Result<(Vec<usize>, Vec<f32>), String> {
    if npy.len() < 10 || &npy[..6] != b"\x93NUMPY" {
        return Err("not a .npy file".to_owned());
    }
    let (header_len, start) = match npy[6] {
        1 => (usize::from(u16::from_le_bytes([npy[8], npy[9]])), 10),
        2 | 3 if npy.len() >= 12 => (
            u32::from_le_bytes([npy[8], npy[9], npy[10], npy[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = npy
        .get(start..start + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or("truncated .npy header")?;
    if !header.contains("'descr': '<f4'") {
        return Err(format!(
            "expected little-endian float32 data, header {header}"
        ));
    }
    if header.contains("'fortran_order': True") {
        return Err("Fortran-ordered arrays are not supported".to_owned());
    }
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| format!("no shape in header {header}"))?;
    let shape = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|e| format!("shape {shape_text}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let data = &npy[start + header_len..];
    let count: usize = shape.iter().product();
    if data.len() != count * 4 {
        return Err(format!(
            "shape {shape:?} needs {} bytes of data, found {}",
            count * 4,
            data.len()
        ));
    }
    let values = data
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Ok((shape, values))
}

/// Reads the filter banks `mel_80` and, when present, `mel_128` from `mel_filters.npz`.
pub fn mel_filters(npz: &[u8]) -> Result<BTreeMap<usize, MelFilters>, WhisperError> {
    let mut out = BTreeMap::new();
    for n in [80, 128] {
        match npz_f32(npz, &format!("mel_{n}")) {
            Ok((shape, data)) => {
                let [n_mel, n_fft] = shape[..] else {
                    return Err(WhisperError::Npz(format!(
                        "mel_{n} has shape {shape:?}, expected [{n}, n_fft]"
                    )));
                };
                out.insert(n_mel, MelFilters { n_mel, n_fft, data });
            }
            Err(e) if n == 80 => return Err(e),
            Err(_) => {}
        }
    }
    Ok(out)
}

/// Parses a `.tiktoken` file (`base64-token rank` per line) into tokens in rank order.
pub fn parse_tiktoken(text: &str) -> Result<Vec<Vec<u8>>, WhisperError> {
    use base64::Engine as _;
    let mut tokens = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let bad = |message: String| WhisperError::Tiktoken {
            line: i + 1,
            message,
        };
        let (token, rank) = line
            .split_once(' ')
            .ok_or_else(|| bad("expected `token rank`".to_owned()))?;
        let rank: usize = rank
            .trim()
            .parse()
            .map_err(|e| bad(format!("rank {rank:?}: {e}")))?;
        if rank != tokens.len() {
            return Err(bad(format!("rank {rank}, expected {}", tokens.len())));
        }
        // multilingual.tiktoken ends with `=`: an empty token, kept so ranks stay aligned.
        let bytes = if token.trim_end_matches('=').is_empty() {
            Vec::new()
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(token)
                .map_err(|e| bad(format!("token {token:?}: {e}")))?
        };
        tokens.push(bytes);
    }
    Ok(tokens)
}
