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

/// True when `text` ends a sentence or question (`.`, `?` or `!`, not an ellipsis) and its
/// last word is not one a sentence cannot end with ("and", "the", "of", …).
pub fn reads_complete(text: &str) -> bool {
    let text = text.trim();
    let Some(last) = text.chars().last() else {
        return false;
    };
    if !matches!(last, '.' | '?' | '!') || text.ends_with("..") || text.ends_with('…') {
        return false;
    }
    let Some(word) = text.split_whitespace().last() else {
        return false;
    };
    let word: String = word
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '\'')
        .collect::<String>()
        .to_lowercase();
    !word.is_empty() && !CONTINUATIONS.contains(&word.as_str())
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
        ] {
            assert!(reads_complete(t), "{t:?}");
        }
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
        ] {
            assert!(!reads_complete(t), "{t:?}");
        }
    }
}
