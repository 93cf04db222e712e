//! Tests of the timer skill (timer.rs).
use std::time::Instant;

use super::*;
use crate::skills::Timers;
use crate::skills::tests::ask;

const S: Duration = Duration::from_secs(1);
const MIN: Duration = Duration::from_secs(60);

fn length(heard: &str) -> Option<Asked> {
    set_request(Request::new(heard).words())
}

#[test]
fn lengths_as_people_say_them() {
    for (q, want) in [
        ("Set a timer for 3 seconds.", 3 * S),
        ("Set a timer for five minutes.", 5 * MIN),
        ("Set timer for 90 seconds", 90 * S),
        ("Set the timer for 2 hours.", 7200 * S),
        ("Start a timer for twenty five minutes.", 25 * MIN),
        ("Set a 10 minute timer.", 10 * MIN),
        ("Set a ten-minute timer.", 10 * MIN),
        ("Timer for 30 seconds.", 30 * S),
        ("A timer for one minute, please.", MIN),
        ("5 minute timer", 5 * MIN),
        ("Set a timer for one and a half minutes.", 90 * S),
        ("Set a timer for 1.5 minutes.", 90 * S),
        ("Set a timer for a minute and a half.", 90 * S),
        ("Set a timer for an hour and a half.", 5400 * S),
        ("Set a timer for half an hour.", 30 * MIN),
        ("Set a timer for a quarter of an hour.", 15 * MIN),
        ("Set a timer for 1 hour and 30 minutes.", 90 * MIN),
        ("Set a timer for 1 minute 30 seconds.", 90 * S),
        ("Can you set a timer for a minute?", MIN),
        ("Set a timer for one hundred and twenty seconds.", 120 * S),
    ] {
        assert_eq!(length(q), Some(Asked::Length(want)), "{q}");
    }
    assert_eq!(length("Set a timer."), Some(Asked::NoLength));
    let query = |q: &str| is_query(&Request::new(q));
    for q in [
        "How much time is left on the timer?",
        "How long is left?",
        "What timers do I have?",
        "Check the timer.",
        "How many timers are running?",
        "Any timers?",
    ] {
        assert!(query(q), "{q}");
    }
    for q in [
        "What is a timer?",
        "How do timers work?",
        "Is 5 minutes left?",
    ] {
        assert!(!query(q), "{q}");
    }
    for q in [
        "Set a timer for later.",
        "Set a timer for 5.",
        "Set the table.",
        "Timer",
        "Set a timer for 5 minutes and then call mom.",
        "What is a timer?",
    ] {
        assert_eq!(length(q), None, "{q}");
    }
}

#[test]
fn several_timers_are_set_listed_and_cancelled_on_a_fake_clock() {
    let timers = Timers::default();
    let t0 = Instant::now();
    let say = |q: &str, at: Duration| {
        let m = ask(q, &timers, t0 + at).unwrap();
        assert_eq!(m.skill, "timer", "{q}");
        m.reply.text
    };
    assert_eq!(say("How much time is left?", S), "You have no timers.");
    assert_eq!(
        say("Set a timer for 5 minutes.", Duration::ZERO),
        "Timer set for 5 minutes."
    );
    assert_eq!(
        say("Set a timer for 40 seconds.", 10 * S),
        "Timer set for 40 seconds."
    );
    assert_eq!(
        say("How much time is left on the timer?", 20 * S),
        "You have two timers: 30 seconds and 4 minutes 40 seconds left."
    );
    assert_eq!(
        say("Cancel the timer.", 21 * S),
        "You have two timers: 29 seconds and 4 minutes 39 seconds left. Say cancel all \
         timers, or cancel the 40 second timer."
    );
    assert_eq!(
        say("Cancel the 5 minute timer.", 22 * S),
        "Your 5 minute timer is cancelled."
    );
    assert_eq!(
        say("What timers do I have?", 22 * S),
        "You have one timer: 28 seconds left."
    );
    assert_eq!(
        say("Cancel the 3 minute timer.", 22 * S),
        "You have no 3 minute timer. You have one timer: 28 seconds left."
    );
    assert_eq!(
        say("Cancel the timer.", 23 * S),
        "Your 40 second timer is cancelled."
    );
    assert_eq!(say("Cancel the timer.", 23 * S), "You have no timers.");
    say("Set a timer for 1 minute.", 30 * S);
    say("Set a timer for 2 minutes.", 30 * S);
    assert_eq!(
        say("Cancel all timers.", 31 * S),
        "All two timers are cancelled."
    );
    assert!(timers.is_idle());
}

#[test]
fn a_ringing_timer_is_stopped_and_named() {
    let timers = Timers::default();
    let t0 = Instant::now();
    let say = |q: &str, at: Duration| ask(q, &timers, t0 + at).unwrap().reply;
    say("Set a timer for 3 seconds.", Duration::ZERO);
    say("Set a timer for 1 hour.", Duration::ZERO);
    timers.take_due(t0 + 3 * S);
    assert_eq!(
        say("How much time is left?", 4 * S).text,
        "Your 3 second timer is done. You have one timer: 59 minutes 56 seconds left."
    );
    // "Stop the timer" while it rings silences it and ends the dialog; the hour runs on.
    assert_eq!(say("Stop the timer.", 5 * S), Reply::end(""));
    assert!(timers.ringing().is_empty());
    assert_eq!(timers.running(t0).len(), 1);
}

#[test]
fn limits_are_answered() {
    let timers = Timers::default();
    let say = |q: &str| ask(q, &timers, Instant::now()).unwrap().reply.text;
    assert_eq!(
        say("Set a timer for 0 seconds."),
        "A timer needs at least one second."
    );
    assert_eq!(
        say("Set a timer for 25 hours."),
        "I can only set timers of up to 24 hours."
    );
    assert_eq!(
        say("Set a timer."),
        "For how long? Say, for example, set a timer for 5 minutes."
    );
}

#[test]
fn lengths_for_speaking() {
    assert_eq!(spoken(250 * S), "4 minutes 10 seconds");
    assert_eq!(spoken(3600 * S), "1 hour");
    assert_eq!(spoken(3661 * S), "1 hour 1 minute 1 second");
    assert_eq!(
        spoken(Duration::from_millis(29_200)),
        "30 seconds",
        "rounded up"
    );
    assert_eq!(spoken(Duration::ZERO), "0 seconds");
    assert_eq!(label(5 * MIN), "5 minute");
    assert_eq!(label(90 * S), "1 minute 30 second");
    assert_eq!(
        alarm_phrase(&["5 minute".to_owned()]),
        "Your 5 minute timer is done."
    );
    assert_eq!(
        alarm_phrase(&["3 second".to_owned(), "1 hour".to_owned()]),
        "Your 3 second and 1 hour timers are done."
    );
}
