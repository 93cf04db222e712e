//! The TFLite Micro audio frontend, as microWakeWord's models were trained on.
//!
//! Every 10 ms of 16 kHz audio, a 30 ms Hann window → 512-point 16-bit fixed-point real
//! FFT (`fft.rs`) → 40 mel channels (125–7500 Hz) → noise reduction → PCAN gain control → log scale,
//! all in the frontend's integer arithmetic: the features equal pymicro-features 2.0.2's
//! bit for bit (the parity test in `tests/tests/kwd_micro_features.rs` checks it).
//!
//! ```
//! use voicehost_plugin_kwd::micro::frontend::{Frontend, STEP};
//!
//! let mut frontend = Frontend::new();
//! let mut frames = Vec::new();
//! frontend.push(&[0; 2 * STEP], &mut frames);
//! assert!(frames.is_empty()); // a frame needs a full 30 ms window
//! frontend.push(&[0; STEP], &mut frames);
//! assert_eq!(frames.len(), 1);
//! ```

use std::array;
use std::fmt;
use std::hint::black_box;

use super::fft::{BINS, FFT, Fft};

/// Feature channels per 10 ms frame.
pub const FEATURES: usize = 40;
/// Samples per step (10 ms at 16 kHz).
pub const STEP: usize = 160;

const RATE: usize = 16_000;
/// Samples per window (30 ms).
const WINDOW: usize = 480;
/// Filterbank edges, Hz.
const LOWER_HZ: f32 = 125.0;
const UPPER_HZ: f32 = 7500.0;
/// Fixed-point fractional bits of the window and filterbank weights.
const WINDOW_BITS: u32 = 12;
const WEIGHT_BITS: u32 = 12;
/// Noise reduction: estimate smoothing per even and odd channel, the share of the signal
/// always kept, and their fractional bits; the estimate carries `SMOOTHING_BITS` more.
const EVEN_SMOOTHING: f32 = 0.025;
const ODD_SMOOTHING: f32 = 0.06;
const MIN_SIGNAL_REMAINING: f32 = 0.05;
const NOISE_BITS: u32 = 14;
const SMOOTHING_BITS: u32 = 10;
/// PCAN: gain = 2^GAIN_BITS · (noise + OFFSET)^-STRENGTH, looked up piecewise-quadratically.
const STRENGTH: f32 = 0.95;
const OFFSET: f32 = 80.0;
const GAIN_BITS: u32 = 21;
const SNR_BITS: u32 = 12;
const PCAN_OUTPUT_BITS: u32 = 6;
const GAIN_LUT: usize = 4 * 32 - 3;
/// Bits the filterbank output is shifted by before the log: log2(FFT) - 1 - WEIGHT_BITS / 2.
const CORRECTION_BITS: u32 = 3;
/// Fractional bits of the noise estimate as PCAN reads it.
const PCAN_INPUT_BITS: u32 = SMOOTHING_BITS - CORRECTION_BITS;
const SNR_SHIFT: u32 = GAIN_BITS - CORRECTION_BITS - SNR_BITS;
/// Log: 16 fractional bits, a 128-segment correction table, ln 2 in those bits, and the
/// output's fractional bits.
const LOG_BITS: u32 = 16;
const LOG_SEGMENT_BITS: u32 = 7;
const LOG_COEFF: u64 = 45_426;
const LOG_SCALE_SHIFT: u32 = 6;
/// What one unit of the 16-bit log output is worth in the features the models take.
const OUTPUT_SCALE: f32 = 0.039_062_5;

/// The 30 ms window, FFT, filterbank, noise reduction, PCAN and log of a stream of 16 kHz
/// mono audio: one frame of [`FEATURES`] values per [`STEP`] samples.
///
/// Two pointers wide: the tables and the state live on the heap, allocated in `new`.
#[derive(Clone)]
pub struct Frontend {
    tables: Box<Tables>,
    state: Box<State>,
}

#[derive(Clone)]
struct State {
    /// The window's samples, the first `used` of them valid.
    input: [i16; WINDOW],
    used: usize,
    /// Each channel's noise estimate, `SMOOTHING_BITS` above the signal.
    estimate: [u32; FEATURES],
}

const FRESH: State = State {
    input: [0; WINDOW],
    used: 0,
    estimate: [0; FEATURES],
};

impl fmt::Debug for Frontend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frontend")
            .field("buffered", &self.state.used)
            .field("estimate", &self.state.estimate)
            .finish_non_exhaustive()
    }
}

impl Default for Frontend {
    fn default() -> Frontend {
        Frontend::new()
    }
}

impl Frontend {
    /// A frontend with microWakeWord's configuration, nothing heard yet.
    pub fn new() -> Frontend {
        Frontend {
            tables: Box::new(Tables::new()),
            state: Box::new(FRESH),
        }
    }

    /// Forgets the audio and noise estimates: what follows comes out as from [`Frontend::new`].
    pub fn reset(&mut self) {
        *self.state = FRESH;
    }

    /// Feeds 16 kHz mono 16-bit samples; appends one frame per completed 10 ms step,
    /// each value scaled exactly as pymicro-features returns it (uint16 × its FLOAT32_SCALE).
    ///
    /// The first frame comes once a full 30 ms window is in, then one every [`STEP`]
    /// samples; how the samples are split between calls makes no difference.
    pub fn push(&mut self, samples: &[i16], out: &mut Vec<[f32; FEATURES]>) {
        let (t, s) = (&*self.tables, &mut *self.state);
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (WINDOW - s.used).min(rest.len());
            let (now, later) = rest.split_at(take);
            s.input[s.used..s.used + take].copy_from_slice(now);
            s.used += take;
            rest = later;
            if s.used == WINDOW {
                out.push(s.frame(t));
                s.input.copy_within(STEP.., 0);
                s.used -= STEP;
            }
        }
    }
}

impl State {
    /// The features of the full window in `input`.
    fn frame(&mut self, t: &Tables) -> [f32; FEATURES] {
        // Window, then scale up so the loudest sample uses all 15 bits, to keep the
        // fixed-point FFT's resolution.
        let mut windowed = [0i16; FFT];
        let mut max_abs = 0i16;
        for ((w, &x), &c) in windowed.iter_mut().zip(&self.input).zip(&t.window) {
            *w = ((i32::from(x) * i32::from(c)) >> WINDOW_BITS) as i16;
            max_abs = max_abs.max(w.wrapping_abs());
        }
        let shift = 15 - msb(u32::from(max_abs.unsigned_abs()));
        for w in &mut windowed {
            *w = ((*w as u16) << shift) as i16;
        }
        let spectrum = t.fft.spectrum(&windowed);

        // Energy into the triangular mel filters: a bin adds weight × energy to its
        // channel and (1 - weight) × energy to the next; output j is the sum at j + 1.
        let mut work = [0u64; FEATURES + 2];
        for (c, bin) in spectrum[t.first_bin..].iter().zip(&t.bins) {
            let (re, im) = (i32::from(c.r), i32::from(c.i));
            // Widened as a signed value, as the frontend's 32-bit energy is.
            let energy = (re * re).wrapping_add(im * im) as i64 as u64;
            let ch = usize::from(bin.channel);
            work[ch] = work[ch].wrapping_add((i64::from(bin.weight) as u64).wrapping_mul(energy));
            work[ch + 1] =
                work[ch + 1].wrapping_add((i64::from(bin.unweight) as u64).wrapping_mul(energy));
        }

        let mut out = [0.0; FEATURES];
        for (ch, (o, estimate)) in out.iter_mut().zip(&mut self.estimate).enumerate() {
            let signal = sqrt64(work[ch + 1]) >> shift;

            // Noise reduction: subtract a slow estimate, keeping a floor of the signal.
            let smoothing = if ch % 2 == 0 {
                t.even_smoothing
            } else {
                t.odd_smoothing
            };
            let scaled = signal << SMOOTHING_BITS;
            let mut noise = ((u64::from(scaled) * u64::from(smoothing)
                + u64::from(*estimate) * u64::from((1 << NOISE_BITS) - smoothing))
                >> NOISE_BITS) as u32;
            *estimate = noise;
            noise = noise.min(scaled);
            let floor =
                ((u64::from(signal) * u64::from(t.min_signal_remaining)) >> NOISE_BITS) as u32;
            let signal = ((scaled - noise) >> SMOOTHING_BITS).max(floor);

            // PCAN: divide by a power of the noise, then compress.
            let gain = wide_dynamic(*estimate, &t.gain_lut) as i32 as u32;
            let snr = ((u64::from(signal) * u64::from(gain)) >> SNR_SHIFT) as u32;
            let signal = pcan_shrink(snr);

            let value = signal << CORRECTION_BITS;
            let value = if value > 1 { log(value, &t.log_lut) } else { 0 };
            *o = f32::from(value.min(u32::from(u16::MAX)) as u16) * OUTPUT_SCALE;
        }
        out
    }
}

/// Everything fixed by the configuration, computed once.
///
/// The transcendental functions here are the C library's at run time, as pymicro-features'
/// are: `black_box` keeps the compiler from evaluating them at build time, where the last
/// bit can differ (`mel(UPPER_HZ)` does) and move a filterbank weight.
#[derive(Clone)]
struct Tables {
    /// Hann window, `WINDOW_BITS` fractional bits.
    window: [i16; WINDOW],
    fft: Fft,
    /// Spectrum bins from `first_bin` on, each in one mel channel.
    first_bin: usize,
    bins: Vec<Bin>,
    even_smoothing: u32,
    odd_smoothing: u32,
    min_signal_remaining: u32,
    /// Piecewise-quadratic PCAN gain per power-of-two interval of the noise estimate.
    gain_lut: [i16; GAIN_LUT],
    /// log2(1 + x) - x over 128 segments of [0, 1], `LOG_BITS` fractional bits.
    log_lut: [u16; (1 << LOG_SEGMENT_BITS) + 1],
}

#[derive(Clone, Copy, Debug)]
struct Bin {
    channel: u8,
    weight: i16,
    unweight: i16,
}

impl Tables {
    fn new() -> Tables {
        let window_arg = std::f32::consts::PI * 2.0 / WINDOW as f32;
        let window = array::from_fn(|i| {
            let w = 0.5 - 0.5 * black_box(window_arg * (i as f32 + 0.5)).cos();
            (w * (1 << WINDOW_BITS) as f32 + 0.5).floor() as i16
        });
        let (first_bin, bins) = filterbank();

        let fixed = |x: f32| (x * (1 << NOISE_BITS) as f32) as u32;
        let mut gain_lut = [0i16; GAIN_LUT];
        gain_lut[0] = pcan_gain(0);
        gain_lut[1] = pcan_gain(1);
        for interval in 2..=32u32 {
            let x0 = 1u32 << (interval - 1);
            let x1 = x0 + (x0 >> 1);
            let x2 = if interval == 32 {
                x0 + (x0 - 1)
            } else {
                2 * x0
            };
            let (y0, y1, y2) = (pcan_gain(x0), pcan_gain(x1), pcan_gain(x2));
            let diff1 = i32::from(y1) - i32::from(y0);
            let diff2 = i32::from(y2) - i32::from(y0);
            let a1 = 4 * diff1 - diff2;
            let a2 = diff2 - a1;
            let at = 4 * interval as usize - 6;
            gain_lut[at] = y0;
            gain_lut[at + 1] = a1 as i16;
            gain_lut[at + 2] = a2 as i16;
        }
        let segments = f64::from(1u32 << LOG_SEGMENT_BITS);
        let log_lut = array::from_fn(|i| {
            let x = i as f64 / segments;
            ((black_box(1.0 + x).log2() - x) * f64::from(1u32 << LOG_BITS)).round() as u16
        });

        Tables {
            window,
            fft: Fft::new(),
            first_bin,
            bins,
            even_smoothing: fixed(EVEN_SMOOTHING),
            odd_smoothing: fixed(ODD_SMOOTHING),
            min_signal_remaining: fixed(MIN_SIGNAL_REMAINING),
            gain_lut,
            log_lut,
        }
    }
}

fn mel(hz: f32) -> f32 {
    1127.0 * black_box(hz / 700.0).ln_1p()
}

/// The mel filterbank: `FEATURES + 1` triangles evenly spaced in mel between the band
/// edges (the DC bin always left out), as the first bin and each bin's channel and weights.
fn filterbank() -> (usize, Vec<Bin>) {
    let mel_low = mel(LOWER_HZ);
    let spacing = (mel(UPPER_HZ) - mel_low) / (FEATURES + 1) as f32;
    let hz_per_bin = 0.5 * RATE as f32 / (BINS as f32 - 1.0);
    let first_bin = (1.5 + LOWER_HZ / hz_per_bin) as usize;
    let quantize = |w: f32| (w * (1 << WEIGHT_BITS) as f32 + 0.5).floor() as i16;
    let mut bins = Vec::new();
    let mut bin = first_bin;
    let mut below = mel_low;
    for channel in 0..=FEATURES {
        let center = mel_low + spacing * (channel + 1) as f32;
        while bin < BINS && mel(bin as f32 * hz_per_bin) <= center {
            let weight = (center - mel(bin as f32 * hz_per_bin)) / (center - below);
            bins.push(Bin {
                channel: channel as u8,
                weight: quantize(weight),
                unweight: quantize(1.0 - weight),
            });
            bin += 1;
        }
        below = center;
    }
    (first_bin, bins)
}

/// PCAN's gain for a noise estimate `x` with `PCAN_INPUT_BITS` fractional bits, in
/// `GAIN_BITS` fractional bits, saturated to 16 bits.
fn pcan_gain(x: u32) -> i16 {
    let x = x as f32 / (1u32 << PCAN_INPUT_BITS) as f32;
    let gain = (1u32 << GAIN_BITS) as f32 * black_box(x + OFFSET).powf(-STRENGTH);
    if gain > f32::from(i16::MAX) {
        i16::MAX
    } else {
        (gain + 0.5) as i16
    }
}

/// [`pcan_gain`] from the table: quadratic within the power-of-two interval holding `x`.
fn wide_dynamic(x: u32, lut: &[i16; GAIN_LUT]) -> i16 {
    if x <= 2 {
        return lut[x as usize];
    }
    let interval = msb(x);
    let at = 4 * interval as usize - 6;
    let frac = if interval < 11 {
        x << (11 - interval)
    } else {
        x >> (interval - 11)
    } & 0x3FF;
    let frac = frac as i32;
    let mut result = (i32::from(lut[at + 2]) * frac) >> 5;
    result = result.wrapping_add(i32::from(lut[at + 1]) << 5);
    result = result.wrapping_mul(frac);
    result = result.wrapping_add(1 << 14) >> 15;
    result.wrapping_add(i32::from(lut[at])) as i16
}

/// PCAN's compression: quadratic below 2 (in `SNR_BITS` fractional bits), linear above,
/// to `PCAN_OUTPUT_BITS` fractional bits.
fn pcan_shrink(x: u32) -> u32 {
    if x < (2 << SNR_BITS) {
        (x * x) >> (2 + 2 * SNR_BITS - PCAN_OUTPUT_BITS)
    } else {
        (x >> (SNR_BITS - PCAN_OUTPUT_BITS)) - (1 << PCAN_OUTPUT_BITS)
    }
}

/// ln(x) · 2^LOG_SCALE_SHIFT for `x` > 1: log2 from the top bit and a corrected linear
/// fraction, then scaled by ln 2.
fn log(x: u32, lut: &[u16; (1 << LOG_SEGMENT_BITS) + 1]) -> u32 {
    let integer = msb(x) - 1;
    let mut frac = (i64::from(x) - (1i64 << integer)) as i32;
    if integer < LOG_BITS {
        frac <<= LOG_BITS - integer;
    } else {
        frac >>= integer - LOG_BITS;
    }
    let segment = (frac >> (LOG_BITS - LOG_SEGMENT_BITS)) as usize;
    let c0 = i32::from(lut[segment]);
    let c1 = i32::from(lut[segment + 1]);
    let segment_base = (segment << (LOG_BITS - LOG_SEGMENT_BITS)) as i32;
    let between = ((c1 - c0) * (frac - segment_base)) >> LOG_BITS;
    let fraction = (frac + c0 + between) as u32;
    let log2 = (integer << LOG_BITS).wrapping_add(fraction);
    let round = 1u32 << (LOG_BITS - 1);
    let ln = ((LOG_COEFF * u64::from(log2) + u64::from(round)) >> LOG_BITS) as u32;
    ((ln << LOG_SCALE_SHIFT) + round) >> LOG_BITS
}

/// Number of bits needed to hold `n` (0 for 0).
fn msb(n: u32) -> u32 {
    32 - n.leading_zeros()
}

/// Integer square root, rounded to nearest but never past 0xFFFF.
fn sqrt32(mut num: u32) -> u32 {
    if num == 0 {
        return 0;
    }
    let top = (32 - msb(num)) | 1;
    let mut bit = 1u32 << (31 - top);
    let mut res = 0u32;
    for _ in 0..(31 - top) / 2 + 1 {
        if num >= res + bit {
            num -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    if num > res && res != 0xFFFF {
        res += 1;
    }
    u32::from(res as u16)
}

/// Integer square root of a 64-bit value, rounded; values below 2^32 take the 32-bit path.
fn sqrt64(mut num: u64) -> u32 {
    if num >> 32 == 0 {
        return sqrt32(num as u32);
    }
    let top = num.leading_zeros() | 1;
    let mut bit = 1u64 << (63 - top);
    let mut res = 0u64;
    for _ in 0..(63 - top) / 2 + 1 {
        if num >= res + bit {
            num -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    if num > res && res != 0xFFFF_FFFF {
        res += 1;
    }
    res as u32
}

#[cfg(test)]
#[path = "frontend_tests.rs"]
mod tests;
