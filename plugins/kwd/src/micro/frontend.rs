//! The TFLite Micro audio frontend, as microWakeWord's models were trained on.
//!
//! Every 10 ms of 16 kHz audio, a 30 ms Hann window → 512-point 16-bit fixed-point real
//! FFT → 40 mel channels (125–7500 Hz) → noise reduction → PCAN gain control → log scale,
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
use std::f64::consts::PI;
use std::fmt;
use std::hint::black_box;

/// Feature channels per 10 ms frame.
pub const FEATURES: usize = 40;
/// Samples per step (10 ms at 16 kHz).
pub const STEP: usize = 160;

const RATE: usize = 16_000;
/// Samples per window (30 ms).
const WINDOW: usize = 480;
/// Real FFT length (the window, zero-padded) and the complex transform computing it.
const FFT: usize = 512;
const N: usize = FFT / 2;
const _: () = assert!(N == 4 * 4 * 4 * 4, "the complex FFT is four radix-4 stages");
/// Spectrum bins, DC to Nyquist.
const BINS: usize = N + 1;
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
        let mut fft = [Cpx::default(); N];
        for (z, &from) in fft.iter_mut().zip(&t.order) {
            let pair = 2 * usize::from(from);
            *z = Cpx {
                r: ((windowed[pair] as u16) << shift) as i16,
                i: ((windowed[pair + 1] as u16) << shift) as i16,
            };
        }
        let spectrum = real_fft(&mut fft, t);

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
    /// e^(-2πik/N) in Q15.
    twiddles: [Cpx; N],
    /// e^(-πi((k+1)/N + 1/2)) in Q15: untangles the real FFT from the complex one.
    super_twiddles: [Cpx; N / 2],
    /// Which input pair each FFT slot starts from: its index's four base-4 digits reversed.
    order: [u8; N],
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
        let unit = |phase: f64| Cpx {
            r: (0.5 + 32767.0 * black_box(phase).cos()).floor() as i16,
            i: (0.5 + 32767.0 * black_box(phase).sin()).floor() as i16,
        };
        let twiddles = array::from_fn(|k| unit(-2.0 * PI * k as f64 / N as f64));
        let super_twiddles = array::from_fn(|k| unit(-PI * ((k + 1) as f64 / N as f64 + 0.5)));
        let order = array::from_fn(|k| {
            (0..4).fold(0u8, |rev, digit| {
                (rev << 2) | ((k >> (2 * digit)) & 3) as u8
            })
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
            twiddles,
            super_twiddles,
            order,
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

/// A Q15 complex value; arithmetic wraps at 16 bits as the fixed-point FFT's does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cpx {
    r: i16,
    i: i16,
}

/// A Q30 product back to Q15, rounded.
fn round15(x: i32) -> i16 {
    (x.wrapping_add(1 << 14) >> 15) as i16
}

impl Cpx {
    fn add(self, o: Cpx) -> Cpx {
        Cpx {
            r: self.r.wrapping_add(o.r),
            i: self.i.wrapping_add(o.i),
        }
    }

    fn sub(self, o: Cpx) -> Cpx {
        Cpx {
            r: self.r.wrapping_sub(o.r),
            i: self.i.wrapping_sub(o.i),
        }
    }

    fn mul(self, o: Cpx) -> Cpx {
        let (a, b, c, d) = (
            i32::from(self.r),
            i32::from(self.i),
            i32::from(o.r),
            i32::from(o.i),
        );
        Cpx {
            r: round15((a * c).wrapping_sub(b * d)),
            i: round15((a * d).wrapping_add(b * c)),
        }
    }

    /// Divided by `k` the fixed-point way: times 32767 / k in Q15. Each stage divides so
    /// the transform cannot overflow.
    fn div(self, k: i32) -> Cpx {
        let s = 32767 / k;
        Cpx {
            r: round15(i32::from(self.r) * s),
            i: round15(i32::from(self.i) * s),
        }
    }
}

/// The spectrum (DC to Nyquist, divided by `FFT`) of the real signal packed pairwise in
/// `z` in digit-reversed order: a radix-4 complex FFT of the pairs, then the split into
/// the even and odd samples' transforms.
fn real_fft(z: &mut [Cpx; N], t: &Tables) -> [Cpx; BINS] {
    let mut m = 1;
    while m < N {
        let stride = N / (4 * m);
        for block in z.chunks_exact_mut(4 * m) {
            butterfly4(block, m, stride, &t.twiddles);
        }
        m *= 4;
    }

    let half = |x: i32| (x >> 1) as i16;
    let mut out = [Cpx::default(); BINS];
    let dc = z[0].div(2);
    out[0].r = dc.r.wrapping_add(dc.i);
    out[N].r = dc.r.wrapping_sub(dc.i);
    for k in 1..=N / 2 {
        let fpk = z[k].div(2);
        let fpnk = Cpx {
            r: z[N - k].r,
            i: z[N - k].i.wrapping_neg(),
        }
        .div(2);
        let f1 = fpk.add(fpnk);
        let tw = fpk.sub(fpnk).mul(t.super_twiddles[k - 1]);
        let (f1r, f1i, twr, twi) = (
            i32::from(f1.r),
            i32::from(f1.i),
            i32::from(tw.r),
            i32::from(tw.i),
        );
        out[k] = Cpx {
            r: half(f1r + twr),
            i: half(f1i + twi),
        };
        out[N - k] = Cpx {
            r: half(f1r - twr),
            i: half(twi - f1i),
        };
    }
    out
}

/// Combines four length-`m` transforms in `f` into one of length `4m`.
fn butterfly4(f: &mut [Cpx], m: usize, stride: usize, twiddles: &[Cpx; N]) {
    for k in 0..m {
        let a0 = f[k].div(4);
        let s0 = f[k + m].div(4).mul(twiddles[k * stride]);
        let s1 = f[k + 2 * m].div(4).mul(twiddles[2 * k * stride]);
        let s2 = f[k + 3 * m].div(4).mul(twiddles[3 * k * stride]);
        let s5 = a0.sub(s1);
        let a0 = a0.add(s1);
        let s3 = s0.add(s2);
        let s4 = s0.sub(s2);
        f[k + 2 * m] = a0.sub(s3);
        f[k] = a0.add(s3);
        f[k + m] = Cpx {
            r: s5.r.wrapping_add(s4.i),
            i: s5.i.wrapping_sub(s4.r),
        };
        f[k + 3 * m] = Cpx {
            r: s5.r.wrapping_sub(s4.i),
            i: s5.i.wrapping_add(s4.r),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `seconds` of a `hz` sine at `amplitude`.
    fn tone(hz: f64, amplitude: f64, seconds: f64) -> Vec<i16> {
        let n = (seconds * RATE as f64) as usize;
        (0..n)
            .map(|i| (amplitude * (2.0 * PI * hz * i as f64 / RATE as f64).sin()).round() as i16)
            .collect()
    }

    /// Deterministic white-ish noise (an LCG), full 16-bit range scaled by `amplitude`.
    fn noise(len: usize, amplitude: f64) -> Vec<i16> {
        let mut state = 0x2545_F491u32;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((f64::from((state >> 16) as i16)) * amplitude) as i16
            })
            .collect()
    }

    fn features(frontend: &mut Frontend, samples: &[i16]) -> Vec<[f32; FEATURES]> {
        let mut out = Vec::new();
        frontend.push(samples, &mut out);
        out
    }

    #[test]
    fn first_frame_after_a_window_then_one_per_step() {
        let mut frontend = Frontend::new();
        let mut out = Vec::new();
        frontend.push(&[0; WINDOW - 1], &mut out);
        assert_eq!(out.len(), 0);
        frontend.push(&[0], &mut out);
        assert_eq!(out.len(), 1);
        frontend.push(&[0; STEP - 1], &mut out);
        assert_eq!(out.len(), 1);
        frontend.push(&[0], &mut out);
        assert_eq!(out.len(), 2);
        frontend.push(&[0; 10 * STEP + 5], &mut out);
        assert_eq!(out.len(), 12);
        assert_eq!(features(&mut Frontend::new(), &[0; 16_000]).len(), 100 - 2);
    }

    #[test]
    fn silence_is_the_same_in_every_channel() {
        let frames = features(&mut Frontend::new(), &[0; 16_000]);
        for frame in &frames[10..] {
            assert!(frame.iter().all(|&v| v == frame[0]), "{frame:?}");
        }
    }

    #[test]
    fn a_tone_peaks_in_its_channel() {
        // mel(1 kHz) ≈ 1000; the channel centres lie at 185.2 + 63.13 (j + 1) mel, so
        // 1 kHz is closest to channel 12's.
        let frames = features(&mut Frontend::new(), &tone(1000.0, 8000.0, 0.3));
        for frame in &frames[..10] {
            let peak = (0..FEATURES)
                .max_by(|&a, &b| frame[a].total_cmp(&frame[b]))
                .unwrap();
            assert_eq!(peak, 12, "{frame:?}");
        }
        // 4 kHz: mel 2146, nearest channel 30's centre (2142).
        let frames = features(&mut Frontend::new(), &tone(4000.0, 8000.0, 0.3));
        let peak = (0..FEATURES)
            .max_by(|&a, &b| frames[5][a].total_cmp(&frames[5][b]))
            .unwrap();
        assert_eq!(peak, 30, "{:?}", frames[5]);
    }

    #[test]
    fn louder_is_higher_and_noise_reduction_fades_a_steady_tone() {
        let quiet = features(&mut Frontend::new(), &tone(1000.0, 500.0, 2.0));
        let loud = features(&mut Frontend::new(), &tone(1000.0, 16_000.0, 2.0));
        assert!(
            loud[3][12] > quiet[3][12],
            "{} {}",
            loud[3][12],
            quiet[3][12]
        );
        // A stationary tone is what the noise estimate learns away.
        assert!(
            loud[190][12] < loud[3][12],
            "{} {}",
            loud[190][12],
            loud[3][12]
        );
    }

    #[test]
    fn reset_reproduces_a_fresh_frontend() {
        let audio = noise(8000, 0.3);
        let mut frontend = Frontend::new();
        let first = features(&mut frontend, &audio);
        features(&mut frontend, &tone(300.0, 9000.0, 0.25));
        frontend.reset();
        assert_eq!(features(&mut frontend, &audio), first);
        assert_eq!(
            features(&mut frontend.clone(), &audio),
            features(&mut frontend, &audio)
        );
    }

    #[test]
    fn chunking_makes_no_difference() {
        let audio = noise(12_345, 0.5);
        let whole = features(&mut Frontend::new(), &audio);
        for size in [1, 37, 160, 479, 481, 1000] {
            let mut frontend = Frontend::new();
            let mut out = Vec::new();
            for piece in audio.chunks(size) {
                frontend.push(piece, &mut out);
            }
            assert_eq!(out, whole, "pieces of {size}");
        }
    }

    #[test]
    fn extreme_input_does_not_panic() {
        let mut square = Vec::new();
        for i in 0..16_000 {
            square.push(if (i / 8) % 2 == 0 { i16::MIN } else { i16::MAX });
        }
        for audio in [vec![i16::MIN; 16_000], vec![i16::MAX; 16_000], square] {
            let frames = features(&mut Frontend::new(), &audio);
            assert_eq!(frames.len(), 98);
            for v in frames.iter().flatten() {
                assert!(v.is_finite() && *v >= 0.0 && *v <= f32::from(u16::MAX) * OUTPUT_SCALE);
            }
        }
    }

    #[test]
    fn fixed_point_fft_matches_a_dft() {
        let t = Tables::new();
        let x = noise(FFT, 0.9);
        let mut z = [Cpx::default(); N];
        for (slot, &from) in z.iter_mut().zip(&t.order) {
            let pair = 2 * usize::from(from);
            *slot = Cpx {
                r: x[pair],
                i: x[pair + 1],
            };
        }
        let spectrum = real_fft(&mut z, &t);
        for (k, c) in spectrum.iter().enumerate() {
            let (mut re, mut im) = (0.0, 0.0);
            for (n, &v) in x.iter().enumerate() {
                let phase = -2.0 * PI * (k * n) as f64 / FFT as f64;
                re += f64::from(v) * phase.cos();
                im += f64::from(v) * phase.sin();
            }
            let (re, im) = (re / FFT as f64, im / FFT as f64);
            assert!(
                (f64::from(c.r) - re).abs() < 4.0 && (f64::from(c.i) - im).abs() < 4.0,
                "bin {k}: {c:?} against {re:.1} {im:.1}"
            );
        }
    }

    #[test]
    fn tables() {
        let t = Tables::new();
        assert_eq!(t.log_lut[..4], [0, 224, 442, 654]);
        assert_eq!(t.log_lut[57], 5641);
        assert_eq!(t.log_lut[127..], [142, 0]);
        assert_eq!((t.even_smoothing, t.odd_smoothing), (409, 983));
        assert_eq!(t.min_signal_remaining, 819);
        assert_eq!(t.first_bin, 5);
        assert!(t.first_bin + t.bins.len() < BINS);
        assert_eq!(t.window[0], 0);
        assert_eq!(t.window[WINDOW / 2], 4096);
        assert_eq!(t.order[1], 64);
        assert_eq!(t.twiddles[N / 4], Cpx { r: 0, i: -32767 });
    }

    #[test]
    fn integer_helpers() {
        for n in [
            0u32,
            1,
            2,
            3,
            4,
            15,
            16,
            17,
            1000,
            65_535,
            1 << 31,
            u32::MAX,
        ] {
            let root = sqrt32(n);
            let exact = f64::from(n).sqrt().round() as u32;
            assert!(root.abs_diff(exact) <= 1, "{n}: {root}");
        }
        assert_eq!(sqrt64(1 << 40), 1 << 20);
        assert_eq!(sqrt64(u64::MAX), u32::MAX);
        // ln(1000) · 64 ≈ 442.
        assert!(log(1000, &Tables::new().log_lut).abs_diff(442) <= 1);
    }
}
