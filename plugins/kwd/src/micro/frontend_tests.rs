//! The frontend's tests (the parity with pymicro-features is `tests/tests/kwd_micro_features.rs`).

use std::f64::consts::PI;

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
