//! How a partial transcript reads: a complete request, likely one, or speech that goes on
//! — the text check of smart and turn-model endpointing, which end an utterance at a
//! pause only when it reads complete (turn-model: and the model agrees) or, after the
//! longer pause of the late check, likely complete.

/// Words no sentence ends on, whatever its punctuation: articles, possessives,
/// conjunctions and fillers.
const NEVER_LAST: &[&str] = &[
    "and", "or", "but", "because", "if", "than", "the", "a", "an", "my", "your", "our", "their",
    "its", "very", "um", "uh", "er", "erm", "hmm",
];

/// Prepositions: a sentence ends on one only in the cases below.
const PREPOSITIONS: &[&str] = &[
    "to", "of", "for", "with", "in", "on", "at", "from", "by", "about", "into", "onto", "over",
    "under", "between", "like", "as",
];

/// Prepositions a question ends on once it moved their object to its front ("What's the
/// weather like?", "Where is it from?"). Not the others: Whisper writes a question cut at
/// a pause as one ("What is the capital of?" for "What is the capital of | France?"), and
/// "of", "in", "to", "for", … are where people pause before a name or a place.
const STRANDED: &[&str] = &["like", "from"];

/// The prepositions that are also a phrasal verb's particle ("Turn the light on.", "Start
/// over."); "in" is left out ("Set an alarm in | ten minutes").
const PARTICLES: &[&str] = &["on", "over"];

/// Words a question may end on ("Do you know what time it is?", "What is this?") but a
/// request with a full stop seldom does: auxiliaries, pronouns that are also
/// determiners, and words that usually lead on.
const QUESTION_ENDS: &[&str] = &[
    "so", "then", "that", "which", "who", "whose", "this", "these", "those", "his", "her", "is",
    "are", "was", "were", "be", "been", "am", "do", "does", "did", "can", "could", "will", "would",
    "should", "shall", "may", "might", "must", "have", "has", "had", "not", "well",
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
    // "7 a.m." is a time, not the auxiliary "am".
    let bare = word.trim_end_matches(['.', '?', '!', ',']).to_lowercase();
    if bare == "a.m" || bare == "p.m" {
        return format!("{bare}.");
    }
    word.chars()
        .map(|c| if c == '’' { '\'' } else { c })
        .filter(|c| c.is_alphanumeric() || *c == '\'')
        .collect::<String>()
        .to_lowercase()
}

/// How a transcript reads at a pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reading {
    /// It trails off or was cut: the utterance goes on.
    Incomplete,
    /// It ends on a word that ends a sentence only sometimes: a question on a stranded
    /// preposition or an auxiliary ("What's the weather like?", "Do you know what time it
    /// is?"), a request on a particle ("Turn the light on."); or words that would read
    /// complete but lack the mark that ends a sentence. The same words also end speech cut
    /// at a pause ("Turn the light on | in the kitchen."), so a short pause does not end
    /// it; a longer one does (turn-model endpointing's late check).
    Likely,
    /// It reads as a whole request.
    Complete,
}

impl Reading {
    /// How `stt_partial` logs it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Reading::Incomplete => "incomplete",
            Reading::Likely => "likely",
            Reading::Complete => "complete",
        }
    }
}

/// True when `text` ends a sentence or question (`.`, `?` or `!`, not an ellipsis), its
/// last word is one a sentence ends on (not "and", "the", "of", "is", …), and a text that
/// opens as a question, or as a follow-up with "and", "but" or "or", ends with a question
/// mark (or `!`, for the follow-up).
pub fn reads_complete(text: &str) -> bool {
    reading_at(text, 1) == Reading::Complete
}

/// How `text` reads at pause `pause` of the utterance (counting from 1): as
/// [`reads_complete`] has it, and [`Reading::Likely`] for the words a sentence ends on
/// only sometimes. The rule for a follow-up's opener holds at the first pause only.
pub(crate) fn reading_at(text: &str, pause: u32) -> Reading {
    let text = text.trim();
    let Some(last) = text.chars().last() else {
        return Reading::Incomplete;
    };
    // Whisper often leaves the full stop off a request whose audio ends right after the
    // speech ("Set a timer for 10 minutes"), never a comma or an ellipsis off speech that
    // goes on: without a mark the words decide, and the best they can say is likely.
    // (Only for English words: a script whose sentences end in other marks is not read.)
    let marked = matches!(last, '.' | '?' | '!');
    if !(marked || last.is_ascii_alphanumeric()) || text.ends_with("..") || text.ends_with('…') {
        return Reading::Incomplete;
    }
    // Dashes and quotes on their own are not words.
    let words: Vec<String> = text
        .split_whitespace()
        .map(plain)
        .filter(|w| !w.is_empty())
        .collect();
    let Some(word) = words.last().map(String::as_str) else {
        return Reading::Incomplete;
    };
    if NEVER_LAST.contains(&word) {
        return Reading::Incomplete;
    }
    if !matches!(last, '?' | '!')
        && pause <= 1
        && words
            .first()
            .is_some_and(|w| FOLLOW_UP_OPENERS.contains(&w.as_str()))
    {
        return Reading::Incomplete;
    }
    // Conjunctions alone ("And so then?") say nothing yet.
    let Some(opener) = words
        .iter()
        .position(|w| !LEADING_CONJUNCTIONS.contains(&w.as_str()))
    else {
        return Reading::Incomplete;
    };
    let asked = last == '?';
    if !asked && QUESTION_OPENERS.contains(&words[opener].as_str()) {
        return Reading::Incomplete;
    }
    // A word right after the question word ends nothing ("What about?", "What is?").
    // A contracted question word holds its verb: "What's that?" as "What is that?".
    let verb_in_opener = words[opener].ends_with("'s");
    let past_opener = words.len() >= opener + if verb_in_opener { 2 } else { 3 };
    let likely_if = |ends_here: bool| {
        if ends_here {
            Reading::Likely
        } else {
            Reading::Incomplete
        }
    };
    if PREPOSITIONS.contains(&word) {
        likely_if(if asked {
            past_opener && STRANDED.contains(&word)
        } else {
            // A particle follows its verb ("Turn it on."), not "On." alone.
            words.len() >= 2 && PARTICLES.contains(&word)
        })
    } else if QUESTION_ENDS.contains(&word) {
        likely_if(asked && past_opener)
    } else if marked {
        Reading::Complete
    } else {
        Reading::Likely
    }
}

#[cfg(test)]
mod tests {
    use super::{Reading, reading_at, reads_complete};

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
            "Turn the fan off.",
            "Set an alarm for 7 a.m.",
            "Wake me at 6 p.m.!",
        ] {
            assert!(reads_complete(t), "{t:?}");
        }
    }

    #[test]
    fn a_follow_up_opener_makes_a_fragment_only_at_the_first_pause() {
        // Whisper's "And what about | Germany?" in one voice, at each pause.
        assert_eq!(reading_at("and watch them out.", 1), Reading::Incomplete);
        assert_eq!(
            reading_at("and watch them out, Germany.", 2),
            Reading::Complete
        );
        // The other rules hold at every pause.
        assert_eq!(reading_at("And what about the.", 2), Reading::Incomplete);
        assert_eq!(reading_at("And what is it.", 2), Reading::Incomplete);
    }

    #[test]
    fn a_question_on_a_stranded_word_and_a_request_on_a_particle_are_likely_complete() {
        for t in [
            "What's the weather like?",
            "Where is it from?",
            "Do you know what time it is?",
            "What is this?",
            "What's that?",
            "Who’s this?",
            "Where's it from?",
            "Why is it not?",
            "Turn the kitchen light on.",
            "Start over!",
            // No mark at the end: Whisper left the full stop off.
            "Set a timer for 10 minutes",
            "Turn the light on",
        ] {
            assert_eq!(reading_at(t, 1), Reading::Likely, "{t:?}");
            assert!(!reads_complete(t), "{t:?}");
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
            "And what I'm out.",
            "And watch 'em out.",
            "But in the.",
            "What is the capital of France.",
            // A preposition right after the question word has lost its object.
            "What about?",
            "And what about?",
            "How about?",
            "What is?",
            "Set a timer for.",
            "Set an alarm in.",
            "Remind me that the meeting is.",
            "What is the capital of the?",
            // Whisper's questions cut at a pause before a name or a place.
            "What is the capital of?",
            "What time is it in?",
            "How far is it to?",
            // Without a mark, the other rules hold as for a full stop.
            "What time is it",
            "and watch them out",
            "Set a timer for",
            "Tell me about the weather in",
            // Not words enough.
            "And so then?",
            "- What is?",
            "On.",
            "你好",
        ] {
            assert_eq!(reading_at(t, 1), Reading::Incomplete, "{t:?}");
        }
    }
}
