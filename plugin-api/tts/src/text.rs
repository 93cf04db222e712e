//! Text checks and splitting into the pieces that are synthesised one at a time.

/// Characters allowed in `Speak` text besides letters, digits and whitespace.
const ALLOWED_SYMBOLS: &str = ".,;:!?'\"-–—…()[]/&%$€£+*=@#<>«»“”‘’";

/// Checks text given to `Speak`; the error says what is wrong and where.
pub fn validate(text: &str, max_bytes: usize) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("text is empty; give the words to speak".to_owned());
    }
    if text.len() > max_bytes {
        return Err(format!(
            "text is {} bytes; at most {max_bytes} are accepted per call (split it, or raise [tts] max_text_bytes)",
            text.len()
        ));
    }
    for (pos, c) in text.char_indices() {
        if c.is_control() && !matches!(c, '\n' | '\t' | '\r') {
            return Err(format!(
                "text contains the control character U+{:04X} at byte {pos}; remove it",
                u32::from(c)
            ));
        }
        if !(c.is_alphanumeric() || c.is_whitespace() || ALLOWED_SYMBOLS.contains(c)) {
            return Err(format!(
                "text contains {c:?} (U+{:04X}) at byte {pos}, which cannot be spoken; remove it",
                u32::from(c)
            ));
        }
    }
    Ok(())
}

/// Streamed (LLM) text is cleaned rather than refused: what cannot be spoken is dropped.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .filter(|c| c.is_alphanumeric() || c.is_whitespace() || ALLOWED_SYMBOLS.contains(*c))
        .collect()
}

fn ends_sentence(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | ';' | ':' | '…' | '\n')
}

/// Splits text into sentences; sentences longer than `max_chars` are split again at commas,
/// then at spaces. Nothing is dropped.
pub fn sentences(text: &str, max_chars: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        current.push(c);
        let boundary = ends_sentence(c) && chars.peek().is_none_or(|n| n.is_whitespace());
        if boundary {
            push_piece(&mut out, &current, max_chars);
            current.clear();
        }
    }
    push_piece(&mut out, &current, max_chars);
    out
}

fn push_piece(out: &mut Vec<String>, piece: &str, max_chars: usize) {
    let piece = piece.trim();
    if piece.is_empty() {
        return;
    }
    if piece.chars().count() <= max_chars {
        out.push(piece.to_owned());
        return;
    }
    let mut current = String::new();
    for word in piece.split_inclusive(char::is_whitespace) {
        if current.chars().count() + word.chars().count() > max_chars && !current.trim().is_empty()
        {
            out.push(current.trim().to_owned());
            current.clear();
        }
        current.push_str(word);
        if current.trim_end().ends_with(',') && current.chars().count() > max_chars / 2 {
            out.push(current.trim().to_owned());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().to_owned());
    }
}

/// Words a spoken phrase does not pause after ("the capital of | France" sounds broken,
/// "the capital | of France" does not): articles, prepositions, conjunctions, auxiliaries.
const NO_PAUSE_AFTER: &[&str] = &[
    "a", "an", "the", "of", "to", "in", "on", "at", "for", "with", "from", "by", "about", "into",
    "and", "or", "but", "that", "is", "are", "was", "were", "be", "am", "do", "does", "did", "can",
    "will", "would", "my", "your", "his", "her", "its", "our", "their", "this",
];

/// At most this many words more than `first_words` wait for a word [`NO_PAUSE_AFTER`]
/// allows the first clause to end after.
const FIRST_CLAUSE_SLACK: usize = 3;

/// Collects streamed text and hands out clauses as soon as they are complete: at sentence
/// punctuation, at a comma once a few words are there, and — for the first clause, so the
/// first audio comes early — after `first_words` whole words even without punctuation
/// (a few more if the last of them is one a phrase does not pause after).
#[derive(Debug)]
pub struct ClauseBuffer {
    buffer: String,
    first_words: usize,
    emitted: usize,
}

impl ClauseBuffer {
    pub fn new(first_words: usize) -> ClauseBuffer {
        ClauseBuffer {
            buffer: String::new(),
            first_words: first_words.max(1),
            emitted: 0,
        }
    }

    /// Adds text; returns the clauses now complete.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.buffer.push_str(text);
        let mut out = Vec::new();
        while let Some(end) = self.boundary() {
            let clause: String = self.buffer.drain(..end).collect();
            let clause = clause.trim();
            if !clause.is_empty() {
                out.push(clause.to_owned());
                self.emitted += 1;
            }
        }
        out
    }

    /// The rest (at end of turn).
    pub fn flush(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buffer);
        let rest = rest.trim();
        (!rest.is_empty()).then(|| rest.to_owned())
    }

    /// Byte index just past the next complete clause, if any.
    fn boundary(&self) -> Option<usize> {
        let b = &self.buffer;
        let mut words = 0;
        let mut in_word = false;
        let mut word_start = 0;
        let mut last_word = "";
        let mut iter = b.char_indices().peekable();
        while let Some((i, c)) = iter.next() {
            let next_is_space = iter.peek().map(|(_, n)| n.is_whitespace());
            if c.is_whitespace() {
                if in_word {
                    words += 1;
                    last_word = &b[word_start..i];
                }
                in_word = false;
            } else {
                if !in_word {
                    word_start = i;
                }
                in_word = true;
            }
            let after = i + c.len_utf8();
            // Punctuation counts once the next character shows it is not inside a number
            // or an abbreviation like "3.5".
            if ends_sentence(c) && next_is_space == Some(true) {
                return Some(after);
            }
            if c == ',' && next_is_space == Some(true) && words + usize::from(in_word) >= 3 {
                return Some(after);
            }
            if self.emitted == 0
                && c.is_whitespace()
                && words >= self.first_words
                && (words >= self.first_words + FIRST_CLAUSE_SLACK || pauses_after(last_word))
            {
                return Some(after);
            }
            if words >= 30 && c.is_whitespace() {
                return Some(after);
            }
        }
        None
    }
}

/// Whether speech may pause after `word` (it is not one of [`NO_PAUSE_AFTER`]).
fn pauses_after(word: &str) -> bool {
    let word: String = word
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '\'')
        .flat_map(char::to_lowercase)
        .collect();
    !NO_PAUSE_AFTER.contains(&word.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_text_is_named() {
        assert!(validate("  ", 100).unwrap_err().contains("empty"));
        assert!(
            validate(&"a".repeat(101), 100)
                .unwrap_err()
                .contains("101 bytes")
        );
        assert!(validate("hi\u{7}", 100).unwrap_err().contains("U+0007"));
        assert!(validate("hi 🙂", 100).unwrap_err().contains("U+1F642"));
        assert!(validate("Test 1, 2, 3! (Über-café: 5 €)", 100).is_ok());
        assert_eq!(sanitize("ok 🙂\u{7}!"), "ok  !");
    }

    #[test]
    fn sentences_split_and_keep_everything() {
        let s = sentences("Hello there. It is 3.5 degrees! Is it? Yes", 200);
        assert_eq!(s, ["Hello there.", "It is 3.5 degrees!", "Is it?", "Yes"]);
        let long = "word ".repeat(100);
        let pieces = sentences(&long, 50);
        assert!(pieces.iter().all(|p| p.chars().count() <= 50));
        assert_eq!(pieces.join(" ").split_whitespace().count(), 100);
    }

    #[test]
    fn clauses_come_out_as_soon_as_complete() {
        let mut c = ClauseBuffer::new(4);
        let mut got = Vec::new();
        for token in [
            "The", " capital", " of", " France", " is", " Paris", ".", " It", " is", " big", ".",
        ] {
            got.extend(c.push(token));
        }
        got.extend(c.flush());
        // First clause after four words, then at the sentence ends.
        assert_eq!(got, ["The capital of France", "is Paris.", "It is big."]);

        // Not after "of", "the", "is": the first clause waits for a word speech may pause
        // after, at most three words longer.
        let clauses = |first: usize, text: &str| {
            let mut c = ClauseBuffer::new(first);
            let mut got = c.push(text);
            got.extend(c.flush());
            got
        };
        assert_eq!(
            clauses(3, "The capital of France is Paris."),
            ["The capital of France", "is Paris."]
        );
        assert_eq!(
            clauses(2, "The capital of France is Paris."),
            ["The capital", "of France is Paris."]
        );
        assert_eq!(
            clauses(2, "It is the largest city of all."),
            ["It is the largest", "city of all."]
        );
        assert_eq!(
            clauses(1, "In the of the at the end."),
            ["In the of the", "at the end."]
        );

        let mut c = ClauseBuffer::new(4);
        assert!(
            c.push("Pi is 3.").is_empty(),
            "3. followed by a digit is a number"
        );
        assert_eq!(c.push("14, roughly, "), ["Pi is 3.14,"]);
        assert_eq!(c.flush().as_deref(), Some("roughly,"));
    }
}
