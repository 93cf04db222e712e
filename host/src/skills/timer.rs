//! Timers: "set a timer for 5 minutes" (digits or words, "one and a half minutes", "an
//! hour and a half", "half an hour", "1 hour and 30 minutes", "a 10 second timer"), "how
//! much time is left (on the timer)", "cancel the timer", "cancel the 5 minute timer",
//! "cancel all timers". Several run at once; answers say which. When one ends the dialog
//! manager's alarm rings it ([`alarm_phrase`]) until "stop" or its timeout.

use std::time::Duration;

use super::numbers::{self, Number, to_words};
use super::timers::{MAX_LENGTH, MAX_TIMERS, SetError};
use super::{Reply, Request, Skill, SkillContext};

/// Sets, lists and cancels timers.
#[derive(Debug)]
pub struct TimerSkill;

impl Skill for TimerSkill {
    fn name(&self) -> &'static str {
        "timer"
    }

    fn answer(&self, request: &Request, ctx: &SkillContext<'_>) -> Option<Reply> {
        let words = request.words();
        if let Some(asked) = set_request(words) {
            return Some(set(asked, ctx));
        }
        if let Some(which) = cancel_request(words) {
            return Some(cancel(which, ctx));
        }
        if is_query(request) {
            return Some(Reply::say(status(ctx)));
        }
        None
    }
}

/// What a request to set a timer asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Asked {
    Length(Duration),
    /// "set a timer", without how long.
    NoLength,
}

/// Which timers a cancel request means.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Which {
    /// "the timer": the only one (or the ringing ones).
    The,
    /// "all timers", "the timers".
    All,
    /// "the 5 minute timer".
    Length(Duration),
}

fn set(asked: Asked, ctx: &SkillContext<'_>) -> Reply {
    let Asked::Length(length) = asked else {
        return Reply::say("For how long? Say, for example, set a timer for 5 minutes.");
    };
    match ctx.timers.set(length, ctx.now) {
        Ok(t) => Reply::say(format!("Timer set for {}.", spoken(t.length))),
        Err(SetError::TooShort) => Reply::say("A timer needs at least one second."),
        Err(SetError::TooLong) => Reply::say(format!(
            "I can only set timers of up to {}.",
            spoken(MAX_LENGTH)
        )),
        Err(SetError::TooMany) => Reply::say(format!(
            "You have {} timers already; cancel one first.",
            to_words(MAX_TIMERS as u64)
        )),
    }
}

fn cancel(which: Which, ctx: &SkillContext<'_>) -> Reply {
    // While a timer rings, "stop the timer" means that one: silenced, the dialog ends.
    let ringing = ctx.timers.ringing();
    let rings = match which {
        Which::The | Which::All => !ringing.is_empty(),
        Which::Length(length) => ringing.iter().any(|r| r.timer.length == length),
    };
    if rings {
        ctx.timers.silence();
        if which != Which::All || ctx.timers.running(ctx.now).is_empty() {
            return Reply::end("");
        }
    }
    let running = ctx.timers.running(ctx.now);
    if running.is_empty() {
        return Reply::say("You have no timers.");
    }
    let gone = match which {
        Which::All => ctx.timers.cancel(|_| true),
        Which::Length(length) => ctx.timers.cancel(|t| t.length == length),
        Which::The if running.len() == 1 => ctx.timers.cancel(|_| true),
        Which::The => {
            return Reply::say(format!(
                "{} Say cancel all timers, or cancel the {} timer.",
                status(ctx),
                label(running[0].0.length)
            ));
        }
    };
    match (gone.as_slice(), which) {
        ([], Which::Length(length)) => Reply::say(format!(
            "You have no {} timer. {}",
            label(length),
            status(ctx)
        )),
        ([one], _) => Reply::say(format!("Your {} timer is cancelled.", label(one.length))),
        (more, Which::Length(length)) => Reply::say(format!(
            "Your {} {} timers are cancelled.",
            to_words(more.len() as u64),
            label(length)
        )),
        (more, _) => Reply::say(format!(
            "All {} timers are cancelled.",
            to_words(more.len() as u64)
        )),
    }
}

/// "You have two timers: 4 minutes 10 seconds and 30 seconds left."
fn status(ctx: &SkillContext<'_>) -> String {
    let ringing = ctx.timers.ringing();
    let running = ctx.timers.running(ctx.now);
    let mut out = Vec::new();
    if !ringing.is_empty() {
        let labels: Vec<String> = ringing.iter().map(|r| label(r.timer.length)).collect();
        out.push(alarm_phrase(&labels));
    }
    let left: Vec<String> = running.iter().map(|(_, left)| spoken(*left)).collect();
    match left.len() {
        0 if ringing.is_empty() => out.push("You have no timers.".to_owned()),
        0 => {}
        1 => out.push(format!("You have one timer: {} left.", left[0])),
        n => out.push(format!(
            "You have {} timers: {} left.",
            to_words(n as u64),
            and_list(&left)
        )),
    }
    out.join(" ")
}

/// What the alarm says first when timers of these `labels` end: "Your 5 minute timer is
/// done."
pub fn alarm_phrase(labels: &[String]) -> String {
    match labels {
        [one] => format!("Your {one} timer is done."),
        more => format!("Your {} timers are done.", and_list(more)),
    }
}

/// "a", "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// A length for speaking, whole seconds rounded up: "4 minutes 10 seconds", "1 hour".
pub fn spoken(d: Duration) -> String {
    parts(d, true)
}

/// A length as a timer's name: "5 minute", "1 hour 30 minute", "10 second".
pub fn label(d: Duration) -> String {
    parts(d, false)
}

fn parts(d: Duration, plural: bool) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = Vec::new();
    for (n, unit) in [(h, "hour"), (m, "minute"), (s, "second")] {
        if n > 0 {
            let s = if plural && n != 1 { "s" } else { "" };
            out.push(format!("{n} {unit}{s}"));
        }
    }
    if out.is_empty() {
        return if plural { "0 seconds" } else { "0 second" }.to_owned();
    }
    out.join(" ")
}

/// `phrase` at the start of `words`.
fn starts(words: &[String], phrase: &[&str]) -> bool {
    words.len() >= phrase.len() && words.iter().zip(phrase).all(|(w, p)| w == p)
}

/// The first of `options` that `words` starts with, and its length (0 for none).
fn skip(words: &[String], options: &[&[&str]]) -> usize {
    options
        .iter()
        .filter(|o| starts(words, o))
        .map(|o| o.len())
        .max()
        .unwrap_or(0)
}

fn is_timer(w: &str) -> bool {
    matches!(w, "timer" | "timers" | "alarm" | "alarms")
}

/// "set a timer for D", "set a D timer", "start a timer for D", "a timer for D", "timer
/// for D", "D timer", "set a timer".
fn set_request(words: &[String]) -> Option<Asked> {
    let mut at = skip(
        words,
        &[
            &["set"],
            &["start"],
            &["make"],
            &["create"],
            &["put", "on"],
            &["give", "me"],
            &["i", "need"],
            &["i", "want"],
        ],
    );
    let verb = at > 0;
    at += skip(
        &words[at..],
        &[
            &["a"],
            &["an"],
            &["the"],
            &["me", "a"],
            &["me", "an"],
            &["up", "a"],
        ],
    );
    let rest = &words[at..];
    match rest {
        [t] if t == "timer" && verb => Some(Asked::NoLength),
        [t, rest @ ..] if t == "timer" => {
            let from = skip(rest, &[&["for"], &["of"], &["on"]]);
            let (d, used) = duration(&rest[from..])?;
            (from + used == rest.len()).then_some(Asked::Length(d))
        }
        _ => {
            let (d, used) = duration(rest)?;
            (rest.get(used).map(String::as_str) == Some("timer") && used + 1 == rest.len())
                .then_some(Asked::Length(d))
        }
    }
}

/// "cancel the timer", "stop my timers", "cancel all timers", "cancel the 5 minute timer",
/// "turn off the alarm".
fn cancel_request(words: &[String]) -> Option<Which> {
    let verb = skip(
        words,
        &[
            &["cancel"],
            &["stop"],
            &["delete"],
            &["remove"],
            &["clear"],
            &["end"],
            &["reset"],
            &["turn", "off"],
            &["switch", "off"],
        ],
    );
    if verb == 0 {
        return None;
    }
    let mut rest = &words[verb..];
    let all = starts(rest, &["all"]);
    rest = &rest[usize::from(all)..];
    rest = &rest[skip(rest, &[&["the"], &["my"], &["of", "the"], &["of", "my"]])..];
    let (last, head) = rest.split_last()?;
    if !is_timer(last) {
        return None;
    }
    let plural = last.ends_with('s');
    if head.is_empty() {
        return Some(if all || plural {
            Which::All
        } else {
            Which::The
        });
    }
    let (d, used) = duration(head)?;
    (used == head.len()).then_some(Which::Length(d))
}

/// "how much time is left (on the timer)", "how long is left", "what timers do I have",
/// "check the timer".
fn is_query(request: &Request) -> bool {
    const LEFT: &[&str] = &[
        "how much time is left",
        "how much time left",
        "how much time do i have left",
        "how much time is remaining",
        "how much time remains",
        "how long is left",
        "how long left",
        "how much longer",
        "time left",
        "time remaining",
    ];
    let words = request.words();
    if request.is_one_of(LEFT) {
        return true;
    }
    let has = |list: &[&str]| words.iter().any(|w| list.contains(&w.as_str()));
    let asks = words.first().is_some_and(|w| {
        matches!(
            w.as_str(),
            "how" | "what" | "check" | "list" | "show" | "do" | "are" | "is" | "any"
        )
    });
    // About the user's timers ("what is a timer" is the model's).
    let theirs = has(&[
        "left",
        "remaining",
        "long",
        "much",
        "have",
        "check",
        "status",
        "list",
        "show",
        "any",
        "many",
        "running",
        "my",
    ]);
    has(&["timer", "timers"])
        && asks
        && theirs
        && !words.iter().any(|w| numbers::digits(w).is_some())
}

/// The unit a word names, in seconds.
fn unit(w: &str) -> Option<i128> {
    Some(match w {
        "second" | "seconds" | "sec" | "secs" => 1,
        "minute" | "minutes" | "min" | "mins" => 60,
        "hour" | "hours" | "hr" | "hrs" => 3600,
        _ => return None,
    })
}

/// A spoken length at the start of `words` and how many words it took: "5 minutes", "1
/// hour and 30 minutes", "one and a half minutes", "a minute and a half", "half an hour",
/// "90 seconds".
fn duration(words: &[String]) -> Option<(Duration, usize)> {
    let w = |i: usize| words.get(i).map(String::as_str);
    let mut total = Number::ZERO;
    let mut at = 0;
    let mut parts = 0;
    loop {
        let part_start = at;
        // Parts may be joined by "and": "1 hour and 30 minutes".
        if parts > 0 && w(at) == Some("and") {
            at += 1;
        }
        let (count, used) = match (w(at), w(at + 1).and_then(unit)) {
            (Some("a" | "an"), Some(_)) => (Number::int(1), 1),
            _ => match numbers::parse(&words[at.min(words.len())..]) {
                Some(found) => found,
                None if parts > 0 => {
                    at = part_start;
                    break;
                }
                None => return None,
            },
        };
        at += used;
        // "half an hour", "a quarter of an hour"
        at += skip(
            &words[at..],
            &[&["of", "an"], &["of", "a"], &["an"], &["a"]],
        );
        let Some(seconds) = w(at).and_then(unit) else {
            if parts > 0 {
                at = part_start;
                break;
            }
            return None;
        };
        at += 1;
        let mut count = count;
        // "a minute and a half"
        for (tail, add) in [
            (&["and", "a", "half"][..], Number::HALF),
            (&["and", "half"], Number::HALF),
        ] {
            if starts(&words[at..], tail) {
                count = count.checked_add(add)?;
                at += tail.len();
                break;
            }
        }
        total = total.checked_add(count.checked_mul(Number::int(seconds))?)?;
        parts += 1;
    }
    let ms = total.checked_mul(Number::int(1000))?.round();
    let ms = u64::try_from(ms).ok()?;
    Some((Duration::from_millis(ms), at))
}

#[cfg(test)]
#[path = "timer_tests.rs"]
mod tests;
