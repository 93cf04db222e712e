//! Tests of the endpointer (vad.rs): utterances, pauses, the read-ahead quiet, barge-in.
use super::*;

/// Feeds `runs` of (windows, speech probability) to `ep`; the events they made, in order.
fn feed(ep: &mut Endpointer, runs: &[(usize, f32)]) -> Vec<Event> {
    let w = vec![0.1; WINDOW];
    let mut out = Vec::new();
    for &(windows, p) in runs {
        for _ in 0..windows {
            out.extend(ep.push(&w, p));
        }
    }
    out
}

/// What kind of event `e` is.
fn kind(e: &Event) -> &'static str {
    match e {
        Event::Quiet(_) => "quiet",
        Event::Pause(_) => "pause",
        Event::Resumed => "resumed",
        Event::Late { .. } => "late",
        Event::End(_) => "end",
    }
}

#[test]
fn speech_then_silence_makes_one_utterance_with_preroll() {
    let mut ep = Endpointer::new(0.5, 500, 100, 10_000, 200, None, None);
    // 1 s silence, 1 s speech, 1 s silence (32 ms windows).
    let out = feed(&mut ep, &[(31, 0.0), (31, 0.9), (31, 0.0)]);
    let [Event::End(u)] = &out[..] else {
        panic!("{out:?}");
    };
    let len_ms = u.samples.len() * 1000 / RATE;
    // speech (~1 s) + preroll (~0.2 s) + a short tail, not the whole 0.5 s of silence.
    assert!((1100..1500).contains(&len_ms), "{len_ms} ms");
    assert!(u.speech_end > u.speech_start);
}

#[test]
fn a_long_pause_inside_is_shortened_for_the_transcriber() {
    let mut ep = Endpointer::new(0.5, 2000, 100, 10_000, 200, Some(150), None);
    let (speech, quiet) = (vec![0.5; WINDOW], vec![0.0; WINDOW]);
    let mut pauses = Vec::new();
    // 10 windows of speech, a 900 ms pause (28 windows), 10 more, then the end.
    for (n, voiced) in [(10, true), (28, false), (10, true), (70, false)] {
        for _ in 0..n {
            let w = if voiced { &speech } else { &quiet };
            match ep.push(w, if voiced { 0.9 } else { 0.0 }) {
                Some(Event::Pause(u)) | Some(Event::End(u)) => pauses.push(u),
                _ => {}
            }
        }
    }
    let first = &pauses[0];
    assert!(
        first.gaps.is_empty(),
        "nothing is cut before speech resumes"
    );
    assert_eq!(first.speech().len(), first.samples.len());
    let Some(last) = pauses.last() else {
        panic!("the utterance ended");
    };
    assert_eq!(last.gaps.len(), 1);
    let speech_len = last.speech().len();
    let kept_pause = speech_len - 20 * WINDOW - (last.samples.len() - 48 * WINDOW);
    assert_eq!(kept_pause, RATE * PAUSE_KEPT_MS / 1000);
    // Every voiced sample is kept, in order.
    assert_eq!(
        last.speech().iter().filter(|s| **s > 0.0).count(),
        20 * WINDOW
    );
    assert_eq!(last.speech().first(), Some(&0.5));
}

#[test]
fn short_blips_are_not_speech() {
    let mut ep = Endpointer::new(0.5, 500, 200, 10_000, 200, Some(300), None);
    let w = vec![0.1; WINDOW];
    for i in 0..200 {
        let p = if i % 10 == 0 { 0.9 } else { 0.1 };
        assert!(ep.push(&w, p).is_none());
    }
    assert!(!ep.in_speech());
}

#[test]
fn a_dip_just_under_the_threshold_does_not_break_the_onset() {
    let mut ep = Endpointer::new(0.5, 500, 128, 10_000, 200, None, None);
    let w = vec![0.1; WINDOW];
    // 0.58, 0.44, 0.69, 0.77: one run of four windows (128 ms), speech from the first.
    for p in [0.01, 0.58, 0.44, 0.69, 0.77] {
        ep.push(&w, p);
    }
    assert!(ep.in_speech());
    assert_eq!(ep.speech_start(), WINDOW as u64);
    // A run cannot begin under the threshold, and a deep dip ends it.
    let mut ep = Endpointer::new(0.5, 500, 128, 10_000, 200, None, None);
    for p in [0.44, 0.6, 0.2, 0.6, 0.6, 0.6] {
        ep.push(&w, p);
    }
    assert!(!ep.in_speech());
}

#[test]
fn barge_in_starts_speech_after_its_own_minimum() {
    let mut ep = Endpointer::new(0.5, 500, 250, 10_000, 200, None, None);
    let w = vec![0.1; WINDOW];
    // 160 ms voiced is not speech by default (250 ms) …
    for _ in 0..5 {
        ep.push(&w, 0.9);
    }
    assert!(!ep.in_speech());
    ep.reset();
    // … but it is while the assistant speaks with barge_in_min_ms = 150.
    ep.set_barge_in(Some(150));
    for _ in 0..5 {
        ep.push(&w, 0.9);
    }
    assert!(ep.in_speech());
    assert_eq!(ep.position - ep.speech_start(), 5 * WINDOW as u64);
}

#[test]
fn a_barge_in_keeps_the_preroll_too() {
    // An utterance over a reply kept only 100 ms before its voiced run for a while:
    // the echo guard often counts the user's first word as echo, and the acoustic
    // bench then lost it ("I visit." for "What time is it?"), 2 lines of 30 cut;
    // with the preroll, none in 60.
    let mut ep = Endpointer::new(0.5, 64, 250, 10_000, 300, None, None);
    let (echo, user) = (vec![0.01; WINDOW], vec![0.1; WINDOW]);
    let utterance = |ep: &mut Endpointer| {
        for _ in 0..20 {
            ep.push(&echo, 0.0);
        }
        for _ in 0..10 {
            ep.push(&user, 0.9);
        }
        loop {
            if let Some(Event::End(u)) = ep.push(&echo, 0.0) {
                return u;
            }
        }
    };
    for barge_in in [None, Some(64)] {
        ep.set_barge_in(barge_in);
        let heard = utterance(&mut ep);
        let before = heard.samples.iter().position(|s| *s == 0.1).unwrap();
        // The preroll: 300 ms, to within a window.
        assert!(before <= RATE * 300 / 1000, "{barge_in:?}: {before}");
        assert!(
            before + WINDOW > RATE * 300 / 1000,
            "{barge_in:?}: {before}"
        );
    }
}

#[test]
fn a_turn_pause_comes_after_turn_silence_ms_and_the_silence_wait_stays_the_fallback() {
    // endpoint = turn_model, turn_silence_ms = 200, smart_silence_ms = 600 (the late
    // check), vad_silence_ms = 2000.
    let mut ep = Endpointer::new(0.5, 2000, 100, 30_000, 200, Some(200), Some(600));
    let w = vec![0.1; WINDOW];
    for _ in 0..31 {
        assert!(ep.push(&w, 0.9).is_none());
    }
    let (mut pause, mut late, mut end) = (None, None, None);
    for i in 1..=80 {
        match ep.push(&w, 0.0) {
            Some(Event::Pause(u)) => pause = Some((i, u)),
            Some(Event::Late { serial }) => late = Some((i, serial)),
            Some(Event::End(_)) => {
                end = Some(i);
                break;
            }
            _ => {}
        }
    }
    // The first whole window past 200 ms (7 × 32 ms = 224 ms) …
    let (i, judged) = pause.expect("a pause");
    assert_eq!(i, 7);
    assert_eq!((judged.serial, judged.pause), (1, 1));
    // … with the speech and the 200 ms of silence after it, for the turn model.
    let after_speech = judged.samples.len() - 31 * WINDOW;
    assert_eq!(after_speech, RATE / 5, "samples after the speech");
    // The same pause again past 600 ms (19 × 32 ms), once.
    assert_eq!(late, Some((19, 1)));
    // Neither ended it: 2 s of silence ends it all the same (2016 ms).
    assert_eq!(end, Some(63));
}

#[test]
fn pauses_are_numbered_within_their_utterance() {
    let mut ep = Endpointer::new(0.5, 2000, 100, 30_000, 200, Some(200), Some(600));
    // Speech, a 300 ms pause, speech again, a 700 ms pause.
    let events = feed(&mut ep, &[(10, 0.9), (10, 0.0), (10, 0.9), (22, 0.0)]);
    let seen: Vec<String> = events
        .iter()
        .map(|e| match e {
            Event::Quiet(u) | Event::Pause(u) => format!("{} {}", kind(e), u.pause),
            _ => kind(e).to_owned(),
        })
        .collect();
    assert_eq!(
        seen,
        [
            "quiet 1", "pause 1", "resumed", "quiet 2", "pause 2", "late"
        ]
    );
}

#[test]
fn smart_pauses_are_reported_once_and_speech_may_resume() {
    let mut ep = Endpointer::new(0.5, 2000, 100, 30_000, 200, Some(600), None);
    // 1 s speech, 0.8 s pause, 1 s speech, 2.5 s silence (32 ms windows).
    let events = feed(&mut ep, &[(31, 0.9), (25, 0.0), (31, 0.9), (78, 0.0)]);
    let kinds: Vec<&str> = events.iter().map(kind).collect();
    assert_eq!(
        kinds,
        ["quiet", "pause", "resumed", "quiet", "pause", "end"]
    );
    let (Event::Pause(first), Event::End(whole)) = (&events[1], &events[5]) else {
        unreachable!()
    };
    assert_eq!(first.serial, 1);
    assert_eq!(whole.serial, 1);
    assert!(whole.samples.len() > first.samples.len() * 2);
    assert_eq!(first.speech_start, whole.speech_start);
}

/// The start of each silence is read ahead of its pause: a gap shorter than the pause
/// gives a quiet and speech back; a longer one a quiet, then the pause, on the same
/// speech (the quiet's audio ends sooner after it).
#[test]
fn the_start_of_a_silence_is_reported_before_its_pause() {
    let mut ep = Endpointer::new(0.5, 2000, 100, 30_000, 200, Some(150), Some(600));
    // Speech, a 96 ms gap, speech, then silence past the pause (32 ms windows).
    let events = feed(&mut ep, &[(10, 0.9), (3, 0.0), (10, 0.9), (6, 0.0)]);
    let [
        Event::Quiet(gap),
        Event::Resumed,
        Event::Quiet(quiet),
        Event::Pause(pause),
    ] = &events[..]
    else {
        panic!("{events:?}");
    };
    assert_eq!((gap.pause, quiet.pause, pause.pause), (1, 1, 1));
    assert_eq!(quiet.speech_end, pause.speech_end);
    assert!(gap.speech_end < quiet.speech_end);
    // One window of silence (32 ms) at the quiet, five at the pause.
    assert_eq!(pause.samples.len() - quiet.samples.len(), 4 * WINDOW);
    assert!(pause.samples.starts_with(&quiet.samples));
    // No quiet where the pause comes first (or with no pause at all).
    for pause_ms in [None, Some(30)] {
        let mut ep = Endpointer::new(0.5, 2000, 100, 30_000, 200, pause_ms, None);
        let events = feed(&mut ep, &[(10, 0.9), (10, 0.0)]);
        assert!(
            !events.iter().any(|e| matches!(e, Event::Quiet(_))),
            "{pause_ms:?}: {events:?}"
        );
    }
    // An utterance past READ_AHEAD_MAX_MS is read at its pause only.
    let mut long = Endpointer::new(0.5, 2000, 100, 30_000, 200, Some(150), None);
    let kinds: Vec<&str> = feed(&mut long, &[(200, 0.9), (6, 0.0)])
        .iter()
        .map(kind)
        .collect();
    assert_eq!(kinds, ["pause"], "6.4 s of speech");
}
