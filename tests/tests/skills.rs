//! The built-in skills end to end, on the whole assistant (the five real plugins, real
//! models, the user's side spoken by Kokoro into stt): arithmetic, the time, a timer that is
//! set and cancelled, and "that's all" are answered by the host without the model; a timer
//! that ends rings outside the dialog, again after each pause, until "Alexa, stop".
//! The timings each test sees are printed; the bounds are for a busy 2-core machine.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant, UNIX_EPOCH};

use chrono::Timelike;
use tokio_stream::StreamExt;
use voicehost_proto::tts::v1::{PlaybackEvent, PlaybackEventKind};
use voicehost_tests::assistant::{Assistant, SERIAL, events_named, next_event, num};
use voicehost_tests::{AppLine, espeak, scene, trim_silence, tts_speech, wait_app_events, words};

mod whisper_common;
use whisper_common::transcribe;

/// The `n`th dialog's end (from 1), once app.log has it.
fn dialog_ended(a: &Assistant, n: usize) -> (Vec<AppLine>, AppLine) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ev = wait_app_events(&a.log(), &["dialog_ended"], Duration::from_secs(30));
        if let Some(end) = events_named(&ev, "dialog_ended").get(n - 1) {
            let end = (*end).clone();
            return (ev, end);
        }
        assert!(Instant::now() < deadline, "no dialog end #{n}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An app.log timestamp in µs since the Unix epoch.
fn ts_us(e: &AppLine) -> i64 {
    humantime::parse_rfc3339(&e.ts)
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// Says `line` (after `pause_s` of the file) and waits until the dialog's reply has played.
async fn turn(
    a: &Assistant,
    playback: &mut tonic::Streaming<PlaybackEvent>,
    name: &str,
    line: &[f32],
) -> PlaybackEvent {
    let length = line.len() as f32 / 16_000.0;
    a.say(name, &scene(length + 2.8, &[(0.3, line)])).await;
    next_event(
        playback,
        PlaybackEventKind::Finished,
        true,
        Duration::from_secs(60),
    )
    .await
}

/// What went wrong in a dialog, for a failure report: its faults and what stt heard.
fn print_faults(ev: &[AppLine]) {
    for e in ev.iter().filter(|e| {
        ["dialog_error", "prompt_played", "stt_final", "user_said"].contains(&e.event.as_str())
    }) {
        eprintln!("{} {}: {}", e.ts, e.event, e.fields);
    }
}

/// Prints the skill turns' timings and checks that matching takes microseconds.
fn print_skill_timings(ev: &[AppLine]) {
    for e in events_named(ev, "skill_matched") {
        eprintln!("skill_matched: {}", e.fields);
        assert!(
            num(e, "text_to_match_us") < 50_000.0,
            "matching took {} µs",
            e.field("text_to_match_us")
        );
    }
}

/// Arithmetic, the time, a timer set, asked about and cancelled, and "that's all", in one
/// dialog: the model is never asked, the transcript has every line as for the model's
/// answers, and "that's all" ends the dialog at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arithmetic_time_and_a_cancelled_timer_are_answered_without_the_model() {
    let _serial = SERIAL.lock().await;
    let alexa = espeak("Alexa");
    let lines = [
        "What is twelve times seven?",
        "What time is it?",
        "Set a timer for ten minutes.",
        "Cancel the timer.",
        "That's all.",
    ];
    let spoken: Vec<Vec<f32>> = tts_speech(&lines)
        .await
        .iter()
        .map(|s| trim_silence(s))
        .collect();
    let mut a = Assistant::start("Hi, Master!", &[]);
    let mut playback = a.playback().await;
    let hours_before = chrono::Local::now().hour12().1;

    a.wake(&mut playback, &alexa).await;
    let asked = Instant::now();
    for (i, line) in spoken.iter().take(4).enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(800)).await;
        }
        turn(&a, &mut playback, &format!("line{i}"), line).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    a.say(
        "done",
        &scene(
            spoken[4].len() as f32 / 16_000.0 + 2.8,
            &[(0.3, &spoken[4])],
        ),
    )
    .await;
    let (ev, ended) = dialog_ended(&a, 1);
    eprintln!("five turns in {:?}", asked.elapsed());
    let hours_after = chrono::Local::now().hour12().1;

    let dialog = ended.field("dialog").to_owned();
    let transcript = a.transcript_lines(&dialog);
    eprintln!("{}", transcript.join("\n"));
    print_skill_timings(&ev);
    if ended.field("reason") != "stop" {
        print_faults(&ev);
    }
    assert_eq!(ended.field("reason"), "stop", "{}", ended.fields);
    assert_eq!(ended.field("turns"), "5");
    let skills: Vec<&str> = events_named(&ev, "skill_matched")
        .iter()
        .map(|e| e.field("skill"))
        .collect();
    assert_eq!(skills, ["arithmetic", "time", "timer", "timer", "stop"]);
    assert!(
        !ev.iter()
            .any(|e| e.event == "llm_reply" && e.field("dialog") == dialog),
        "the model was asked"
    );
    assert!(events_named(&ev, "turn_timing").is_empty());

    // USER and ASSISTANT lines as for the model's answers; "that's all" has no answer.
    let roles: Vec<&str> = transcript
        .iter()
        .map(|l| l.split(':').next().unwrap())
        .collect();
    assert_eq!(
        roles,
        [
            "USER",
            "ASSISTANT",
            "USER",
            "ASSISTANT",
            "USER",
            "ASSISTANT",
            "USER",
            "ASSISTANT",
            "USER"
        ]
    );
    assert!(transcript[1].contains("84"), "{}", transcript[1]);
    let hour = |h: u32| transcript[3].contains(&format!("It's {h}:"));
    assert!(
        hour(hours_before) || hour(hours_after),
        "the local hour ({hours_before}) in {:?}",
        transcript[3]
    );
    assert_eq!(transcript[5], "ASSISTANT: Timer set for 10 minutes.");
    assert_eq!(
        transcript[7],
        "ASSISTANT: Your 10 minute timer is cancelled."
    );

    a.host.terminate();
    let said = words(&transcribe(&a.said()));
    eprintln!("the assistant said: {said:?}");
    assert!(
        said.iter().any(|w| w == "84" || w.starts_with("eighty")),
        "84 not heard in {said:?}"
    );
}

/// A timer of 3 seconds: confirmed, it ends the dialog's follow-up window and rings on time
/// outside the dialog, again after each pause; "Alexa" in a pause, then "stop", silences
/// it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_rings_on_time_outside_the_dialog_until_alexa_stop() {
    let _serial = SERIAL.lock().await;
    let alexa = espeak("Alexa");
    let spoken = tts_speech(&["Set a timer for three seconds.", "Stop."]).await;
    let (set, stop) = (trim_silence(&spoken[0]), trim_silence(&spoken[1]));
    let mut a = Assistant::start("Hi, Master!", &[]);
    let mut playback = a.playback().await;

    a.wake(&mut playback, &alexa).await;
    let confirmed = turn(&a, &mut playback, "set", &set).await;
    // The timer's end closes the dialog's follow-up window; the alarm rings outside it.
    let first = next_event(
        &mut playback,
        PlaybackEventKind::Started,
        false,
        Duration::from_secs(20),
    )
    .await;
    let (ev, ended) = dialog_ended(&a, 1);
    if ended.field("reason") != "timer" {
        print_faults(&ev);
    }
    assert_eq!(ended.field("reason"), "timer", "{}", ended.fields);
    let matched = events_named(&ev, "skill_matched")[0].clone();
    assert_eq!(matched.field("skill"), "timer");
    assert_eq!(matched.field("reply"), "Timer set for 3 seconds.");
    // skill_matched is logged once the confirmation has played: the timer was set that
    // long before its end.
    let answered_ms = num(&matched, "match_to_first_audio_ms") + num(&matched, "reply_play_ms");
    let set_us = confirmed.ts_unix_us - (answered_ms * 1000.0) as i64;
    let set_to_ring_ms = (first.ts_unix_us - set_us) as f64 / 1000.0;
    eprintln!(
        "timer set → alarm: {set_to_ring_ms} ms; confirmation played → alarm: {} ms",
        (first.ts_unix_us - confirmed.ts_unix_us) / 1000
    );
    assert!(set_to_ring_ms >= 2900.0, "rang early: {set_to_ring_ms} ms");
    assert!(set_to_ring_ms < 10_000.0, "rang late: {set_to_ring_ms} ms");
    assert!(
        first.ts_unix_us >= ts_us(&ended) - 50_000,
        "rang during the dialog"
    );

    // It rings again after a pause, with kwd listening in the pause.
    let rang = |e: &PlaybackEvent| e.dialog_id.is_empty() && e.utterance_id == first.utterance_id;
    let end_of_first = loop {
        let e = playback.next().await.unwrap().unwrap();
        if rang(&e) && e.kind() == PlaybackEventKind::Finished {
            break e;
        }
    };
    let second = next_event(
        &mut playback,
        PlaybackEventKind::Started,
        false,
        Duration::from_secs(10),
    )
    .await;
    let pause_ms = (second.ts_unix_us - end_of_first.ts_unix_us) / 1000;
    eprintln!("pause between two rings: {pause_ms} ms");
    assert!((2500..6000).contains(&pause_ms), "pause {pause_ms} ms");
    next_event(
        &mut playback,
        PlaybackEventKind::Finished,
        false,
        Duration::from_secs(10),
    )
    .await;

    // "Alexa" in the pause, then "stop".
    tokio::time::sleep(Duration::from_millis(400)).await;
    a.wake(&mut playback, &alexa).await;
    a.say(
        "stop",
        &scene(stop.len() as f32 / 16_000.0 + 2.8, &[(0.3, &stop)]),
    )
    .await;
    let (ev, ended) = dialog_ended(&a, 2);
    let stopped_at = Instant::now();
    print_skill_timings(&ev);
    if ended.field("reason") != "stop" {
        print_faults(&ev);
    }
    assert_eq!(ended.field("reason"), "stop", "{}", ended.fields);
    let transcript = a.transcript_lines(ended.field("dialog"));
    eprintln!("{}", transcript.join("\n"));
    assert_eq!(transcript.len(), 1, "only the user's stop: {transcript:?}");
    assert!(words(&transcript[0]).contains(&"stop".to_owned()));

    // Silenced: nothing plays any more.
    let more = tokio::time::timeout(Duration::from_secs(6), async {
        loop {
            let e = playback.next().await.unwrap().unwrap();
            if e.kind() == PlaybackEventKind::Started {
                return e;
            }
        }
    })
    .await;
    assert!(more.is_err(), "the alarm rang after stop: {more:?}");
    let ev = wait_app_events(&a.log(), &["timer_alarm"], Duration::from_secs(1));
    let rings = events_named(&ev, "timer_alarm");
    eprintln!(
        "rings: {}; stop → silence checked for {:?}",
        rings.len(),
        stopped_at.elapsed()
    );
    for r in &rings {
        eprintln!("timer_alarm: {}", r.fields);
    }
    assert!(rings.len() >= 2);
    assert_eq!(rings[0].field("text"), "Your 3 second timer is done.");
    assert_eq!(rings[1].field("text"), "Your timer is done.");
    assert!(events_named(&ev, "timer_alarm_timeout").is_empty());
    assert_eq!(events_named(&ev, "wake_detected").len(), 2);
    // kwd was off while the alarm played and on again in its pauses.
    let speaking: Vec<&str> = ev
        .iter()
        .filter(|e| e.field("reason") == "speaking")
        .map(|e| e.event.as_str())
        .collect();
    assert!(
        speaking
            .windows(2)
            .filter(|w| w == &["kwd_disabled", "kwd_enabled"])
            .count()
            >= 3,
        "{speaking:?}"
    );
    a.host.terminate();
}
