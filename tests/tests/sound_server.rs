//! The whole assistant on real sound devices, as on a user's machine: a PulseAudio server
//! of its own (`voicehost_bench::sound_server`) with a speaker, a microphone and an
//! acoustic echo path from one to the other (40 ms of device latency); the assistant runs
//! with `input = auto` and `output = auto` and opens the default devices through cpal and
//! ALSA. The user's lines are played into the microphone, what the assistant says is
//! recorded from the speaker and transcribed back with Whisper. Nothing here is simulated:
//! the echo of every reply really reaches the microphone, on the sound server's clock.
//!
//! One conversation: the greeting (which says "Alexa" and must not wake it), "Alexa",
//! "what is twelve times seven" (a skill), a follow-up for the model, a ten-second timer,
//! the end on silence; the alarm rings until "Alexa" … "stop"; then "Alexa", the time, a
//! timer set and cancelled. The assistant's own voice, echoed into the microphone, neither
//! wakes nor interrupts it. Then "what time is it" spoken over a long answer.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::Timelike;
use tokio_stream::StreamExt;
use voicehost_bench::sound_server::ECHO_MS;
use voicehost_proto::tts::v1::{PlaybackEvent, PlaybackEventKind};
use voicehost_tests::assistant::{Assistant, SERIAL, events_named, next_event, num};
use voicehost_tests::{AppLine, espeak, scene, trim_silence, tts_speech, wait_app_events, words};

mod whisper_common;
use whisper_common::transcribe;

/// Replies of a few sentences: long enough to be interrupted.
const LONG_ANSWERS: &str = "SYSTEM \"\"\"You are a helpful voice assistant. Answer in three or \
                            four sentences.\"\"\"\nPARAMETER temperature 0\n\
                            PARAMETER num_predict 60\n";

/// Says `line` after `pause_ms` and waits until the dialog's reply has played.
async fn turn(
    a: &Assistant,
    playback: &mut tonic::Streaming<PlaybackEvent>,
    name: &str,
    line: &[f32],
    pause_ms: u64,
) -> PlaybackEvent {
    tokio::time::sleep(Duration::from_millis(pause_ms)).await;
    let length = line.len() as f32 / 16_000.0;
    a.say(name, &scene(length + 2.8, &[(0.3, line)])).await;
    next_event(
        playback,
        PlaybackEventKind::Finished,
        true,
        Duration::from_secs(90),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_on_real_sound_devices() {
    let _serial = SERIAL.lock().await;
    let alexa = espeak("Alexa");
    let spoken = tts_speech(&[
        "What is twelve times seven?",
        "What is the capital of France?",
        "Set a timer for ten seconds.",
        "Stop.",
        "What time is it?",
        "Set a timer for one minute.",
        "Cancel the timer.",
    ])
    .await;
    let [sum, france, ten_s, stop, time, minute, cancel] =
        [0, 1, 2, 3, 4, 5, 6].map(|i| trim_silence(&spoken[i]));
    let mut a = Assistant::on_sound_server("Hello, I am Alexa.", LONG_ANSWERS, ECHO_MS);
    let ev = wait_app_events(
        &a.log(),
        &["stt_ready", "tts_ready"],
        Duration::from_secs(5),
    );
    for (event, key) in [("stt_ready", "input"), ("tts_ready", "output")] {
        let ready = events_named(&ev, event)[0];
        eprintln!("{event}: {key} = {}", ready.field(key));
        assert!(
            !ready.field(key).contains("wav") && !ready.field(key).contains("null"),
            "{event} is not on a sound device: {}",
            ready.fields
        );
    }
    let mut playback = a.playback().await;

    // Dialog 1: a skill's answer, the model's, a timer; it ends on silence.
    a.wake(&mut playback, &alexa).await;
    turn(&a, &mut playback, "sum", &sum, 0).await;
    turn(&a, &mut playback, "france", &france, 1000).await;
    let confirmed = turn(&a, &mut playback, "ten_s", &ten_s, 1000).await;
    // The alarm, outside the dialog, about ten seconds after it was set.
    let ring = next_event(
        &mut playback,
        PlaybackEventKind::Finished,
        false,
        Duration::from_secs(30),
    )
    .await;
    let confirmed_to_ring_end_ms = (ring.ts_unix_us - confirmed.ts_unix_us) / 1000;
    eprintln!("confirmation played → end of the first ring: {confirmed_to_ring_end_ms} ms");
    assert!(
        (7000..20_000).contains(&confirmed_to_ring_end_ms),
        "{confirmed_to_ring_end_ms} ms"
    );
    // "Alexa" in the pause between two rings, then "stop".
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.wake(&mut playback, &alexa).await;
    a.say(
        "stop",
        &scene(stop.len() as f32 / 16_000.0 + 2.8, &[(0.3, &stop)]),
    )
    .await;
    let ev = wait_app_events(&a.log(), &["dialog_ended"], Duration::from_secs(20));
    let ev = wait_dialogs(&a, ev, 2).await;
    assert_eq!(events_named(&ev, "dialog_ended")[1].field("reason"), "stop");

    // Dialog 3: the time, then a timer set and cancelled.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    a.wake(&mut playback, &alexa).await;
    turn(&a, &mut playback, "time", &time, 0).await;
    let asked_at = chrono::Local::now();
    turn(&a, &mut playback, "minute", &minute, 1000).await;
    turn(&a, &mut playback, "cancel", &cancel, 1000).await;
    let ev = wait_app_events(&a.log(), &["dialog_ended"], Duration::from_secs(20));
    let ev = wait_dialogs(&a, ev, 3).await;
    for e in ev.iter().filter(|e| {
        [
            "ack_played",
            "turn_timing",
            "skill_matched",
            "barge_in",
            "underrun",
            "wake_detected",
            "dialog_ended",
        ]
        .contains(&e.event.as_str())
    }) {
        eprintln!("{} {}: {}", e.ts, e.event, e.fields);
    }

    // The echo canceller finds the echo at one delay for the whole conversation, as the far
    // end is timed by when it played. Timed by when tts wrote it, the delay moved by 16-44
    // ms between replies over a bench (48-96 ms in one; 64-84 ms in a run of this test),
    // and AEC3 started over each time.
    let delays = echo_delays(&ev);
    eprintln!("AEC3's delay estimate every 10 s (ms): {delays:?}");
    assert!(delays.len() >= 3, "{delays:?}");
    let (lo, hi) = (delays.iter().min(), delays.iter().max());
    assert!(
        hi.zip(lo).is_some_and(|(hi, lo)| hi - lo <= 12),
        "the echo's delay moved: {delays:?}"
    );

    // A wake for each "Alexa" said: the greeting's and the replies' echo woke nothing.
    assert_eq!(events_named(&ev, "wake_detected").len(), 3, "self-wake");
    let dialogs = events_named(&ev, "dialog_ended");
    assert_eq!(dialogs.len(), 3);
    let first = a.transcript_lines(dialogs[0].field("dialog"));
    eprintln!("{}", first.join("\n"));
    assert_eq!(first.len(), 6, "{first:?}");
    assert!(first[1].contains("84"), "{}", first[1]);
    assert!(
        words(&first[2]).contains(&"france".to_owned()),
        "{}",
        first[2]
    );
    assert!(first[3].contains("Paris"), "{}", first[3]);
    assert_eq!(first[5], "ASSISTANT: Timer set for 10 seconds.");
    let rings = events_named(&ev, "timer_alarm");
    assert!(!rings.is_empty(), "no timer_alarm");
    let third = a.transcript_lines(dialogs[2].field("dialog"));
    eprintln!("{}", third.join("\n"));
    assert!(
        events_named(&ev, "barge_in").is_empty(),
        "the assistant's own voice interrupted it"
    );
    let skills: Vec<(&str, &str)> = events_named(&ev, "skill_matched")
        .iter()
        .map(|e| (e.field("skill"), e.field("reply")))
        .collect();
    eprintln!("skills: {skills:?}");
    let names: Vec<&str> = skills.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        names,
        ["arithmetic", "timer", "stop", "time", "timer", "timer"],
        "{third:?}"
    );
    assert!(skills[5].1.to_lowercase().contains("cancel"), "{skills:?}");
    // The cancelled timer never rang: one alarm (its rings) only.
    let timers: std::collections::BTreeSet<&str> =
        rings.iter().map(|r| r.field("timers")).collect();
    assert_eq!(timers.len(), 1, "{timers:?}");

    // What came out of the speaker: the sum, the answer about France and the hour.
    a.host.terminate();
    let said = words(&transcribe(&a.said()));
    eprintln!("the speaker played: {said:?}");
    assert!(
        said.iter().any(|w| w == "84" || w.starts_with("eighty")),
        "{said:?}"
    );
    // The answer about France (its text is checked in the transcript above): Whisper tiny,
    // reading the whole recording, hears the voice's "Paris" as "parishes" or "pairs", and
    // once dropped "of France" from "Le Grand Paris is the capital of France." (CI), so any
    // of its words will do.
    assert!(
        said.iter()
            .any(|w| ["capital", "france"].contains(&w.as_str()) || w.starts_with("par")),
        "{said:?}"
    );
    // Said as "It's 9:45 AM."; asked before `asked_at`, perhaps in the hour before.
    // Whisper writes the clock time "9:45" or "945" (CI: "It's 6:27 AM." came back "627").
    let hour12 = (asked_at.hour() + 11) % 12 + 1;
    let hours = [hour12.to_string(), ((hour12 + 10) % 12 + 1).to_string()];
    let says_hour = |w: &str| {
        hours.iter().any(|h| {
            w == h
                || (w.len() == h.len() + 2
                    && w.starts_with(h.as_str())
                    && w.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    assert!(
        said.iter().any(|w| says_hour(w)),
        "the hour ({hours:?}) is not in {said:?}"
    );
    // A timer's reply ("Timer set for 10 seconds."): on a cold CI run Whisper, reading the
    // whole recording, kept only "10 seconds" of it.
    assert!(
        said.iter()
            .any(|w| w == "timer" || w == "seconds" || w.starts_with("minute")),
        "{said:?}"
    );
}

/// AEC3's delay estimates (ms) in stt's 10-second reports, in order.
fn echo_delays(ev: &[AppLine]) -> Vec<u32> {
    events_named(ev, "aec_stats")
        .iter()
        .filter_map(|e| {
            let d = e.field("delay_ms");
            d.strip_prefix("Some(")?.strip_suffix(')')?.parse().ok()
        })
        .collect()
}

/// app.log's events once it holds `n` dialog ends (`ev` holds one at least).
async fn wait_dialogs(a: &Assistant, mut ev: Vec<AppLine>, n: usize) -> Vec<AppLine> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while events_named(&ev, "dialog_ended").len() < n {
        assert!(std::time::Instant::now() < deadline, "no dialog end #{n}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        ev = wait_app_events(&a.log(), &["dialog_ended"], Duration::from_secs(5));
    }
    ev
}

/// "What time is it?" spoken 3.3 s into a long answer stops it and is the next turn.
///
/// With Kokoro on two cores a long reply had playback gaps (0.2-2.4 s) and after a gap the
/// echo guard needed the user well above the assistant's level, so one run in four missed
/// the barge-in; with the shipped Piper voice the reply plays without gaps. What Whisper
/// makes of words spoken over the residual echo varies ("What's wrong is it?" once in
/// five runs): the turn must hold the line's words, the time skill is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speaking_over_a_long_answer_on_real_sound_devices() {
    let _serial = SERIAL.lock().await;
    let alexa = espeak("Alexa");
    let spoken = tts_speech(&["Tell me about the history of Rome.", "What time is it?"]).await;
    let (rome, time) = (trim_silence(&spoken[0]), trim_silence(&spoken[1]));
    let mut a = Assistant::on_sound_server("Hello.", LONG_ANSWERS, ECHO_MS);
    let mut playback = a.playback().await;
    a.wake(&mut playback, &alexa).await;
    a.say("rome", &scene(3.5, &[(0.3, &rome)])).await;
    let reply = next_event(
        &mut playback,
        PlaybackEventKind::Started,
        true,
        Duration::from_secs(60),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(3300)).await;
    a.say("time", &scene(3.0, &[(0.3, &time)])).await;
    let interrupted = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let ev = playback.next().await.unwrap().unwrap();
            if ev.utterance_id == reply.utterance_id
                && [PlaybackEventKind::Interrupted, PlaybackEventKind::Finished]
                    .contains(&ev.kind())
            {
                return ev.kind() == PlaybackEventKind::Interrupted;
            }
        }
    })
    .await;
    assert!(
        interrupted.unwrap_or(false),
        "the long answer was not interrupted"
    );
    next_event(
        &mut playback,
        PlaybackEventKind::Finished,
        true,
        Duration::from_secs(60),
    )
    .await;
    let ev = wait_app_events(&a.log(), &["dialog_ended"], Duration::from_secs(20));
    let barge = events_named(&ev, "barge_in");
    assert_eq!(barge.len(), 1, "one barge-in");
    eprintln!(
        "barge-in: VAD onset → reply quiet {} ms",
        num(barge[0], "onset_to_quiet_ms")
    );
    let skills: Vec<&str> = events_named(&ev, "skill_matched")
        .iter()
        .map(|e| e.field("skill"))
        .collect();
    let lines = a.transcript_lines(events_named(&ev, "dialog_ended")[0].field("dialog"));
    eprintln!("{}", lines.join("\n"));
    eprintln!("skills: {skills:?}");
    let user: Vec<&String> = lines.iter().filter(|l| l.starts_with("USER:")).collect();
    assert_eq!(user.len(), 2, "{lines:?}");
    let heard = words(user[1]);
    let known = ["what", "time", "is", "it"]
        .iter()
        .filter(|w| heard.contains(&(**w).to_owned()))
        .count();
    assert!(
        known >= 2,
        "the words over the reply were not heard: {lines:?}"
    );
    assert!(skills.len() <= 1, "{skills:?}");
    a.host.terminate();
}
