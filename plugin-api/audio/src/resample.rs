//! Streaming sample-rate conversion (rubato's FFT resampler) and channel mapping.

use rubato::{FftFixedInOut, Resampler as _};

use crate::AudioError;

/// Converts a mono stream from one rate to another, in pieces of any length.
pub struct Resampler {
    from: u32,
    to: u32,
    inner: Option<FftFixedInOut<f32>>,
    pending: Vec<f32>,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

impl Resampler {
    /// `from` → `to` Hz; equal rates pass samples through untouched.
    pub fn new(from: u32, to: u32) -> Result<Resampler, AudioError> {
        let inner = if from == to {
            None
        } else {
            // 10 ms of input per FFT chunk (at least what the ratio needs).
            let chunk = (from as usize / 100).max(1);
            Some(
                FftFixedInOut::new(from as usize, to as usize, chunk, 1)
                    .map_err(|e| AudioError::Resample(format!("{from} Hz → {to} Hz: {e}")))?,
            )
        };
        Ok(Resampler {
            from,
            to,
            inner,
            pending: Vec::new(),
        })
    }

    pub fn rates(&self) -> (u32, u32) {
        (self.from, self.to)
    }

    /// How far (output samples) the output lags the input: the first output samples of a
    /// new resampler are its start-up, not the input.
    pub fn delay(&self) -> usize {
        self.inner.as_ref().map_or(0, |r| r.output_delay())
    }

    /// Input samples held back until a whole chunk is there (they come out of a later
    /// `process` or `flush`).
    pub fn held(&self) -> usize {
        self.pending.len()
    }

    /// Feeds `input`; returns whatever output is complete.
    pub fn process(&mut self, input: &[f32]) -> Vec<f32> {
        let Some(inner) = self.inner.as_mut() else {
            return input.to_vec();
        };
        self.pending.extend_from_slice(input);
        let mut out = Vec::new();
        loop {
            let need = inner.input_frames_next();
            if self.pending.len() < need {
                break;
            }
            let chunk: Vec<f32> = self.pending.drain(..need).collect();
            match inner.process(&[chunk], None) {
                Ok(mut o) => out.append(&mut o[0]),
                Err(e) => tracing::warn!(error = %e, "Resampling failed; a chunk was dropped"),
            }
        }
        out
    }

    /// Ends the stream: the held-back samples, padded with silence, are converted too.
    pub fn flush(&mut self) -> Vec<f32> {
        let Some(inner) = self.inner.as_mut() else {
            return Vec::new();
        };
        if self.pending.is_empty() {
            return Vec::new();
        }
        let held = self.pending.len();
        let mut chunk = std::mem::take(&mut self.pending);
        chunk.resize(inner.input_frames_next(), 0.0);
        let mut out = inner
            .process(&[chunk], None)
            .map(|mut o| std::mem::take(&mut o[0]))
            .unwrap_or_default();
        let keep = (held as u64 * u64::from(self.to) / u64::from(self.from)) as usize;
        out.truncate(keep);
        out
    }
}

/// Mixes interleaved `channels`-channel samples down to mono.
pub fn to_mono(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return interleaved.to_vec();
    }
    interleaved
        .chunks(channels)
        .map(|frame| frame.iter().sum::<f32>() / frame.len() as f32)
        .collect()
}

/// Copies mono samples to every one of `channels` interleaved channels.
pub fn from_mono(mono: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return mono.to_vec();
    }
    mono.iter()
        .flat_map(|s| std::iter::repeat_n(*s, channels))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_keeps_length_and_frequency() {
        let mut r = Resampler::new(24_000, 16_000).unwrap();
        // 1 s of a 440 Hz tone in uneven pieces.
        let tone: Vec<f32> = (0..24_000)
            .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 24_000.0).sin())
            .collect();
        let mut out = Vec::new();
        for piece in tone.chunks(333) {
            out.extend(r.process(piece));
        }
        out.extend(r.flush());
        assert!((out.len() as i64 - 16_000).abs() <= 240, "{}", out.len());
        // Count zero crossings in the steady part: 440 Hz → ~2 per period.
        let steady = &out[2000..14_000];
        let crossings = steady
            .windows(2)
            .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
            .count();
        let expected = 440.0 * steady.len() as f32 / 16_000.0;
        assert!(
            (crossings as f32 - expected).abs() < 3.0,
            "{crossings} vs {expected}"
        );
    }

    #[test]
    fn equal_rates_pass_through_and_channels_map() {
        let mut r = Resampler::new(16_000, 16_000).unwrap();
        assert_eq!(r.process(&[0.5, -0.5]), vec![0.5, -0.5]);
        assert!(r.flush().is_empty());
        assert_eq!(to_mono(&[1.0, 0.0, 0.5, 0.5], 2), vec![0.5, 0.5]);
        assert_eq!(from_mono(&[0.25], 3), vec![0.25, 0.25, 0.25]);
    }
}
