//! Reading the WAV that command-line synthesisers (espeak-ng `--stdout`, piper, …) write,
//! including the streamed form whose sizes are left at 0 or 0xFFFFFFFF.

/// Mono samples and their sample rate from WAV `bytes` (16-bit PCM or 32-bit float, any
/// channel count: channels are averaged). The error names what is wrong with the data.
pub fn decode_wav(bytes: &[u8]) -> Result<(u32, Vec<f32>), String> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(format!(
            "not a WAV file: {} bytes without a RIFF/WAVE header",
            bytes.len()
        ));
    }
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let mut format: Option<(u16, u16, u32, u16)> = None;
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32_at(bytes, pos + 4) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            if size < 16 || body + 16 > bytes.len() {
                return Err("WAV fmt chunk is truncated".to_owned());
            }
            format = Some((
                u16_at(bytes, body),
                u16_at(bytes, body + 2),
                u32_at(bytes, body + 4),
                u16_at(bytes, body + 14),
            ));
        } else if id == b"data" {
            let (tag, channels, rate, bits) =
                format.ok_or("WAV data comes before its fmt chunk")?;
            // A streamed WAV leaves the size at 0 or 0xFFFFFFFF: the data runs to the end.
            let end = match size {
                0 | 0xFFFF_FFFF => bytes.len(),
                n => (body + n).min(bytes.len()),
            };
            let data = &bytes[body..end];
            let samples: Vec<f32> = match (tag, bits) {
                (1, 16) => data
                    .chunks_exact(2)
                    .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
                    .collect(),
                (3, 32) => data
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect(),
                _ => {
                    return Err(format!(
                        "WAV format {tag} with {bits}-bit samples is not supported; \
                         use 16-bit PCM or 32-bit float"
                    ));
                }
            };
            let channels = usize::from(channels.max(1));
            let mono = samples
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32)
                .collect();
            return Ok((rate, mono));
        }
        pos = body + size + (size & 1);
    }
    Err("WAV has no data chunk".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(channels: u16, rate: u32, samples: &[i16], data_size: u32) -> Vec<u8> {
        let mut b = b"RIFF\0\0\0\0WAVEfmt ".to_vec();
        b.extend(16u32.to_le_bytes());
        b.extend(1u16.to_le_bytes());
        b.extend(channels.to_le_bytes());
        b.extend(rate.to_le_bytes());
        b.extend((rate * 2 * u32::from(channels)).to_le_bytes());
        b.extend((2 * channels).to_le_bytes());
        b.extend(16u16.to_le_bytes());
        b.extend(b"data");
        b.extend(data_size.to_le_bytes());
        for s in samples {
            b.extend(s.to_le_bytes());
        }
        b
    }

    #[test]
    fn streamed_and_sized_wavs_decode() {
        let pcm = [0i16, 16384, -16384, 32767];
        for size in [0, 0xFFFF_FFFF, 8] {
            let (rate, out) = decode_wav(&wav(1, 22_050, &pcm, size)).unwrap();
            assert_eq!(rate, 22_050);
            assert_eq!(out.len(), 4);
            assert!((out[1] - 0.5).abs() < 1e-6);
        }
        let (_, stereo) = decode_wav(&wav(2, 16_000, &pcm, 8)).unwrap();
        assert_eq!(stereo.len(), 2);
        assert!((stereo[0] - 0.25).abs() < 1e-6);
    }

    #[test]
    fn bad_data_is_named() {
        assert!(decode_wav(b"hello").unwrap_err().contains("not a WAV"));
        let mut no_data = wav(1, 8000, &[], 0);
        no_data.truncate(36);
        assert!(decode_wav(&no_data).unwrap_err().contains("no data chunk"));
    }
}
