//! The time and the date, in the machine's local time zone: "what time is it" → "It's 7:05
//! PM.", "what's the date" / "what day is it" → "Today is Sunday, December 6th, 2026.".
//! Also the facts the model is given with every request ([`facts`]), so that it never
//! invents them.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

use super::{Reply, Request, Skill, SkillContext};

/// "what time is it", "what's the time", …
#[derive(Debug)]
pub struct TimeSkill;

const TIME: &[&str] = &[
    "what time is it",
    "what time it is",
    "what is the time",
    "what is the current time",
    "what is the time right now",
    "what is the local time",
    "the time",
    "time",
    "current time",
    "the current time",
    "what time",
    "have you got the time",
    "got the time",
];

const DATE: &[&str] = &[
    "what is the date",
    "what is the date today",
    "what is todays date",
    "todays date",
    "the date",
    "date",
    "what date is it",
    "what date is it today",
    "what date is today",
    "what date it is",
    "what is today",
    "what day is it",
    "what day is it today",
    "what day is today",
    "what day it is",
    "which day is it",
    "which day is it today",
    "what is the day",
    "what is the day today",
    "what day of the week is it",
    "what day of the week is it today",
    "what day of the week is today",
];

const BOTH: &[&str] = &[
    "what is the date and time",
    "what is the time and date",
    "the date and time",
    "the time and date",
    "date and time",
    "time and date",
];

/// A short request ending in "time is it": "What time is it?" as Whisper tiny writes it when
/// it is said over the assistant's own voice ("What's time, is it?", "Watch time, is it?",
/// "What's the time is it?" on the acoustic bench), which the model took for something
/// else. At most three words before it; "Is it time to go?" does not end so.
fn misheard_what_time_is_it(words: &[String]) -> bool {
    words.len() <= 6 && words.ends_with(&["time".to_owned(), "is".to_owned(), "it".to_owned()])
}

impl Skill for TimeSkill {
    fn name(&self) -> &'static str {
        "time"
    }

    fn answer(&self, request: &Request, ctx: &SkillContext<'_>) -> Option<Reply> {
        let now = ctx.local;
        if request.is_one_of(TIME) || misheard_what_time_is_it(request.words()) {
            Some(Reply::say(format!("It's {}.", spoken_time(now))))
        } else if request.is_one_of(DATE) {
            Some(Reply::say(format!("Today is {}.", spoken_date(now.date()))))
        } else if request.is_one_of(BOTH) {
            Some(Reply::say(format!(
                "It's {} on {}.",
                spoken_time(now),
                spoken_date(now.date())
            )))
        } else {
            None
        }
    }
}

/// "7:05 PM", "12:00 AM" (midnight).
pub fn spoken_time(t: NaiveDateTime) -> String {
    let (pm, hour) = t.hour12();
    format!("{hour}:{:02} {}", t.minute(), if pm { "PM" } else { "AM" })
}

/// "Sunday, December 6th, 2026".
pub fn spoken_date(d: NaiveDate) -> String {
    let day = d.day();
    let suffix = match (day % 10, day % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!(
        "{}, {} {day}{suffix}, {}",
        d.format("%A"),
        d.format("%B"),
        d.year()
    )
}

/// What the model is told with each request (`CompleteRequest.context`), so that it never
/// invents the date or the time.
pub fn facts(now: NaiveDateTime) -> String {
    format!(
        "The local date and time now: {}, {}.",
        spoken_date(now.date()),
        spoken_time(now)
    )
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::skills::Timers;
    use crate::skills::tests::{ask, sunday_evening};

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, 0))
            .unwrap()
    }

    fn reply(heard: &str) -> Option<String> {
        ask(heard, &Timers::default(), Instant::now()).map(|m| m.reply.text)
    }

    #[test]
    fn the_time_and_the_date_on_a_fixed_clock() {
        for q in [
            " What time is it?",
            "What's the time?",
            "What is the time now?",
            "Hey, can you tell me what time it is?",
            "Time, please.",
            // Over the echo of a reply.
            "What's time, is it?",
            "Watch time, is it?",
            "What's the time is it?",
        ] {
            assert_eq!(reply(q).as_deref(), Some("It's 7:05 PM."), "{q}");
        }
        for q in [
            "What's the date?",
            "What's the date today?",
            "What's today's date?",
            "What day is it?",
            "What day is it today?",
            "What day of the week is it?",
        ] {
            assert_eq!(
                reply(q).as_deref(),
                Some("Today is Sunday, December 6th, 2026."),
                "{q}"
            );
        }
        assert_eq!(
            reply("What's the date and time?").as_deref(),
            Some("It's 7:05 PM on Sunday, December 6th, 2026.")
        );
    }

    #[test]
    fn other_questions_about_time_are_the_models() {
        for q in [
            "What time is it in Tokyo?",
            "What time does the shop close?",
            "What date is Christmas?",
            "Is it time to go?",
            "What is the time complexity of quicksort?",
            "How can I tell what kind of time is it?",
        ] {
            assert_eq!(reply(q), None, "{q}");
        }
    }

    #[test]
    fn clock_phrasing() {
        assert_eq!(spoken_time(at(2026, 1, 1, 0, 0)), "12:00 AM");
        assert_eq!(spoken_time(at(2026, 1, 1, 0, 7)), "12:07 AM");
        assert_eq!(spoken_time(at(2026, 1, 1, 9, 30)), "9:30 AM");
        assert_eq!(spoken_time(at(2026, 1, 1, 12, 0)), "12:00 PM");
        assert_eq!(spoken_time(at(2026, 1, 1, 23, 59)), "11:59 PM");
        let day = |d: u32| spoken_date(NaiveDate::from_ymd_opt(2026, 3, d).unwrap());
        assert_eq!(day(1), "Sunday, March 1st, 2026");
        assert_eq!(day(2), "Monday, March 2nd, 2026");
        assert_eq!(day(3), "Tuesday, March 3rd, 2026");
        assert_eq!(day(4), "Wednesday, March 4th, 2026");
        assert_eq!(day(11), "Wednesday, March 11th, 2026");
        assert_eq!(day(12), "Thursday, March 12th, 2026");
        assert_eq!(day(13), "Friday, March 13th, 2026");
        assert_eq!(day(21), "Saturday, March 21st, 2026");
        assert_eq!(day(22), "Sunday, March 22nd, 2026");
        assert_eq!(day(23), "Monday, March 23rd, 2026");
        assert_eq!(day(31), "Tuesday, March 31st, 2026");
    }

    #[test]
    fn the_models_facts() {
        assert_eq!(
            facts(sunday_evening()),
            "The local date and time now: Sunday, December 6th, 2026, 7:05 PM."
        );
    }
}
