//! What `ListVoices` says about an engine's voices: [`Voice`], listed by
//! [`Synthesizer::voices`](super::Synthesizer::voices).

use voicehost_proto::tts::v1 as proto;

/// The language of a voice whose engine does not say (the default
/// [`Synthesizer::voices`](super::Synthesizer::voices)).
pub(crate) const DEFAULT_LANGUAGE: &str = "en_US";

/// One voice of an engine, as `ListVoices` lists it.
///
/// Built with [`Voice::new`] (and [`Voice::with_description`]), so that fields can be added
/// without breaking engines.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Voice {
    /// What a request's `voice` takes, e.g. `af_heart`.
    pub name: String,
    /// Languages it speaks, as `language_REGION` (`en_US`, `en_GB`) or `language` alone.
    pub languages: Vec<String>,
    /// One line for people, e.g. "American English, female"; may be empty.
    pub description: String,
}

impl Voice {
    /// The voice `name`, speaking `languages`, without a description.
    pub fn new<L: Into<String>>(
        name: impl Into<String>,
        languages: impl IntoIterator<Item = L>,
    ) -> Voice {
        Voice {
            name: name.into(),
            languages: languages.into_iter().map(Into::into).collect(),
            description: String::new(),
        }
    }

    /// The same voice with `description`.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<String>) -> Voice {
        self.description = description.into();
        self
    }
}

impl From<Voice> for proto::Voice {
    fn from(v: Voice) -> Self {
        proto::Voice {
            name: v.name,
            languages: v.languages,
            description: v.description,
        }
    }
}

/// `voices` as `ListVoices` lists them: each name once, and the default voice among them
/// (added first, speaking [`DEFAULT_LANGUAGE`], where the engine left it out).
pub(crate) fn with_default(mut voices: Vec<Voice>, default: &str) -> Vec<Voice> {
    let mut seen = std::collections::HashSet::new();
    voices.retain(|v| seen.insert(v.name.clone()));
    if !voices.iter().any(|v| v.name == default) {
        voices.insert(0, Voice::new(default, [DEFAULT_LANGUAGE]));
    }
    voices
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_voice_is_always_listed_and_names_are_unique() {
        let listed = vec![
            Voice::new("b", ["en_GB"]),
            Voice::new("a", ["en_US"]).with_description("first"),
            Voice::new("b", ["en_GB"]),
        ];
        let voices = with_default(listed.clone(), "a");
        assert_eq!(voices, listed[..2]);
        let voices = with_default(listed, "x_custom");
        assert_eq!(voices[0], Voice::new("x_custom", ["en_US"]));
        assert_eq!(voices.len(), 3);
        let wire = proto::Voice::from(Voice::new("a", ["en_US"]).with_description("d"));
        assert_eq!(
            (
                wire.name.as_str(),
                wire.languages,
                wire.description.as_str()
            ),
            ("a", vec!["en_US".to_owned()], "d")
        );
    }
}
