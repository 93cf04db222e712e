//! The last line of defence against the assistant answering itself: a final whose words
//! are a piece of the reply just spoken, heard while it played or just after, is its echo.
//!
//! stt's echo guard decides from levels, and on a real echo path a barely cancelled word
//! can pass it (the end of "It's 3:56 PM." came back as "6 PM." and was answered). The
//! text tells what the level could not: the user does not say, word for word, a piece of
//! the sentence the assistant is saying at that moment.

use voicehost_plugin_runtime::now_us;
use voicehost_proto::stt::v1::SttResult;

/// Speech that starts this long after the reply ended may still be its echo (the output's
/// buffer, the room, the echo path's delay).
const ECHO_TAIL_US: i64 = 1_000_000;
/// Fewer letters and digits than this are too little to tell an echo by.
const MIN_CHARS: usize = 2;

/// The reply just spoken (what was relayed to tts) and when it ended.
#[derive(Debug, Clone)]
pub(super) struct LastReply {
    text: String,
    ended_unix_us: i64,
}

impl LastReply {
    /// The reply `text`, ended now.
    pub(super) fn ended_now(text: String) -> LastReply {
        LastReply {
            text: letters(&text),
            ended_unix_us: now_us(),
        }
    }

    /// True when `heard` began while the reply played or within [`ECHO_TAIL_US`] of its
    /// end, and its letters and digits run, in order, within the reply's.
    pub(super) fn echoed_by(&self, heard: &SttResult) -> bool {
        let words = letters(&heard.text);
        heard.speech_start_unix_us <= self.ended_unix_us + ECHO_TAIL_US
            && words.chars().count() >= MIN_CHARS
            && self.text.contains(&words)
    }
}

/// `text` lower-cased with only its letters and digits: "It's 3:56 PM." → "its356pm".
fn letters(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard(text: &str, start_us: i64) -> SttResult {
        SttResult {
            text: text.to_owned(),
            is_final: true,
            speech_start_unix_us: start_us,
            ..SttResult::default()
        }
    }

    fn reply(text: &str, ended_unix_us: i64) -> LastReply {
        LastReply {
            text: letters(text),
            ended_unix_us,
        }
    }

    #[test]
    fn a_piece_of_the_reply_heard_during_it_or_just_after_is_its_echo() {
        let r = reply("It's 3:56 PM.", 10_000_000);
        assert!(r.echoed_by(&heard("6 PM.", 9_800_000)));
        assert!(r.echoed_by(&heard("It's 3:56", 10_900_000)));
        let story = reply("The dragon slept. Then it woke, hungry.", 10_000_000);
        assert!(story.echoed_by(&heard("Then it woke.", 9_000_000)));
    }

    #[test]
    fn the_users_own_words_are_not_echo() {
        let r = reply("The capital of France is Paris.", 10_000_000);
        // Other words, or the reply's words in another order.
        assert!(!r.echoed_by(&heard("What about Germany?", 9_000_000)));
        assert!(!r.echoed_by(&heard("Paris is the capital?", 9_000_000)));
        // Too little to tell.
        assert!(!r.echoed_by(&heard("s", 9_000_000)));
        assert!(!r.echoed_by(&heard("...", 9_000_000)));
        // Said well after the reply ended.
        assert!(!r.echoed_by(&heard("Paris.", 11_500_000)));
    }
}
