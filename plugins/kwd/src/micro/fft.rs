//! The TFLite Micro frontend's fixed-point real FFT: 512 16-bit samples → 257 Q15 bins
//! (DC to Nyquist, divided by the length), with the same rounding and 16-bit wrapping as
//! the frontend's own (a radix-4 complex FFT of the samples taken in pairs, then the split
//! into the even and odd samples' transforms), so that the features come out bit for bit.

use std::array;
use std::f64::consts::PI;
use std::hint::black_box;

/// Real FFT length (the frontend's window, zero-padded) and the complex transform
/// computing it.
pub(super) const FFT: usize = 512;
const N: usize = FFT / 2;
const _: () = assert!(N == 4 * 4 * 4 * 4, "the complex FFT is four radix-4 stages");
/// Spectrum bins, DC to Nyquist.
pub(super) const BINS: usize = N + 1;

/// The transform's tables, computed once.
///
/// The sines and cosines are the C library's at run time, as the frontend's are:
/// `black_box` keeps the compiler from evaluating them at build time.
#[derive(Clone)]
pub(super) struct Fft {
    /// e^(-2πik/N) in Q15.
    twiddles: [Cpx; N],
    /// e^(-πi((k+1)/N + 1/2)) in Q15: untangles the real FFT from the complex one.
    super_twiddles: [Cpx; N / 2],
    /// Which input pair each FFT slot starts from: its index's four base-4 digits reversed.
    order: [u8; N],
}

impl Fft {
    pub(super) fn new() -> Fft {
        let unit = |phase: f64| Cpx {
            r: (0.5 + 32767.0 * black_box(phase).cos()).floor() as i16,
            i: (0.5 + 32767.0 * black_box(phase).sin()).floor() as i16,
        };
        Fft {
            twiddles: array::from_fn(|k| unit(-2.0 * PI * k as f64 / N as f64)),
            super_twiddles: array::from_fn(|k| unit(-PI * ((k + 1) as f64 / N as f64 + 0.5))),
            order: array::from_fn(|k| {
                (0..4).fold(0u8, |rev, digit| {
                    (rev << 2) | ((k >> (2 * digit)) & 3) as u8
                })
            }),
        }
    }

    /// The spectrum of the real signal `x`.
    pub(super) fn spectrum(&self, x: &[i16; FFT]) -> [Cpx; BINS] {
        let mut z = [Cpx::default(); N];
        for (slot, &from) in z.iter_mut().zip(&self.order) {
            let pair = 2 * usize::from(from);
            *slot = Cpx {
                r: x[pair],
                i: x[pair + 1],
            };
        }
        real_fft(&mut z, self)
    }
}

/// A Q15 complex value; arithmetic wraps at 16 bits as the fixed-point FFT's does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Cpx {
    pub(super) r: i16,
    pub(super) i: i16,
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
fn real_fft(z: &mut [Cpx; N], t: &Fft) -> [Cpx; BINS] {
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

    #[test]
    fn matches_a_dft() {
        // Deterministic white-ish noise (an LCG) over most of the 16-bit range.
        let mut state = 0x2545_F491u32;
        let x: [i16; FFT] = array::from_fn(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (f64::from((state >> 16) as i16) * 0.9) as i16
        });
        let spectrum = Fft::new().spectrum(&x);
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
        let t = Fft::new();
        assert_eq!(t.order[1], 64);
        assert_eq!(t.twiddles[N / 4], Cpx { r: 0, i: -32767 });
    }
}
