//! Built-in skills: what the host answers itself, before the language model — the time and
//! the date (a model cannot know them), arithmetic and unit conversions (a small model gets
//! them wrong), timers (a model cannot set them) and "stop".
//!
//! A skill is one file: a type implementing [`Skill`], with its tests. [`SKILLS`] lists them
//! in the order they are tried; [`answer`] is what the dialog calls with stt's final text.
//! A skill matches a whole request ("what time is it", "set a timer for 5 minutes"), never a
//! word inside a longer one ("what time does the shop close" goes to the model).
//!
//! Requests are normalised once ([`Request`]): lower case, punctuation gone except inside
//! numbers ("1,200", "3.5") and arithmetic signs, "what's" → "what is", and politeness
//! around the request ("hey", "can you", "please", "thanks") set aside.

mod arithmetic;
pub mod numbers;
mod stop;
pub mod time;
pub mod timer;
pub mod timers;
mod units;

use std::time::Instant;

use chrono::NaiveDateTime;

pub use stop::is_stop;
pub use timers::Timers;

/// One built-in skill.
pub trait Skill: Sync {
    /// Its name in app.log (`skill_matched`).
    fn name(&self) -> &'static str;

    /// The reply to `request` when it is this skill's to answer; `None` passes it on (to the
    /// next skill, and finally to the model). A skill may act on `ctx` (set a timer) when it
    /// answers.
    fn answer(&self, request: &Request, ctx: &SkillContext<'_>) -> Option<Reply>;
}

/// The skills, in the order they are tried: the timer before stop ("cancel the timer" is
/// the timer's; "cancel" alone is stop's).
pub const SKILLS: &[&dyn Skill] = &[
    &timer::TimerSkill,
    &time::TimeSkill,
    &arithmetic::ArithmeticSkill,
    &units::UnitsSkill,
    &stop::StopSkill,
];

/// What a skill sees besides the request: the clocks (fixed in tests) and the host state it
/// may act on.
#[derive(Debug, Clone, Copy)]
pub struct SkillContext<'a> {
    /// The machine's local date and time.
    pub local: NaiveDateTime,
    /// Now on the monotonic clock, for timers.
    pub now: Instant,
    /// The running and ringing timers (the dialog manager's, shared by every dialog).
    pub timers: &'a Timers,
}

impl<'a> SkillContext<'a> {
    /// The context at this moment on the real clocks.
    pub fn now(timers: &'a Timers) -> SkillContext<'a> {
        SkillContext {
            local: chrono::Local::now().naive_local(),
            now: Instant::now(),
            timers,
        }
    }
}

/// A skill's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Spoken through tts and written as the `ASSISTANT:` line; may be empty (nothing is
    /// said, e.g. after "stop").
    pub text: String,
    /// The dialog ends after it (no follow-up window).
    pub ends_dialog: bool,
}

impl Reply {
    /// Say `text`; the dialog goes on.
    pub fn say(text: impl Into<String>) -> Reply {
        Reply {
            text: text.into(),
            ends_dialog: false,
        }
    }

    /// Say `text` (or nothing) and end the dialog.
    pub fn end(text: impl Into<String>) -> Reply {
        Reply {
            text: text.into(),
            ends_dialog: true,
        }
    }
}

/// A request that a skill answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub skill: &'static str,
    pub reply: Reply,
}

/// The first skill's answer to what the user said, or `None`: the model answers it.
pub fn answer(heard: &str, ctx: &SkillContext<'_>) -> Option<Matched> {
    let request = Request::new(heard);
    if request.words().is_empty() {
        return None;
    }
    SKILLS.iter().find_map(|skill| {
        skill.answer(&request, ctx).map(|reply| Matched {
            skill: skill.name(),
            reply,
        })
    })
}

/// What the user said, normalised for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Every word, normalised.
    all: Vec<String>,
    /// The request itself: `all` without the politeness around it.
    core: std::ops::Range<usize>,
}

/// Words before a request that do not change it ("hey alexa can you tell me …").
const LEADING: &[&[&str]] = &[
    &["hey"],
    &["hi"],
    &["ok"],
    &["okay"],
    &["alexa"],
    &["so"],
    &["um"],
    &["uh"],
    &["oh"],
    &["and"],
    &["please"],
    &["can", "you"],
    &["could", "you"],
    &["would", "you"],
    &["will", "you"],
    &["can", "i", "ask"],
    &["do", "you", "know"],
    &["tell", "me"],
    &["i", "want", "to", "know"],
    &["i", "would", "like", "to", "know"],
];

/// Words after a request that do not change it ("… please, thanks").
const TRAILING: &[&[&str]] = &[
    &["please"],
    &["alexa"],
    &["thanks"],
    &["thank", "you"],
    &["for", "me"],
    &["now"],
    &["right", "now"],
];

impl Request {
    pub fn new(heard: &str) -> Request {
        let all = normalise(heard);
        let mut core = strip_politeness(&all);
        // Whisper may write a short utterance twice ("What is 12 times 7? What is 12 times
        // 7?"): one copy is the request.
        core.end = core.start + period(&all[core.clone()]);
        Request { all, core }
    }

    /// The request's words, without the politeness around it.
    pub fn words(&self) -> &[String] {
        &self.all[self.core.clone()]
    }

    /// The request's words joined by single spaces.
    pub fn text(&self) -> String {
        self.words().join(" ")
    }

    /// The request is exactly one of `phrases` (each written normalised).
    pub fn is_one_of(&self, phrases: &[&str]) -> bool {
        let text = self.text();
        phrases.contains(&text.as_str())
    }
}

/// The length of the shortest run of words that `words` repeats whole ("stop stop" → 1).
fn period(words: &[String]) -> usize {
    let n = words.len();
    (1..=n / 2)
        .find(|&p| n.is_multiple_of(p) && words.chunks(p).all(|c| c == &words[..p]))
        .unwrap_or(n)
}

/// The range of `words` left after the leading and trailing politeness.
fn strip_politeness(words: &[String]) -> std::ops::Range<usize> {
    let starts = |at: usize, phrase: &[&str]| {
        phrase.len() <= words.len() - at && words[at..at + phrase.len()].iter().eq(phrase.iter())
    };
    let (mut start, mut end) = (0, words.len());
    'lead: while start < end {
        for phrase in LEADING {
            // Never strip the request down to nothing ("tell me" alone stays).
            if phrase.len() < end - start && starts(start, phrase) {
                start += phrase.len();
                continue 'lead;
            }
        }
        break;
    }
    'trail: while start < end {
        for phrase in TRAILING {
            if phrase.len() < end - start && starts(end - phrase.len(), phrase) {
                end -= phrase.len();
                continue 'trail;
            }
        }
        break;
    }
    start..end
}

/// Contractions written out, so that "what's the time" and "what is the time" are one.
const CONTRACTIONS: &[(&str, &str)] = &[
    ("what's", "what is"),
    ("whats", "what is"),
    ("it's", "it is"),
    ("that's", "that is"),
    ("thats", "that is"),
    ("how's", "how is"),
    ("there's", "there is"),
    ("let's", "let us"),
    ("i'd", "i would"),
    ("i'm", "i am"),
    ("don't", "do not"),
    ("can't", "cannot"),
    ("won't", "will not"),
    ("what're", "what are"),
];

/// Lower case, words split on spaces and punctuation; '.' and ',' stay inside numbers
/// ("3.5", "1,200"), arithmetic signs become words of their own ("12+7" → "12 + 7"),
/// hyphens join nothing ("twenty-one" → "twenty one"), contractions are written out and
/// other apostrophes dropped ("today's" → "todays").
pub fn normalise(heard: &str) -> Vec<String> {
    let chars: Vec<char> = heard.to_lowercase().chars().collect();
    let mut out = String::with_capacity(chars.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
        let letter = |c: Option<char>| c.is_some_and(char::is_alphabetic);
        match c {
            c if c.is_alphanumeric() => out.push(c),
            '.' | ',' if digit(prev) && digit(next) => out.push(c),
            '\'' | '’' if letter(prev) && letter(next) => out.push('\''),
            '-' if letter(prev) && letter(next) => out.push(' '),
            '+' | '-' | '−' | '*' | '×' | '÷' | '/' | '%' | '=' => {
                out.push(' ');
                out.push(if c == '−' { '-' } else { c });
                out.push(' ');
            }
            _ => out.push(' '),
        }
    }
    let mut words = Vec::new();
    for w in out.split_whitespace() {
        match CONTRACTIONS.iter().find(|(short, _)| *short == w) {
            Some((_, long)) => words.extend(long.split(' ').map(str::to_owned)),
            None => words.push(w.replace('\'', "")),
        }
    }
    words
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fixed local time for the skills' tests: Sunday, December 6th, 2026, 7:05:09 PM.
    pub(crate) fn sunday_evening() -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 6)
            .and_then(|d| d.and_hms_opt(19, 5, 9))
            .unwrap()
    }

    /// What the skills answer to `heard` at [`sunday_evening`], with `timers`.
    pub(crate) fn ask(heard: &str, timers: &Timers, now: Instant) -> Option<Matched> {
        let ctx = SkillContext {
            local: sunday_evening(),
            now,
            timers,
        };
        answer(heard, &ctx)
    }

    #[test]
    fn whisper_text_is_normalised() {
        assert_eq!(
            normalise(" What's the time?"),
            ["what", "is", "the", "time"]
        );
        assert_eq!(normalise("What is 12+7?"), ["what", "is", "12", "+", "7"]);
        assert_eq!(
            normalise("1,200 divided by 3.5."),
            ["1,200", "divided", "by", "3.5"]
        );
        assert_eq!(
            normalise("Twenty-one, please!"),
            ["twenty", "one", "please"]
        );
        assert_eq!(
            normalise("What’s today's date?"),
            ["what", "is", "todays", "date"]
        );
        assert_eq!(normalise("100/8"), ["100", "/", "8"]);
        assert_eq!(normalise("5-3"), ["5", "-", "3"]);
        assert_eq!(normalise("12 × 7 = "), ["12", "×", "7", "="]);
        assert_eq!(normalise("Okay, 1, 2, 3."), ["okay", "1", "2", "3"]);
        assert!(normalise(" ... ").is_empty());
    }

    #[test]
    fn politeness_around_a_request_is_set_aside() {
        let core = |s: &str| Request::new(s).text();
        assert_eq!(
            core("Hey Alexa, can you tell me what time it is?"),
            "what time it is"
        );
        assert_eq!(core("What time is it now, please?"), "what time is it");
        assert_eq!(core("Stop, thank you."), "stop");
        assert_eq!(core("Please stop."), "stop");
        // Never down to nothing.
        assert_eq!(core("Please."), "please");
        assert_eq!(core("Tell me."), "tell me");
    }

    #[test]
    fn a_request_whisper_wrote_twice_is_read_once() {
        let core = |s: &str| Request::new(s).text();
        assert_eq!(
            core("What is 12 times 7? What is 12 times 7?"),
            "what is 12 times 7"
        );
        assert_eq!(core("Stop. Stop. Stop, please."), "stop");
        assert_eq!(core("Stop, stop."), "stop");
        assert_eq!(core("Two plus two"), "two plus two");
        assert_eq!(
            core("What is 12 times 7? What is 12 times 8?"),
            "what is 12 times 7 what is 12 times 8"
        );
    }

    #[test]
    fn each_request_goes_to_its_skill_and_the_rest_to_the_model() {
        let timers = Timers::default();
        let now = Instant::now();
        let skill = |s: &str| ask(s, &timers, now).map(|m| m.skill);
        assert_eq!(skill(" What time is it?"), Some("time"));
        assert_eq!(skill("What is twelve times seven?"), Some("arithmetic"));
        assert_eq!(skill("How much time is left?"), Some("timer"));
        assert_eq!(skill("Cancel the timer."), Some("timer"));
        assert_eq!(skill("Cancel."), Some("stop"));
        assert_eq!(skill("Never mind."), Some("stop"));
        for model in [
            "What is the capital of France?",
            "And of Germany?",
            "What time does the bakery open?",
            "What time is it in Tokyo?",
            "How do I stop you?",
            "Tell me about the history of Rome.",
            "What is 12?",
            "Stop the war in my kitchen.",
            "",
            "?",
        ] {
            assert_eq!(skill(model), None, "{model:?} is the model's");
        }
    }

    #[test]
    fn every_skill_has_its_own_name() {
        let mut names: Vec<&str> = SKILLS.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SKILLS.len());
    }
}
