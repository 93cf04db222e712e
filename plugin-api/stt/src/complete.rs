//! Whether a partial transcript reads as a complete request — the test of smart
//! endpointing, which finalises after a short pause only when it does.

/// Words after which a sentence cannot end: conjunctions, articles, prepositions,
/// possessives, auxiliaries and fillers.
const CONTINUATIONS: &[&str] = &[
    "and", "or", "but", "so", "because", "if", "then", "than", "that", "which", "who", "whose",
    "the", "a", "an", "to", "of", "for", "with", "in", "on", "at", "from", "by", "about", "into",
    "onto", "over", "under", "between", "like", "as", "my", "your", "his", "her", "its", "our",
    "their", "this", "these", "those", "is", "are", "was", "were", "be", "been", "am", "do",
    "does", "did", "can", "could", "will", "would", "should", "shall", "may", "might", "must",
    "have", "has", "had", "not", "very", "um", "uh", "er", "erm", "hmm", "well",
];

/// Words that open a question. A question that Whisper ended with a full stop rather than
/// a question mark was usually misheard or cut ("And what I'm out." for "And what about…").
const QUESTION_OPENERS: &[&str] = &[
    "what", "where", "when", "who", "whom", "whose", "why", "how", "which", "is", "are", "was",
    "were", "can", "could", "do", "does", "did", "will", "would", "should", "shall", "may",
    "might", "have", "has",
];

/// Words that may precede a question's opener ("And what about…").
const LEADING_CONJUNCTIONS: &[&str] = &["and", "but", "so", "or", "then", "also", "now"];

/// Openers of a follow-up that goes on from the last answer ("And what about…", "But in
/// winter?"). Such a turn that Whisper ends with a full stop was, on the acoustic bench,
/// a misheard fragment ("And watch 'em out." for "And what about", then a pause): at the
/// utterance's first pause it does not read complete. Once the user went on after a pause
/// and paused again, the words before it are no longer a fragment of this kind.
const FOLLOW_UP_OPENERS: &[&str] = &["and", "but", "or"];

fn plain(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric() || *c == '\'')
        .collect::<String>()
        .to_lowercase()
}

/// True when `text` ends a sentence or question (`.`, `?` or `!`, not an ellipsis), its
/// last word is not one a sentence cannot end with ("and", "the", "of", …), and a text
/// that opens as a question, or as a follow-up with "and", "but" or "or", ends with a
/// question mark (or `!`, for the follow-up).
pub fn reads_complete(text: &str) -> bool {
    reads_complete_at(text, 1)
}

/// [`reads_complete`] at pause `pause` of the utterance (counting from 1): the rule for a
/// follow-up's opener holds at the first pause only.
pub(crate) fn reads_complete_at(text: &str, pause: u32) -> bool {
    let text = text.trim();
    let Some(last) = text.chars().last() else {
        return false;
    };
    if !matches!(last, '.' | '?' | '!') || text.ends_with("..") || text.ends_with('…') {
        return false;
    }
    let words: Vec<String> = text.split_whitespace().map(plain).collect();
    let Some(word) = words.last() else {
        return false;
    };
    if word.is_empty() || CONTINUATIONS.contains(&word.as_str()) {
        return false;
    }
    if last == '.'
        && pause <= 1
        && words
            .first()
            .is_some_and(|w| FOLLOW_UP_OPENERS.contains(&w.as_str()))
    {
        return false;
    }
    let opener = words
        .iter()
        .find(|w| !LEADING_CONJUNCTIONS.contains(&w.as_str()))
        .map_or("", String::as_str);
    last == '?' || !QUESTION_OPENERS.contains(&opener)
}

#[cfg(test)]
mod tests {
    use super::reads_complete;

    #[test]
    fn requests_that_end_are_complete() {
        for t in [
            "What is the capital of France?",
            "Stop.",
            "Turn on the lights!",
            " And what about Germany? ",
            "Set a timer for ten minutes.",
            "Tell me a joke.",
            "And in Germany?",
            "And turn off the kitchen light!",
        ] {
            assert!(reads_complete(t), "{t:?}");
        }
    }

    #[test]
    fn a_follow_up_opener_makes_a_fragment_only_at_the_first_pause() {
        use super::reads_complete_at;
        // Whisper's "And what about | Germany?" in one voice, at each pause.
        assert!(!reads_complete_at("and watch them out.", 1));
        assert!(reads_complete_at("and watch them out, Germany.", 2));
        // The other rules hold at every pause.
        assert!(!reads_complete_at("And what about the.", 2));
        assert!(!reads_complete_at("And what is it.", 2));
    }

    #[test]
    fn trailing_off_is_not_complete() {
        for t in [
            "",
            "What is the capital of",
            "What is the capital of.",
            "Turn on the lights and",
            "Tell me about the,",
            "I want the...",
            "I want to …",
            "Remind me to buy milk and.",
            "Um.",
            "Play some music by the.",
            "And what I'm out.",
            "And watch 'em out.",
            "But in the.",
            "What is the capital of France.",
        ] {
            assert!(!reads_complete(t), "{t:?}");
        }
    }
}
