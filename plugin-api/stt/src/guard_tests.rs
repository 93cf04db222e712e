//! Tests of the echo guard (guard.rs).
use super::*;

fn tone(db: f32, n: usize) -> Vec<f32> {
    // A square wave's level is its amplitude's.
    let a = 10f32.powf(db / 20.0);
    (0..n).map(|i| if i % 2 == 0 { a } else { -a }).collect()
}

/// A steady far end: as loud over the span as where the echo is.
fn at(db: f32) -> Option<Far> {
    Some(Far {
        span_db: db,
        echo_db: Some(db),
        correlation: None,
    })
}

#[test]
fn levels_are_dbfs() {
    assert!((level_db(&tone(-20.0, 512)) + 20.0).abs() < 0.01);
    assert_eq!(level_db(&[0.0; 512]), -100.0);
    assert_eq!(level_db(&[]), -100.0);
}

#[test]
fn the_far_end_is_active_for_the_echo_span_after_it_played() {
    let mut far = FarEnd::default();
    assert_eq!(far.level_db(), None);
    far.push(&tone(-20.0, FRAME));
    far.push(&tone(-30.0, FRAME));
    assert!((far.level_db().unwrap() + 20.0).abs() < 0.01);
    for _ in 0..ECHO_SPAN_FRAMES - 1 {
        far.push(&[0.0; FRAME]);
    }
    assert!((far.level_db().unwrap() + 30.0).abs() < 0.01);
    far.push(&[0.0; FRAME]);
    assert_eq!(far.level_db(), None);
    far.push(&tone(-70.0, FRAME));
    assert_eq!(far.level_db(), None, "too quiet to be the assistant");
}

#[test]
fn playback_resuming_after_digital_silence_is_a_gap_a_quiet_pause_is_not() {
    let mut far = FarEnd::default();
    assert!(!far.push(&tone(-20.0, FRAME)), "the start is no gap");
    for _ in 0..GAP_FRAMES {
        assert!(!far.push(&[0.0; FRAME]));
    }
    assert!(far.push(&tone(-20.0, FRAME)), "an underrun");
    for _ in 0..GAP_FRAMES * 2 {
        far.push(&tone(-70.0, FRAME));
    }
    assert!(!far.push(&tone(-20.0, FRAME)), "a synthesised pause");
    for _ in 0..GAP_FRAMES - 1 {
        far.push(&[0.0; FRAME]);
    }
    assert!(!far.push(&tone(-20.0, FRAME)), "shorter than a gap");
    for _ in 0..ECHO_SPAN_FRAMES {
        far.push(&[0.0; FRAME]);
    }
    assert!(
        !far.push(&tone(-20.0, FRAME)),
        "a new stretch, not a gap in one"
    );
}

#[test]
fn after_a_gap_the_residual_is_measured_again() {
    let mut g = EchoGuard::new(10.0);
    for _ in 0..ECHO_SPAN_WINDOWS {
        g.judge(&tone(-70.0, WINDOW), false, at(-20.0));
    }
    for _ in 0..MIN_OBSERVATIONS {
        g.judge(&tone(-42.0, WINDOW), false, at(-20.0));
    }
    assert!((g.residual_gain_db() + 22.0).abs() < 0.01);
    g.playback_resumed();
    assert!((g.residual_gain_db() + 22.0 - GAP_ALLOWANCE_DB).abs() < 0.01);
    // The echo leaking while the canceller finds it again does not pass for the user…
    let leak = g.judge(&tone(-36.0, WINDOW), true, at(-20.0));
    assert!(!leak.voiced);
    // … the user, who talks just after the gap, does.
    assert!(g.judge(&tone(-25.0, WINDOW), true, at(-20.0)).voiced);
    // The windows right after the gap are no measurement.
    for _ in 2..ECHO_SPAN_WINDOWS {
        g.judge(&tone(-70.0, WINDOW), false, at(-20.0));
    }
    assert!((g.residual_gain_db() + 22.0 - GAP_ALLOWANCE_DB).abs() < 0.01);
    // Measured again: what holds now.
    for _ in 0..MIN_OBSERVATIONS {
        g.judge(&tone(-40.0, WINDOW), false, at(-20.0));
    }
    assert!((g.residual_gain_db() + 20.0).abs() < 0.01);
}

#[test]
fn the_residual_is_what_the_canceller_does_now_not_while_it_converged() {
    let mut g = EchoGuard::new(10.0);
    for _ in 0..ECHO_SPAN_WINDOWS {
        g.judge(&tone(-70.0, WINDOW), false, at(-20.0));
    }
    // Converging: the echo 8 dB under the far end; then converged, 24 dB under.
    for _ in 0..MIN_OBSERVATIONS {
        g.judge(&tone(-28.0, WINDOW), false, at(-20.0));
    }
    assert!((g.residual_gain_db() + 8.0).abs() < 0.01);
    for _ in 0..RECENT_OBSERVATIONS {
        g.judge(&tone(-44.0, WINDOW), false, at(-20.0));
    }
    assert!((g.residual_gain_db() + 24.0).abs() < 0.01);
    // The user at the far end's level is heard.
    assert!(g.judge(&tone(-20.0, WINDOW), true, at(-20.0)).voiced);
}

#[test]
fn a_gap_before_anything_was_measured_leaves_the_residual_unknown() {
    let mut g = EchoGuard::new(10.0);
    g.judge(&tone(-70.0, WINDOW), false, at(-20.0));
    g.playback_resumed();
    assert_eq!(g.residual_gain_db(), UNKNOWN_RESIDUAL_GAIN_DB);
}

#[test]
fn without_the_assistant_speaking_the_vad_decides() {
    let mut g = EchoGuard::new(10.0);
    let v = g.judge(&tone(-50.0, WINDOW), true, None);
    assert!(v.voiced);
    assert_eq!(v.residual_db, None);
    assert!(g.take_stretch().is_none());
}

#[test]
fn until_the_residual_is_measured_the_echo_itself_cannot_pass() {
    let mut g = EchoGuard::new(10.0);
    // Before the echo arrives the cancelled signal is quiet: that is no measurement.
    for _ in 0..ECHO_SPAN_WINDOWS {
        g.judge(&tone(-70.0, WINDOW), false, at(-20.0));
    }
    assert_eq!(g.residual_gain_db(), UNKNOWN_RESIDUAL_GAIN_DB);
    // Uncancelled echo 6 dB under the far end, voiced by the VAD.
    let v = g.judge(&tone(-26.0, WINDOW), true, at(-20.0));
    assert!(!v.voiced);
    assert!((v.residual_db.unwrap() + 20.0).abs() < 0.01);
    // Speech well over the far end does pass.
    assert!(g.judge(&tone(-5.0, WINDOW), true, at(-20.0)).voiced);
}

#[test]
fn a_converged_canceller_lets_the_user_through_and_keeps_residual_peaks_out() {
    let mut g = EchoGuard::new(10.0);
    for _ in 0..ECHO_SPAN_WINDOWS {
        g.judge(&tone(-70.0, WINDOW), false, at(-20.0));
    }
    // Echo-only windows, cancelled to 24 dB under the far end, one residual peak at -16.
    for gain in [-16.0, -24.0, -23.0, -22.0, -24.0] {
        g.judge(&tone(-20.0 + gain, WINDOW), false, at(-20.0));
    }
    assert!((g.residual_gain_db() + 16.0).abs() < 0.01);
    // A residual burst the VAD took for speech: 8 dB over the peak, under the margin.
    let burst = g.judge(&tone(-28.0, WINDOW), true, at(-20.0));
    assert!(!burst.voiced);
    // The user, quieter than the far end but far above its residual.
    let user = g.judge(&tone(-24.0, WINDOW), true, at(-20.0));
    assert!(user.voiced);
    assert!((user.residual_db.unwrap() + 36.0).abs() < 0.01);
    let s = g.take_stretch().unwrap();
    assert_eq!(
        (s.windows as u64, s.vad_voiced, s.passed),
        (ECHO_SPAN_WINDOWS + 7, 2, 1)
    );
    assert!((s.max_excess_db.unwrap() - 12.0).abs() < 0.01);
    assert!(g.take_stretch().is_none());
    // Observations are forgotten after their memory: unknown again.
    for _ in 0..RESIDUAL_MEMORY {
        g.judge(&tone(-60.0, WINDOW), false, None);
    }
    assert_eq!(g.residual_gain_db(), UNKNOWN_RESIDUAL_GAIN_DB);
}

#[test]
fn the_echo_aligned_far_end_is_where_the_delay_points() {
    let mut far = FarEnd::default();
    // 10 loud frames, then 20 silent ones: with an 8-frame delay the latest 4 captured
    // frames hold the echo of frames 18..22 (silent), with 22 frames (the loud ones).
    for _ in 0..10 {
        far.push(&tone(-20.0, FRAME));
    }
    for _ in 0..20 {
        far.push(&[0.0; FRAME]);
    }
    assert_eq!(far.echo_db(8, 4), None, "silent where the echo is");
    assert!((far.echo_db(22, 4).unwrap() + 20.0).abs() < 0.01);
    assert!(
        far.level_db().is_some(),
        "the span still holds the loud frames"
    );
    assert_eq!(
        far.echo_db(HISTORY_FRAMES + 5, 4),
        None,
        "older than what is kept"
    );
}

#[test]
fn a_pause_between_two_words_of_the_echo_is_no_measurement() {
    // The echo's words and the pauses between them, against a far end whose span is loud
    // throughout: only the windows whose own far end was loud are measured.
    let mut g = EchoGuard::new(10.0);
    let between_words = Some(Far {
        span_db: -20.0,
        echo_db: None,
        correlation: None,
    });
    for _ in 0..ECHO_SPAN_WINDOWS + 20 {
        g.judge(&tone(-60.0, WINDOW), false, between_words);
    }
    assert_eq!(g.residual_gain_db(), UNKNOWN_RESIDUAL_GAIN_DB);
    // The next word's echo, barely cancelled (the canceller is finding the delay again):
    // it does not pass for the user.
    assert!(!g.judge(&tone(-33.0, WINDOW), true, at(-20.0)).voiced);
    // Nor is anything measured without a delay estimate.
    let no_delay = Some(Far {
        span_db: -20.0,
        echo_db: None,
        correlation: None,
    });
    for _ in 0..MIN_OBSERVATIONS {
        g.judge(&tone(-60.0, WINDOW), false, no_delay);
    }
    assert_eq!(g.residual_gain_db(), UNKNOWN_RESIDUAL_GAIN_DB);
}

#[test]
fn no_canceller_is_believed_to_remove_more_than_the_floor() {
    // Windows measured 40 dB under the far end: taken as MIN_RESIDUAL_GAIN_DB, so a word
    // of the echo that comes through 25 dB under the far end (the canceller doing less
    // than it did a moment ago) cannot interrupt the reply.
    let mut g = EchoGuard::new(10.0);
    for _ in 0..ECHO_SPAN_WINDOWS {
        g.judge(&tone(-70.0, WINDOW), false, at(-20.0));
    }
    for _ in 0..MIN_OBSERVATIONS {
        g.judge(&tone(-60.0, WINDOW), false, at(-20.0));
    }
    assert_eq!(g.residual_gain_db(), MIN_RESIDUAL_GAIN_DB);
    assert!(!g.judge(&tone(-36.0, WINDOW), true, at(-20.0)).voiced);
    assert!(g.judge(&tone(-30.0, WINDOW), true, at(-20.0)).voiced);
}

#[test]
fn a_window_the_vad_is_unsure_of_is_no_measurement() {
    // The user's first syllable, just under the VAD's threshold, is not taken for echo.
    let mut g = EchoGuard::new(10.0);
    for _ in 0..ECHO_SPAN_WINDOWS {
        g.judge(&tone(-70.0, WINDOW), false, at(-20.0));
    }
    for _ in 0..MIN_OBSERVATIONS {
        g.judge_with(&tone(-44.0, WINDOW), None, false, true, at(-20.0));
    }
    assert!((g.residual_gain_db() + 24.0).abs() < 0.01);
    g.judge_with(&tone(-22.0, WINDOW), None, false, false, at(-20.0));
    assert!((g.residual_gain_db() + 24.0).abs() < 0.01);
    assert!(g.judge(&tone(-25.0, WINDOW), true, at(-20.0)).voiced);
}

/// A window measured with its level before cancellation: `raw_db`.
fn judge_raw(g: &mut EchoGuard, db: f32, raw_db: f32, voiced: bool, far: Option<Far>) -> Verdict {
    g.judge_with(&tone(db, WINDOW), Some(raw_db), voiced, !voiced, far)
}

/// A guard past a stretch's first windows (far end at -20 dBFS), with `n` windows the VAD
/// heard nothing in measured at `db` after cancellation and `raw_db` before.
fn measured(db: f32, raw_db: f32, n: usize) -> EchoGuard {
    let mut g = EchoGuard::new(10.0);
    for _ in 0..ECHO_SPAN_WINDOWS {
        judge_raw(&mut g, -70.0, -70.0, false, at(-20.0));
    }
    for _ in 0..n {
        judge_raw(&mut g, db, raw_db, false, at(-20.0));
    }
    g
}

#[test]
fn the_residual_is_never_taken_above_the_echo_that_reached_the_microphone() {
    // The echo reaches the microphone 12 dB under the far end; the canceller removes 2 dB.
    let mut g = measured(-34.0, -32.0, MIN_OBSERVATIONS);
    assert!((g.echo_path_gain_db().unwrap() + 12.0).abs() < 0.01);
    assert!((g.residual_gain_db() + 14.0).abs() < 0.01);
    // After a gap: the old residual raised by the allowance, but no louder than the echo.
    g.playback_resumed();
    assert!((g.residual_gain_db() + 12.0).abs() < 0.01);
    // The next reply, once the residual is forgotten: the echo path still holds, so the
    // user a little above the far end is heard from its first words.
    for _ in 0..=RESIDUAL_MEMORY {
        g.judge(&tone(-70.0, WINDOW), false, None);
    }
    g.take_stretch();
    assert!((g.residual_gain_db() + 12.0).abs() < 0.01);
    assert!(judge_raw(&mut g, -18.0, -17.0, true, at(-20.0)).voiced);
    assert!(
        !judge_raw(&mut g, -31.0, -30.0, true, at(-20.0)).voiced,
        "within the margin of the raw echo"
    );
    assert!(
        judge_raw(&mut g, -29.5, -28.5, true, at(-20.0)).voiced,
        "{ABOVE_ECHO_DB} dB over the raw echo"
    );
    // A minute on, the echo path is forgotten too: unknown, as loud as the far end.
    for _ in 0..=ECHO_PATH_MEMORY {
        g.judge(&tone(-70.0, WINDOW), false, None);
    }
    assert_eq!(g.echo_path_gain_db(), None);
    assert_eq!(g.residual_gain_db(), UNKNOWN_RESIDUAL_GAIN_DB);
}

#[test]
fn without_enough_echo_path_measurements_the_residual_stands() {
    let g = measured(-34.0, -32.0, MIN_OBSERVATIONS - 1);
    assert_eq!(g.echo_path_gain_db(), None);
    assert_eq!(g.residual_gain_db(), UNKNOWN_RESIDUAL_GAIN_DB);
}

/// A guard that has heard the echo reach the microphone 6 dB under the far end (-20 dBFS)
/// and the canceller remove 25 dB of it.
fn converged() -> EchoGuard {
    let g = measured(-51.0, -26.0, RECENT_OBSERVATIONS);
    assert!((g.echo_path_gain_db().unwrap() + 6.0).abs() < 0.01);
    assert!((g.residual_gain_db() - MIN_RESIDUAL_GAIN_DB).abs() < 0.01);
    g
}

/// A far end at `db` whose echo makes up `correlation` of the window.
fn correlated(db: f32, correlation: f32) -> Option<Far> {
    Some(Far {
        correlation: Some(correlation),
        ..at(db).unwrap()
    })
}

#[test]
fn echo_the_canceller_lets_through_is_not_the_user() {
    let mut g = converged();
    // The canceller stops removing the echo: what is left sounds like speech, 15 dB above
    // the residual measured, at the echo's level before cancellation, and a copy of the
    // far end.
    let leak = judge_raw(&mut g, -30.0, -27.0, true, correlated(-20.0, 0.8));
    assert!(leak.echo_only);
    assert!(!leak.voiced, "{leak:?}");
    // The user as loud (the canceller removes the echo under them) is heard.
    let user = judge_raw(&mut g, -30.0, -27.0, true, correlated(-20.0, 0.1));
    assert!(!user.echo_only);
    assert!(user.voiced, "{user:?}");
    // A copy of the far end is echo even when louder than expected (the volume went up).
    let louder = judge_raw(&mut g, -14.0, -14.0, true, correlated(-20.0, 0.9));
    assert!(louder.echo_only && !louder.voiced, "{louder:?}");
    // Half a copy: the user well over the echo, but not one who is heard only by the
    // residual measured before.
    let over = judge_raw(&mut g, -15.0, -14.0, true, correlated(-20.0, 0.5));
    assert!(over.voiced, "{over:?}");
    let under = judge_raw(&mut g, -30.0, -27.0, true, correlated(-20.0, 0.5));
    assert!(!under.voiced && !under.echo_only, "{under:?}");
}

#[test]
fn a_canceller_that_removes_little_does_not_silence_the_user() {
    // The canceller removes 1 dB of the echo: the residual measured is the echo itself.
    let mut g = measured(-27.0, -26.0, RECENT_OBSERVATIONS);
    assert!((g.residual_gain_db() + 7.0).abs() < 0.01);
    // The user 7 dB above the echo is under the margin over that residual, and heard.
    let user = judge_raw(&mut g, -20.0, -19.0, true, at(-20.0));
    assert!(user.voiced, "{user:?}");
    let echo = judge_raw(&mut g, -27.0, -26.0, true, at(-20.0));
    assert!(!echo.voiced, "{echo:?}");
}

#[test]
fn a_window_as_loud_as_the_echo_passes_when_the_vad_hears_nothing() {
    let mut g = converged();
    let quiet = judge_raw(&mut g, -51.0, -26.0, false, at(-20.0));
    assert!(
        !quiet.echo_only,
        "echo-only is for windows the VAD called speech"
    );
    assert!(!quiet.voiced);
}

#[test]
fn the_users_first_window_measured_as_echo_does_not_make_the_echo_path() {
    let mut g = converged();
    // The onset of the user's words, before the VAD hears them: 8 dB above the far end.
    judge_raw(&mut g, -13.0, -12.0, false, at(-20.0));
    assert!(
        (g.echo_path_gain_db().unwrap() + 6.0).abs() < 0.01,
        "one outlier among {RECENT_OBSERVATIONS} is not the echo path"
    );
    let mut g = EchoGuard::new(10.0);
    assert_eq!(g.echo_path_gain_db(), None);
    for _ in 0..ECHO_SPAN_WINDOWS {
        judge_raw(&mut g, -70.0, -70.0, false, at(-20.0));
    }
    for _ in 0..PATH_OBSERVATIONS * 2 {
        judge_raw(&mut g, -51.0, -26.0, false, at(-20.0));
    }
    for _ in 0..PATH_OBSERVATIONS / 8 {
        judge_raw(&mut g, -13.0, -12.0, false, at(-20.0));
    }
    assert!((g.echo_path_gain_db().unwrap() + 6.0).abs() < 0.01);
    judge_raw(&mut g, -13.0, -12.0, false, at(-20.0));
    assert!(
        (g.echo_path_gain_db().unwrap() - 8.0).abs() < 0.01,
        "more than an eighth is the path"
    );
}

#[test]
fn a_window_of_the_far_end_delayed_correlates_and_speech_does_not() {
    let mut far = FarEnd::default();
    // A far end that is no simple tone: a chirp-like sequence.
    let signal: Vec<f32> = (0..HISTORY_FRAMES * FRAME)
        .map(|i| ((i as f32 * 0.013).sin() * (i as f32 * 0.0007).cos()) * 0.3)
        .collect();
    for frame in signal.chunks(FRAME) {
        far.push(frame);
    }
    let (delay, after) = (1_200, 100);
    let end = signal.len() - after - delay;
    // The echo: the far end `delay` samples late, at a quarter of its level.
    let echo: Vec<f32> = signal[end - WINDOW..end].iter().map(|s| s * 0.25).collect();
    let c = far.echo_correlation(&echo, delay + 90, after).unwrap();
    assert!(c > 0.99, "{c}");
    // Something else (a different sequence) hardly correlates.
    let other: Vec<f32> = (0..WINDOW).map(|i| (i as f32 * 0.31).sin() * 0.1).collect();
    let c = far.echo_correlation(&other, delay, after).unwrap();
    assert!(c < ECHO_CORRELATION, "{c}");
    // Nothing to compare with beyond what is kept.
    assert_eq!(far.echo_correlation(&echo, signal.len(), after), None);
}
