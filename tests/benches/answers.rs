//! Answer-quality battery: short spoken-style requests sent through the dialog path, text
//! in, the text that would be spoken out. Each goes first to the host's built-in skills
//! (`voicehost::skills::answer`, as `dialog/skill.rs` asks them) and, when none matches, to
//! the llm plugin's engine in-process with the shipped `config/Modelfile`'s system prompt,
//! the date and time context the host sends with every request (`skills::time::facts`,
//! appended to the system prompt by the plugin's own `with_context`) and the conversation's
//! history, so that follow-ups ("and of Spain?") see the previous turn. Every answer is
//! checked by a simple matcher (any of some substrings, case-insensitive; a number; a
//! length limit), and a table is printed per model: the item, what was expected, the
//! answer, pass or fail and who answered (a skill's name or "model"), then the score, the
//! skill items' score, and the model answers' average first-token time and tokens/s.
//!
//! Models: the default (`config/Modelfile`'s FROM, Qwen2.5-Coder-0.5B Q8_0), SmolLM2-135M
//! Q4_1 (the tests' model) with the same system prompt, and Qwen2.5-Coder-1.5B Q8_0 when
//! its file was fetched; 2 threads, greedy (temperature 0).
//!
//! `cargo bench -p voicehost-tests --bench answers` (models fetched).
//!
//! The goal: the default model scores at least 90 %, and every skill item is right.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use chrono::{Datelike, NaiveDateTime, Timelike};
use voicehost::skills::{self, SkillContext, Timers};
use voicehost_plugin_llm::engine::{Event, Job, Message};
use voicehost_plugin_llm::{Modelfile, Settings, preamble, start_engine, with_context};
use voicehost_tests::{model, workspace_root};

const THREADS: usize = 2;

/// What a right answer looks like.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Contains one of these (written in lower case; the answer is lowered).
    Any(&'static [&'static str]),
    /// Says this number (digits; "minus 3" and "-3" are both −3), within 0.05.
    Number(f64),
    /// Says the current hour ("7:05 PM" or "19:05").
    Hour,
    /// Says today's day of the month.
    Day,
    /// Says today's weekday.
    Weekday,
    /// Says something, in at most this many words.
    MaxWords(usize),
    /// Contains one of the first and none of the second (lower case) ("yes" but not
    /// "not a leap year").
    AnyBut(&'static [&'static str], &'static [&'static str]),
    /// Says anything (a turn that sets up a follow-up).
    Anything,
    /// Says nothing (the dialog ends, as after "stop").
    Nothing,
}

impl Expect {
    fn label(self) -> String {
        match self {
            Expect::Any(words) => words.join(" | "),
            Expect::Number(n) => format!("{n}"),
            Expect::Hour => "the current hour".to_owned(),
            Expect::Day => "today's day number".to_owned(),
            Expect::Weekday => "today's weekday".to_owned(),
            Expect::MaxWords(n) => format!("<= {n} words"),
            Expect::AnyBut(words, not) => format!("{}, not {}", words.join(" | "), not.join(" | ")),
            Expect::Anything => "any reply".to_owned(),
            Expect::Nothing => "silence".to_owned(),
        }
    }

    fn check(self, answer: &str, now: NaiveDateTime) -> bool {
        let lower = answer.to_lowercase();
        match self {
            Expect::Any(words) => words.iter().any(|w| lower.contains(w)),
            Expect::AnyBut(words, not) => {
                words.iter().any(|w| lower.contains(w)) && !not.iter().any(|w| lower.contains(w))
            }
            Expect::Number(n) => numbers(&lower).iter().any(|x| (x - n).abs() < 0.05),
            Expect::Hour => {
                let (_, h12) = now.hour12();
                lower.contains(&format!("{h12}:")) || lower.contains(&format!("{}:", now.hour()))
            }
            Expect::Day => numbers(&lower).contains(&f64::from(now.day())),
            Expect::Weekday => lower.contains(&now.format("%A").to_string().to_lowercase()),
            Expect::MaxWords(n) => {
                let words = answer.split_whitespace().count();
                words > 0 && words <= n
            }
            Expect::Anything => !answer.trim().is_empty(),
            Expect::Nothing => answer.trim().is_empty(),
        }
    }
}

/// The numbers written in `text` with digits: "minus 3", "-3" → −3; "6th" → 6; "1,200" →
/// 1200.
fn numbers(text: &str) -> Vec<f64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let digits: String = word
            .trim_matches(|c: char| !c.is_ascii_digit() && c != '-')
            .chars()
            .filter(|&c| c != ',')
            .collect();
        let digits = digits.trim_end_matches(|c: char| !c.is_ascii_digit());
        let Ok(n) = digits.parse::<f64>() else {
            continue;
        };
        let negative = i > 0 && matches!(words[i - 1], "minus" | "negative");
        out.push(if negative { -n } else { n });
    }
    out
}

/// One request: its conversation (the same name = one dialog, in order), what is said,
/// what a right answer looks like, and the skill that must answer it (`None`: the model's;
/// a skill item answered by anyone else fails).
struct Item {
    conversation: &'static str,
    heard: &'static str,
    expect: Expect,
    skill: Option<&'static str>,
}

/// A request for the model.
const fn item(conversation: &'static str, heard: &'static str, expect: Expect) -> Item {
    Item {
        conversation,
        heard,
        expect,
        skill: None,
    }
}

/// A request for the skill `skill`.
const fn skill(
    skill: &'static str,
    conversation: &'static str,
    heard: &'static str,
    expect: Expect,
) -> Item {
    Item {
        conversation,
        heard,
        expect,
        skill: Some(skill),
    }
}

const ITEMS: &[Item] = &[
    // Facts.
    item(
        "france",
        "What is the capital of France?",
        Expect::Any(&["paris"]),
    ),
    item(
        "japan",
        "What is the capital of Japan?",
        Expect::Any(&["tokyo"]),
    ),
    item(
        "spider",
        "How many legs does a spider have?",
        Expect::Any(&["8", "eight"]),
    ),
    item(
        "boiling",
        "What is the boiling point of water in Celsius?",
        Expect::Number(100.0),
    ),
    item(
        "romeo",
        "Who wrote Romeo and Juliet?",
        Expect::Any(&["shakespeare"]),
    ),
    item(
        "planet",
        "What is the largest planet?",
        Expect::Any(&["jupiter"]),
    ),
    // Arithmetic.
    skill(
        "arithmetic",
        "times",
        "What is twelve times seven?",
        Expect::Number(84.0),
    ),
    skill(
        "arithmetic",
        "plus",
        "What is 15 plus 27?",
        Expect::Number(42.0),
    ),
    skill(
        "arithmetic",
        "divided",
        "What is 100 divided by 8?",
        Expect::Number(12.5),
    ),
    skill(
        "arithmetic",
        "minus",
        "What is 9 minus 12?",
        Expect::Number(-3.0),
    ),
    skill(
        "arithmetic",
        "zero",
        "What is 5 divided by zero?",
        Expect::Any(&["zero", "can't", "cannot", "undefined"]),
    ),
    // The time and the date.
    skill("time", "time", "What time is it?", Expect::Hour),
    skill("time", "date", "What's the date today?", Expect::Day),
    skill("time", "day", "What day is it?", Expect::Weekday),
    // Timers.
    skill(
        "timer",
        "timer",
        "Set a timer for ten seconds.",
        Expect::Any(&["10 second", "ten second"]),
    ),
    skill(
        "timer",
        "timer",
        "How much time is left?",
        Expect::Any(&["second"]),
    ),
    skill(
        "timer",
        "timer",
        "Cancel the timer.",
        Expect::Any(&["cancel"]),
    ),
    // Follow-ups that need the previous turn.
    item(
        "italy",
        "What is the capital of Italy?",
        Expect::Any(&["rome"]),
    ),
    item("italy", "And of Spain?", Expect::Any(&["madrid"])),
    item("name", "My name is Sam.", Expect::Anything),
    item("name", "What is my name?", Expect::Any(&["sam"])),
    // Short answers, stop, and a few more the model answers.
    item(
        "sun",
        "Describe the sun in one sentence.",
        Expect::MaxWords(25),
    ),
    skill("stop", "stop", "Stop.", Expect::Nothing),
    item(
        "leap",
        "Is 2024 a leap year?",
        Expect::AnyBut(&["yes", "is a leap year"], &["not", "no,"]),
    ),
    item(
        "cold",
        "What is the opposite of cold?",
        Expect::Any(&["hot"]),
    ),
    skill(
        "units",
        "miles",
        "How many miles is 5 kilometers?",
        Expect::Number(3.1),
    ),
];

/// One item's outcome.
struct Outcome {
    answer: String,
    who: &'static str,
    pass: bool,
    /// Model answers: (ms to the first token, tokens per second while generating).
    speed: Option<(f64, f64)>,
}

/// The embedded engine for `modelfile`.
fn engine(modelfile: &Modelfile) -> std::sync::mpsc::Sender<Job> {
    let settings =
        Settings::embedded(workspace_root().join("config/Modelfile"), THREADS as i32).unwrap();
    start_engine(&settings, modelfile).unwrap().0
}

/// The model's reply to `messages` (the first `keep` are the preamble), with its timing.
fn generate(
    jobs: &std::sync::mpsc::Sender<Job>,
    messages: Vec<Message>,
    keep: usize,
    max_tokens: u32,
) -> (String, Option<(f64, f64)>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(256);
    let asked = Instant::now();
    jobs.send(Job {
        messages,
        keep,
        max_tokens,
        prefill_only: false,
        out: tx,
    })
    .unwrap();
    let (mut text, mut first) = (String::new(), None);
    loop {
        match rx.blocking_recv() {
            Some(Event::Text(t)) => {
                first.get_or_insert_with(|| asked.elapsed());
                text.push_str(&t);
            }
            Some(Event::Done { tokens, .. }) => {
                let speed = first.map(|first| {
                    let generating = (asked.elapsed() - first).as_secs_f64();
                    (
                        first.as_secs_f64() * 1000.0,
                        tokens.saturating_sub(1) as f64 / generating.max(1e-9),
                    )
                });
                return (text.trim().to_owned(), speed);
            }
            Some(Event::Rejected(why) | Event::Failed(why)) => {
                return (format!("<error: {why}>"), None);
            }
            None => return ("<error: the engine went away>".to_owned(), None),
        }
    }
}

/// The whole battery against the model in `modelfile`.
fn battery(modelfile: &Modelfile) -> Vec<Outcome> {
    let jobs = engine(modelfile);
    let preamble = preamble(modelfile);
    let max_tokens = modelfile.params.num_predict;
    // Warm-up, as the plugin does before it reports SERVING.
    let mut warm = preamble.clone();
    warm.push(Message::new("user", "Hello"));
    generate(&jobs, warm, preamble.len(), 4);

    let timers = Timers::default();
    let mut histories: HashMap<&str, Vec<Message>> = HashMap::new();
    let mut out = Vec::new();
    for item in ITEMS {
        let ctx = SkillContext::now(&timers);
        let (answer, who, speed) = match skills::answer(item.heard, &ctx) {
            Some(m) => (m.reply.text, m.skill, None),
            None => {
                let history = histories.entry(item.conversation).or_default();
                let mut messages = with_context(&preamble, &skills::time::facts(ctx.local));
                let keep = messages.len();
                messages.extend(history.iter().cloned());
                messages.push(Message::new("user", item.heard));
                let (answer, speed) = generate(&jobs, messages, keep, max_tokens);
                history.push(Message::new("user", item.heard));
                history.push(Message::new("assistant", answer.clone()));
                (answer, "model", speed)
            }
        };
        let pass = item.expect.check(&answer, ctx.local) && item.skill.is_none_or(|s| s == who);
        out.push(Outcome {
            answer,
            who,
            pass,
            speed,
        });
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    let s = s.replace('\n', " ");
    if s.chars().count() <= n {
        s
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

fn percent(n: usize, m: usize) -> String {
    format!("{n}/{m} ({:.0} %)", 100.0 * n as f64 / m.max(1) as f64)
}

fn report(name: &str, outcomes: &[Outcome]) -> (usize, usize, usize) {
    println!("\n{name}");
    println!(
        "  {:<44} {:<24} {:<52} {:<4} who",
        "item", "expected", "answer", "ok",
    );
    for (item, o) in ITEMS.iter().zip(outcomes) {
        println!(
            "  {:<44} {:<24} {:<52} {:<4} {}",
            truncate(item.heard, 44),
            truncate(
                &match item.skill {
                    Some(s) => format!("{s}: {}", item.expect.label()),
                    None => item.expect.label(),
                },
                24
            ),
            truncate(&o.answer, 52),
            if o.pass { "pass" } else { "FAIL" },
            o.who
        );
    }
    let passed = outcomes.iter().filter(|o| o.pass).count();
    let skill: Vec<&Outcome> = ITEMS
        .iter()
        .zip(outcomes)
        .filter(|(item, _)| item.skill.is_some())
        .map(|(_, o)| o)
        .collect();
    let skill_passed = skill.iter().filter(|o| o.pass).count();
    let speeds: Vec<(f64, f64)> = outcomes.iter().filter_map(|o| o.speed).collect();
    let mean = |f: fn(&(f64, f64)) -> f64| speeds.iter().map(f).sum::<f64>() / speeds.len() as f64;
    println!(
        "  score {}   skill items {}   model answers {}: first token {:.0} ms, {:.1} tokens/s (averages)",
        percent(passed, outcomes.len()),
        percent(skill_passed, skill.len()),
        speeds.len(),
        mean(|s| s.0),
        mean(|s| s.1),
    );
    (passed, skill_passed, skill.len())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let shipped = Modelfile::load(&workspace_root().join("config/Modelfile")).unwrap();
    let mut models: Vec<(String, PathBuf)> = vec![
        (format!("default: {}", shipped.from), shipped.from_path()),
        (
            "SmolLM2-135M-Instruct Q4_1".to_owned(),
            model("SmolLM2-135M-Instruct.Q4_1.gguf"),
        ),
    ];
    let big = workspace_root().join("models/Qwen2.5-Coder-1.5B-Instruct.Q8_0.gguf");
    if big.is_file() {
        models.push(("Qwen2.5-Coder-1.5B-Instruct Q8_0".to_owned(), big));
    }
    println!(
        "answer-quality battery: {} items, skills first, then the model ({THREADS} threads, greedy, config/Modelfile's system prompt)",
        ITEMS.len()
    );
    let mut default_result = None;
    for (name, path) in models {
        let mut modelfile = shipped.clone();
        modelfile.from = path.display().to_string();
        modelfile.params.temperature = 0.0;
        let outcomes = battery(&modelfile);
        let result = report(&name, &outcomes);
        default_result.get_or_insert(result);
    }
    if let Some((passed, skill_passed, skills)) = default_result {
        let met = passed * 10 >= ITEMS.len() * 9 && skill_passed == skills;
        println!(
            "\ngoal: default model >= 90 % and every skill item right: {}",
            if met { "met" } else { "NOT met" }
        );
    }
}
