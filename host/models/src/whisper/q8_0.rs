//! ggml's Q8_0 block quantisation, as whisper.cpp's quantizer writes it.
//!
//! A row of a matrix is cut into blocks of [`BLOCK`] values; each block is stored as one f16
//! scale `d = max|x| / 127` followed by 32 signed bytes `q = round(x / d)` (34 bytes for 32
//! values), so `x ≈ d·q`. This is ggml's reference quantizer (`quantize_row_q8_0_ref`, which
//! `ggml_quantize_chunk` runs for Q8_0): the quotient uses the f32 scale, only the stored
//! scale is rounded to f16, and rounding is half away from zero, so the bytes equal
//! whisper.cpp's own (the tests compare them with ggml's function, as linked into this crate
//! with llama.cpp).

use half::f16;

/// Values per block.
pub const BLOCK: usize = 32;
/// Bytes per block: the f16 scale, then one signed byte per value.
pub const BLOCK_BYTES: usize = 2 + BLOCK;
/// ggml's type id of Q8_0 tensors (`GGML_TYPE_Q8_0`).
pub const GGML_TYPE: i32 = 8;
/// The file's `ftype` for a model whose matrices are Q8_0: ggml's quantisation version (2)
/// × 1000 + `GGML_FTYPE_MOSTLY_Q8_0` (7), as whisper.cpp's quantizer writes it. whisper.cpp
/// takes the remainder by 1000 as the weight type.
pub const FILE_FTYPE: i32 = 2 * 1000 + 7;

/// Appends the Q8_0 blocks of `values` to `out`; `values.len()` must be a multiple of
/// [`BLOCK`] (the caller checks each row is).
pub fn quantize(values: &[f32], out: &mut Vec<u8>) {
    debug_assert!(values.len().is_multiple_of(BLOCK));
    out.reserve(values.len() / BLOCK * BLOCK_BYTES);
    for block in values.chunks_exact(BLOCK) {
        let amax = block.iter().fold(0f32, |m, x| m.max(x.abs()));
        let d = amax / 127.0;
        let inverse = if d == 0.0 { 0.0 } else { 1.0 / d };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        // |x·inverse| ≤ 127 (up to rounding of `inverse`, which `as` saturates).
        out.extend(block.iter().map(|x| (x * inverse).round() as i8 as u8));
    }
}

/// The values of Q8_0 `blocks` (whole blocks only): `d·q` for each byte.
pub fn dequantize(blocks: &[u8]) -> Vec<f32> {
    blocks
        .chunks_exact(BLOCK_BYTES)
        .flat_map(|b| {
            let d = f16::from_le_bytes([b[0], b[1]]).to_f32();
            b[2..].iter().map(move |&q| d * f32::from(q as i8))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in ±`scale` (a small LCG; no rand dependency).
    fn noise(n: usize, scale: f32, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    #[test]
    fn a_block_is_an_f16_scale_and_32_signed_bytes() {
        // One block: -64 … 62 in steps of 4, largest magnitude 64 at index 0.
        let values: Vec<f32> = (0..32).map(|i| (i as f32 - 16.0) * 4.0).collect();
        let mut out = Vec::new();
        quantize(&values, &mut out);
        assert_eq!(out.len(), BLOCK_BYTES);
        let d = f16::from_le_bytes([out[0], out[1]]);
        assert_eq!(d, f16::from_f32(64.0 / 127.0));
        let q: Vec<i8> = out[2..].iter().map(|&b| b as i8).collect();
        assert_eq!(q[0], -127, "the largest magnitude maps to ±127");
        assert_eq!(q[16], 0);
        // 4 / (64/127) = 7.9375 → 8; 60 / (64/127) = 119.06 → 119.
        assert_eq!((q[17], q[31]), (8, 119));
    }

    #[test]
    fn blocks_follow_each_other_in_order() {
        let mut values = vec![1.0f32; 32];
        values.extend(std::iter::repeat_n(-0.5f32, 32));
        let mut out = Vec::new();
        quantize(&values, &mut out);
        assert_eq!(out.len(), 2 * BLOCK_BYTES);
        let second = &out[BLOCK_BYTES..];
        assert_eq!(
            f16::from_le_bytes([second[0], second[1]]),
            f16::from_f32(0.5 / 127.0)
        );
        assert!(second[2..].iter().all(|&b| b as i8 == -127));
        assert!(out[2..BLOCK_BYTES].iter().all(|&b| b as i8 == 127));
    }

    #[test]
    fn a_zero_block_has_scale_zero_and_zero_values() {
        let mut out = Vec::new();
        quantize(&[0.0; 32], &mut out);
        assert!(out.iter().all(|&b| b == 0), "{out:?}");
        assert_eq!(dequantize(&out), vec![0.0; 32]);
    }

    #[test]
    fn blocks_are_byte_for_byte_ggmls() {
        use llama_cpp_sys_2 as sys;
        // Rows with magnitudes from 1e-5 to 10 (f16-subnormal scales included), a row of
        // zeros and a row of one repeated value.
        let (rows, per_row) = (24usize, 384usize);
        let mut values: Vec<f32> = (0..rows)
            .flat_map(|r| noise(per_row, 10f32.powi(r as i32 % 7 - 5), r as u64))
            .collect();
        values[per_row..2 * per_row].fill(0.0);
        values[2 * per_row..3 * per_row].fill(-0.25);
        let mut ours = Vec::new();
        quantize(&values, &mut ours);
        let mut theirs = vec![0u8; rows * per_row / BLOCK * BLOCK_BYTES];
        // SAFETY: `values` holds rows × per_row f32, `theirs` room for their Q8_0 blocks;
        // Q8_0 takes no importance matrix (null).
        let written = unsafe {
            sys::ggml_quantize_init(sys::GGML_TYPE_Q8_0);
            sys::ggml_quantize_chunk(
                sys::GGML_TYPE_Q8_0,
                values.as_ptr(),
                theirs.as_mut_ptr().cast(),
                0,
                rows as i64,
                per_row as i64,
                std::ptr::null(),
            )
        };
        assert_eq!((written, ours.len()), (theirs.len(), theirs.len()));
        let first_difference = ours.iter().zip(&theirs).position(|(a, b)| a != b);
        assert_eq!(first_difference, None, "the Q8_0 bytes differ from ggml's");
        assert_eq!(GGML_TYPE, sys::GGML_TYPE_Q8_0 as i32);
    }

    #[test]
    fn round_trip_error_is_within_half_a_step() {
        // Blocks of very different magnitudes, as rows of a weight matrix have.
        for (scale, seed) in [(1e-3f32, 1), (0.05, 2), (1.0, 3), (30.0, 4)] {
            let values = noise(32 * 64, scale, seed);
            let mut out = Vec::new();
            quantize(&values, &mut out);
            assert_eq!(out.len(), 64 * BLOCK_BYTES);
            let back = dequantize(&out);
            for (block, restored) in values.chunks(BLOCK).zip(back.chunks(BLOCK)) {
                let amax = block.iter().fold(0f32, |m, x| m.max(x.abs()));
                let d = amax / 127.0;
                // Half a step from rounding q, plus 127 times the f16 scale's own rounding
                // error: relative 2^-11, or 2^-25 absolute where the scale is subnormal in
                // f16 (below 2^-14: blocks whose largest value is under 0.008).
                let scale_error = (d * 2f32.powi(-11)).max(2f32.powi(-25));
                let bound = d * 0.5 + 127.0 * scale_error;
                for (x, y) in block.iter().zip(restored) {
                    assert!((x - y).abs() <= bound, "{x} → {y}, bound {bound}");
                }
            }
        }
    }
}
