//! What the backends share: a generation job, its events, and the text handling every
//! backend needs (stop strings held back until they cannot match, UTF-8 across tokens).
//!
//! One engine thread per plugin runs one generation at a time; jobs wait in order on its
//! channel. A job whose client went away is skipped, and a generation stops at the next
//! token once its client goes away.

use tokio::sync::mpsc;

/// A conversation message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    pub text: String,
}

impl Message {
    pub fn new(role: &'static str, text: impl Into<String>) -> Message {
        Message {
            role,
            text: text.into(),
        }
    }
}

/// Why a reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// End of turn or a stop string.
    Stop,
    /// The token limit.
    Length,
    /// The client went away.
    Cancelled,
    /// A prefill-only job read its prompt.
    Prefilled,
}

impl Finish {
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
            Finish::Cancelled => "cancelled",
            Finish::Prefilled => "prefilled",
        }
    }
}

/// What a generation reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Text(String),
    Done {
        finish: Finish,
        prompt_tokens: usize,
        tokens: usize,
        /// Job start → first text, ms.
        first_text_ms: u64,
        /// History messages dropped to fit the context.
        trimmed: usize,
    },
    /// The request cannot be served as asked (e.g. longer than the context).
    Rejected(String),
    Failed(String),
}

impl Event {
    /// Logs a generation that stopped because its client went away.
    pub fn log_if_cancelled(&self) {
        if let Event::Done {
            finish: Finish::Cancelled,
            tokens,
            ..
        } = self
        {
            tracing::info!(
                event = "llm_stopped",
                tokens,
                "Generation stopped: the client went away"
            );
        }
    }
}

/// One generation.
#[derive(Debug)]
pub struct Job {
    /// System prompt and examples, the history, and the new user message last.
    pub messages: Vec<Message>,
    /// Leading messages that are never trimmed (system prompt, examples).
    pub keep: usize,
    pub max_tokens: u32,
    /// Only read the prompt (`messages` end with the system prompt, no user message) into
    /// the cache; no reply.
    pub prefill_only: bool,
    pub out: mpsc::Sender<Event>,
}

impl Job {
    /// Sends `event`; false when the client is gone.
    pub fn send(&self, event: Event) -> bool {
        self.out.blocking_send(event).is_ok()
    }
}

/// Holds back generated text that could be the start of a stop string, and ends the reply
/// at one.
#[derive(Debug)]
pub struct StopFilter {
    stops: Vec<String>,
    pending: String,
}

impl StopFilter {
    pub fn new(stops: &[String]) -> StopFilter {
        StopFilter {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            pending: String::new(),
        }
    }

    /// Adds `text`; returns what can be emitted, and whether a stop string was reached
    /// (the text before it is emitted, the stop string itself is not).
    pub fn push(&mut self, text: &str) -> (String, bool) {
        self.pending.push_str(text);
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| self.pending.find(s.as_str()))
            .min()
        {
            let out = self.pending[..at].to_owned();
            self.pending.clear();
            return (out, true);
        }
        // Keep the longest tail that is a prefix of some stop string.
        let mut keep = 0;
        for s in &self.stops {
            for (i, _) in self.pending.char_indices() {
                let tail = &self.pending[i..];
                if s.starts_with(tail) {
                    keep = keep.max(tail.len());
                    break;
                }
            }
        }
        let cut = self.pending.len() - keep;
        let out = self.pending[..cut].to_owned();
        self.pending.drain(..cut);
        (out, false)
    }

    /// What is held back, at the end of the reply.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.pending)
    }
}

/// Turns token bytes into text, keeping an incomplete UTF-8 sequence for the next token.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        match std::str::from_utf8(&self.pending) {
            Ok(s) => {
                let s = s.to_owned();
                self.pending.clear();
                s
            }
            Err(e) if e.error_len().is_none() => {
                // An incomplete sequence at the end: emit what is before it.
                let valid = e.valid_up_to();
                let s = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
                self.pending.drain(..valid);
                s
            }
            Err(_) => {
                let s = String::from_utf8_lossy(&self.pending).into_owned();
                self.pending.clear();
                s
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_strings_are_held_back_and_cut() {
        let mut f = StopFilter::new(&["<|im_end|>".to_owned(), "User:".to_owned()]);
        assert_eq!(f.push("Paris"), ("Paris".to_owned(), false));
        assert_eq!(f.push(" is <|im"), (" is ".to_owned(), false));
        assert_eq!(f.push("_end|> more"), (String::new(), true));
        let mut f = StopFilter::new(&["User:".to_owned()]);
        assert_eq!(f.push("Use"), (String::new(), false));
        assert_eq!(f.push("d it."), ("Used it.".to_owned(), false));
        assert_eq!(f.push(" U"), (" ".to_owned(), false));
        assert_eq!(f.finish(), "U");
    }

    #[test]
    fn utf8_split_across_tokens_is_joined() {
        let mut d = Utf8Stream::default();
        let euro = "€".as_bytes();
        assert_eq!(d.push(&euro[..1]), "");
        assert_eq!(d.push(&euro[1..]), "€");
        assert_eq!(d.push(b"ok"), "ok");
    }
}
