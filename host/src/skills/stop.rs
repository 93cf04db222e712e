//! "Stop", "cancel", "never mind", "that's all": silences a ringing timer and ends the
//! dialog without a word (a reply it interrupts was already stopped by the barge-in).

use super::{Reply, Request, Skill, SkillContext};

/// Ends the dialog (and a ringing alarm).
#[derive(Debug)]
pub struct StopSkill;

const STOP: &[&str] = &[
    "stop",
    "stop it",
    "stop that",
    "stop talking",
    "stop stop",
    "cancel",
    "cancel that",
    "cancel it",
    "never mind",
    "nevermind",
    "forget it",
    "forget about it",
    "that is all",
    "that is it",
    "that will be all",
    "that is enough",
    "enough",
    "nothing",
    "quiet",
    "be quiet",
    "silence",
    "shut up",
    "no",
    "no thanks",
    "i am done",
    "we are done",
    "goodbye",
    "bye",
];

/// True when `heard` is one of the stop phrases: "stop" is always the user's, even where
/// the reply being spoken has the word in it.
pub fn is_stop(heard: &str) -> bool {
    Request::new(heard).is_one_of(STOP)
}

impl Skill for StopSkill {
    fn name(&self) -> &'static str {
        "stop"
    }

    fn answer(&self, request: &Request, ctx: &SkillContext<'_>) -> Option<Reply> {
        if !request.is_one_of(STOP) {
            return None;
        }
        ctx.timers.silence();
        Some(Reply::end(""))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::skills::tests::ask;
    use crate::skills::{Reply, Timers};

    #[test]
    fn stop_ends_the_dialog_without_a_word() {
        let timers = Timers::default();
        for q in [
            "Stop.",
            "Stop!",
            " Cancel.",
            "Never mind.",
            "That's all.",
            "Alexa, stop.",
            "Okay, stop it, please.",
            "No, thank you.",
        ] {
            let m = ask(q, &timers, Instant::now()).unwrap();
            assert_eq!((m.skill, &m.reply), ("stop", &Reply::end("")), "{q}");
        }
    }

    #[test]
    fn stop_silences_a_ringing_timer() {
        let timers = Timers::default();
        let t0 = Instant::now();
        timers.set(Duration::from_secs(3), t0).unwrap();
        timers.take_due(t0 + Duration::from_secs(4));
        assert_eq!(timers.ringing().len(), 1);
        ask("stop", &timers, t0 + Duration::from_secs(5)).unwrap();
        assert!(timers.ringing().is_empty());
        assert!(timers.is_idle());
    }

    #[test]
    fn longer_requests_with_stop_in_them_are_not_stop() {
        let timers = Timers::default();
        for q in [
            "How do I stop you?",
            "Stop the war.",
            "Cancel my subscription.",
            "What is the last stop of the train?",
        ] {
            assert!(
                ask(q, &timers, Instant::now()).is_none_or(|m| m.skill != "stop"),
                "{q}"
            );
        }
    }
}
