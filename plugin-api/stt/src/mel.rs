//! Whisper-style log-mel features of the last 8 s of an utterance: the input of the Smart
//! Turn end-of-turn model ([`super::turn`]).
//!
//! The recipe is Whisper's feature extractor as Smart Turn was trained with it (Hugging
//! Face's `WhisperFeatureExtractor(chunk_length=8)`, which Pipecat reproduces in numpy):
//! the audio is cut to its last 8 s or left-padded with zeros to 8 s, the whole 8 s are
//! normalised to zero mean and unit variance, then a centred STFT (reflect padding, periodic
//! Hann window of 400, hop 160) gives power spectra, an 80-filter Slaney mel bank (0–8 kHz,
//! area-normalised) maps them to mels, and the log10 is clamped to 8 below its maximum and
//! scaled as `(x + 4) / 4`. The last of the 801 frames is dropped: 80 × 800 values.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

/// Sample rate the features are computed at.
const RATE: usize = 16_000;
const N_FFT: usize = 400;
const HOP: usize = 160;
/// Mel bands.
pub const N_MELS: usize = 80;
/// Frames (10 ms each) of the 8 s the model sees.
pub const FRAMES: usize = 800;
/// Samples the model sees: the last 8 s.
pub const TURN_SAMPLES: usize = 8 * RATE;
const BINS: usize = N_FFT / 2 + 1;
const MEL_FLOOR: f64 = 1e-10;
const VARIANCE_EPS: f64 = 1e-7;

/// One mel filter: its first FFT bin and its weights from there.
#[derive(Debug, Clone)]
struct Filter {
    start: usize,
    weights: Vec<f64>,
}

/// The feature extractor: FFT plan, window and mel filters, made once.
pub struct LogMel {
    fft: Arc<dyn RealToComplex<f64>>,
    window: Vec<f64>,
    filters: Vec<Filter>,
}

impl std::fmt::Debug for LogMel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogMel").finish_non_exhaustive()
    }
}

impl Default for LogMel {
    fn default() -> Self {
        Self::new()
    }
}

/// Hertz to mels on the Slaney scale (linear below 1 kHz, logarithmic above).
fn hz_to_mel(hz: f64) -> f64 {
    if hz < 1000.0 {
        3.0 * hz / 200.0
    } else {
        15.0 + (hz / 1000.0).ln() * 27.0 / 6.4f64.ln()
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel < 15.0 {
        200.0 * mel / 3.0
    } else {
        1000.0 * ((mel - 15.0) * 6.4f64.ln() / 27.0).exp()
    }
}

/// The Slaney-normalised triangular filters from 0 Hz to the Nyquist frequency.
fn mel_filters() -> Vec<Filter> {
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(RATE as f64 / 2.0));
    let edges: Vec<f64> = (0..N_MELS + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (N_MELS + 1) as f64))
        .collect();
    let bin_hz = |k: usize| k as f64 * (RATE / 2) as f64 / (BINS - 1) as f64;
    (0..N_MELS)
        .map(|m| {
            let (left, centre, right) = (edges[m], edges[m + 1], edges[m + 2]);
            let norm = 2.0 / (right - left);
            let weight = |k: usize| {
                let f = bin_hz(k);
                let up = (f - left) / (centre - left);
                let down = (right - f) / (right - centre);
                up.min(down).max(0.0) * norm
            };
            let start = (0..BINS).find(|&k| weight(k) > 0.0).unwrap_or(0);
            let end = (start..BINS).find(|&k| weight(k) <= 0.0).unwrap_or(BINS);
            Filter {
                start,
                weights: (start..end).map(weight).collect(),
            }
        })
        .collect()
}

impl LogMel {
    pub fn new() -> Self {
        LogMel {
            fft: RealFftPlanner::<f64>::new().plan_fft_forward(N_FFT),
            // Periodic Hann (as torch.hann_window).
            window: (0..N_FFT)
                .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos())
                .collect(),
            filters: mel_filters(),
        }
    }

    /// The features of the last 8 s of `audio` (16 kHz mono): [`N_MELS`] rows of
    /// [`FRAMES`] values, row after row (the model's `[1, 80, 800]`).
    pub fn features(&self, audio: &[f32]) -> Vec<f32> {
        // The last 8 s, left-padded with zeros; normalised over all 8 s, padding included.
        let tail = &audio[audio.len().saturating_sub(TURN_SAMPLES)..];
        let mut x = vec![0.0f64; TURN_SAMPLES - tail.len()];
        x.extend(tail.iter().map(|&s| f64::from(s)));
        let mean = x.iter().sum::<f64>() / x.len() as f64;
        let var = x.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / x.len() as f64;
        let scale = 1.0 / (var + VARIANCE_EPS).sqrt();
        // Whisper computes in f32 before the STFT; round as it does.
        let x: Vec<f64> = x
            .iter()
            .map(|s| f64::from(((s - mean) * scale) as f32))
            .collect();
        // Centred frames: reflect-padded by half a window on each side.
        let pad = N_FFT / 2;
        let at = |i: usize| -> f64 {
            let j = i as isize - pad as isize;
            let n = x.len() as isize;
            let j = if j < 0 {
                -j
            } else if j >= n {
                2 * (n - 1) - j
            } else {
                j
            };
            x[j as usize]
        };
        let mut log = vec![0.0f64; N_MELS * FRAMES];
        let mut frame = self.fft.make_input_vec();
        let mut spectrum: Vec<Complex<f64>> = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f64; BINS];
        for t in 0..FRAMES {
            let begin = t * HOP;
            for (n, v) in frame.iter_mut().enumerate() {
                let i = begin + n;
                // Only the first and last frames reach into the padding.
                let s = if i >= pad && i - pad < x.len() {
                    x[i - pad]
                } else {
                    at(i)
                };
                *v = s * self.window[n];
            }
            // The lengths are the plan's own: this cannot fail.
            let _ = self
                .fft
                .process_with_scratch(&mut frame, &mut spectrum, &mut scratch);
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for (m, filter) in self.filters.iter().enumerate() {
                let energy: f64 = filter
                    .weights
                    .iter()
                    .zip(&power[filter.start..])
                    .map(|(w, p)| w * p)
                    .sum();
                log[m * FRAMES + t] = energy.max(MEL_FLOOR).log10();
            }
        }
        let floor = log.iter().copied().fold(f64::NEG_INFINITY, f64::max) - 8.0;
        log.iter()
            .map(|&v| ((v.max(floor) + 4.0) / 4.0) as f32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_slaney_triangles_over_the_whole_band() {
        let filters = mel_filters();
        assert_eq!(filters.len(), N_MELS);
        // The first filter starts at 0 Hz; the last ends at the top bins.
        assert!(filters[0].start <= 1);
        let last = &filters[N_MELS - 1];
        assert!(last.start + last.weights.len() >= BINS - 2);
        for f in &filters {
            assert!(!f.weights.is_empty());
            assert!(f.weights.iter().all(|w| *w >= 0.0));
        }
        // Slaney mel: 1 kHz is 15 mels, and back.
        assert!((hz_to_mel(1000.0) - 15.0).abs() < 1e-12);
        assert!((mel_to_hz(hz_to_mel(3210.0)) - 3210.0).abs() < 1e-9);
    }

    #[test]
    fn a_tone_lights_its_own_band_and_padding_stays_at_the_floor() {
        let mel = LogMel::new();
        // 1 s of a 1 kHz tone: it is the last second of the 8 s.
        let tone: Vec<f32> = (0..RATE)
            .map(|i| 0.3 * (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / RATE as f32).sin())
            .collect();
        let f = mel.features(&tone);
        assert_eq!(f.len(), N_MELS * FRAMES);
        let max = f.iter().copied().fold(f32::MIN, f32::max);
        let min = f.iter().copied().fold(f32::MAX, f32::min);
        // Clamped to 8 (log10) below the maximum, scaled by 1/4: a range of 2.
        assert!((max - min - 2.0).abs() < 1e-4, "{min} … {max}");
        // The loudest band at the tone's frames holds 1 kHz (mel 15 of 0…~45.2: band ~26).
        let frame = FRAMES - 50;
        let band = (0..N_MELS)
            .max_by(|&a, &b| f[a * FRAMES + frame].total_cmp(&f[b * FRAMES + frame]))
            .unwrap();
        assert!((24..=28).contains(&band), "band {band}");
        // Frames of the padding (the first 7 s) are all alike: a constant signal.
        let early: Vec<f32> = (0..N_MELS).map(|m| f[m * FRAMES + 100]).collect();
        let later: Vec<f32> = (0..N_MELS).map(|m| f[m * FRAMES + 500]).collect();
        assert_eq!(early, later);
        // More than 8 s: only the last 8 s count.
        let mut long = vec![0.5f32; RATE * 3];
        long.extend(std::iter::repeat_n(0.0, TURN_SAMPLES - tone.len()));
        long.extend(&tone);
        assert_eq!(mel.features(&long), f);
    }
}
