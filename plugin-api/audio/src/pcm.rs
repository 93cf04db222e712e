//! 16-bit PCM, the form audio takes on the wire (`AudioFrame.pcm_s16le`) and in WAV files.

/// A sample in [-1, 1] as 16-bit, rounded; out-of-range values are clipped.
pub fn to_i16(sample: f32) -> i16 {
    (sample * 32767.0).round().clamp(-32768.0, 32767.0) as i16
}

/// Samples as 16-bit little-endian bytes.
pub fn to_s16le(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|s| to_i16(*s).to_le_bytes())
        .collect()
}

/// 16-bit little-endian bytes as samples in [-1, 1).
pub fn from_s16le(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_clipping() {
        assert_eq!(to_i16(0.5), 16384);
        assert_eq!(to_i16(2.0), 32767);
        assert_eq!(to_i16(-2.0), -32768);
        let bytes = to_s16le(&[0.5, -0.5]);
        assert_eq!(bytes, [0x00, 0x40, 0x00, 0xc0]);
        assert_eq!(from_s16le(&bytes), [16384.0 / 32768.0, -16384.0 / 32768.0]);
    }
}
