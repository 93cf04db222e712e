//! Grapheme-to-phoneme with the espeak-ng library: IPA, one language per [`G2p`], with the
//! punctuation that ended each clause put back. The tts plugins that speak phonemes (Kokoro,
//! Piper) share it; each maps the IPA onto its own symbol table.
//!
//! espeak-ng translates one clause per call and drops the punctuation that ended it; the
//! punctuation is put back from the input text, because the voices use it for prosody.
//! espeak-ng keeps global state, so every call in this library copy goes through one lock.
//!
//! Needs the espeak-ng library and its data (Debian `libespeak-ng-dev` to build,
//! `espeak-ng` at run time; `scripts/setup.sh` installs both).

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::Mutex;

#[link(name = "espeak-ng")]
unsafe extern "C" {
    fn espeak_Initialize(
        output: c_int,
        buflength: c_int,
        path: *const c_char,
        options: c_int,
    ) -> c_int;
    fn espeak_SetVoiceByName(name: *const c_char) -> c_int;
    fn espeak_TextToPhonemes(
        textptr: *mut *const c_void,
        textmode: c_int,
        phonememode: c_int,
    ) -> *const c_char;
}

const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
const ESPEAK_INITIALIZE_DONT_EXIT: c_int = 0x8000;
const ESPEAK_CHARS_UTF8: c_int = 1;
const ESPEAK_PHONEMES_IPA: c_int = 0x02;

/// The voice espeak-ng was last set to; `None` until initialised.
static ESPEAK: Mutex<Option<String>> = Mutex::new(None);

/// Punctuation that ends a clause and is kept in the phonemes.
pub const CLAUSE_PUNCTUATION: &[char] = &[',', '.', '!', '?', ';', ':', '—', '…'];

/// What can go wrong with espeak-ng.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "espeak-ng failed to initialise: is espeak-ng-data installed? (apt-get install espeak-ng)"
    )]
    Init,
    #[error("espeak-ng has no voice {0:?}; install espeak-ng-data or pick another language")]
    UnknownLanguage(String),
    #[error("text for espeak-ng holds a NUL character at byte {0}")]
    Nul(usize),
    #[error("espeak-ng is unusable: an earlier call panicked while holding its lock")]
    Poisoned,
}

/// espeak-ng set up for one language.
#[derive(Debug, Clone)]
pub struct G2p {
    language: String,
}

impl G2p {
    /// Initialises espeak-ng (once per process) and checks `language` exists (e.g. `en-us`).
    pub fn new(language: &str) -> Result<G2p, Error> {
        let mut state = ESPEAK.lock().map_err(|_| Error::Poisoned)?;
        if state.is_none() {
            // SAFETY: plain initialisation call; a null path means the default data dir.
            let rate = unsafe {
                espeak_Initialize(
                    AUDIO_OUTPUT_SYNCHRONOUS,
                    0,
                    std::ptr::null(),
                    ESPEAK_INITIALIZE_DONT_EXIT,
                )
            };
            if rate <= 0 {
                return Err(Error::Init);
            }
            *state = Some(String::new());
        }
        set_voice(&mut state, language)?;
        Ok(G2p {
            language: language.to_owned(),
        })
    }

    /// The espeak-ng language this phonemiser speaks.
    pub fn language(&self) -> &str {
        &self.language
    }

    /// espeak-ng's IPA phonemes of `text`: clauses separated by a space, each followed by
    /// the punctuation that ended it in the text. Language-switch marks such as `(fr)` are
    /// dropped.
    pub fn phonemize(&self, text: &str) -> Result<String, Error> {
        let mut state = ESPEAK.lock().map_err(|_| Error::Poisoned)?;
        set_voice(&mut state, &self.language)?;
        let mut out = String::new();
        for (clause, punctuation) in clauses(text) {
            let phonemes = to_phonemes(&clause)?;
            if phonemes.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&phonemes);
            if let Some(p) = punctuation {
                out.push(p);
            }
        }
        Ok(out)
    }
}

/// Splits text at clause punctuation followed by whitespace (or the end): (clause, mark).
fn clauses(text: &str) -> Vec<(String, Option<char>)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let c = if c.is_control() { ' ' } else { c };
        if CLAUSE_PUNCTUATION.contains(&c) && chars.peek().is_none_or(|n| n.is_whitespace()) {
            out.push((std::mem::take(&mut current), Some(c)));
        } else {
            current.push(c);
        }
    }
    if !current.trim().is_empty() {
        out.push((current, None));
    }
    out
}

/// espeak-ng's IPA for one clause (it may still split it; the parts are joined). The
/// caller holds the espeak-ng lock.
fn to_phonemes(clause: &str) -> Result<String, Error> {
    let ctext = CString::new(clause).map_err(|e| Error::Nul(e.nul_position()))?;
    let mut ptr: *const c_void = ctext.as_ptr().cast();
    let mut parts: Vec<String> = Vec::new();
    while !ptr.is_null() {
        // SAFETY: `ptr` points into `ctext`, which is NUL-terminated and outlives the loop;
        // espeak-ng advances it, or sets it to null at the end of the text.
        let part = unsafe {
            let p = espeak_TextToPhonemes(&mut ptr, ESPEAK_CHARS_UTF8, ESPEAK_PHONEMES_IPA);
            if p.is_null() {
                String::new()
            } else {
                CStr::from_ptr(p).to_string_lossy().trim().to_owned()
            }
        };
        let part = without_language_marks(&part);
        if !part.is_empty() {
            parts.push(part);
        }
    }
    Ok(parts.join(" "))
}

/// `ipa` without espeak-ng's language-switch marks (`(fr)`, `(en-us)`): they are not
/// phonemes.
fn without_language_marks(ipa: &str) -> String {
    let mut out = String::with_capacity(ipa.len());
    let mut rest = ipa;
    while let Some(open) = rest.find('(') {
        let Some(close) = rest[open..].find(')') else {
            break;
        };
        out.push_str(&rest[..open]);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out.trim().to_owned()
}

fn set_voice(state: &mut Option<String>, language: &str) -> Result<(), Error> {
    if state.as_deref() == Some(language) {
        return Ok(());
    }
    let unknown = || Error::UnknownLanguage(language.to_owned());
    let name = CString::new(language).map_err(|_| unknown())?;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    if unsafe { espeak_SetVoiceByName(name.as_ptr()) } != 0 {
        return Err(unknown());
    }
    *state = Some(language.to_owned());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_with_punctuation_kept() {
        let g2p = G2p::new("en-us").unwrap();
        let ipa = g2p.phonemize("Hello world, this is a test.").unwrap();
        assert!(ipa.starts_with("həlˈoʊ wˈɜːld,"), "{ipa}");
        assert!(ipa.ends_with('.'), "{ipa}");
        let numbers = g2p.phonemize("Test 1 2 3").unwrap();
        assert!(
            numbers.contains("wˈʌn") && numbers.contains("θɹˈiː"),
            "{numbers}"
        );
        assert_eq!(g2p.phonemize(" . ").unwrap(), "");
        assert!(matches!(
            G2p::new("no-such-language-xx"),
            Err(Error::UnknownLanguage(_))
        ));
    }

    #[test]
    fn clauses_keep_their_marks() {
        let parts = clauses("One, two. Three 3.5 four");
        let marks: Vec<_> = parts.iter().map(|(_, m)| *m).collect();
        assert_eq!(marks, [Some(','), Some('.'), None]);
        assert_eq!(
            parts[2].0, " Three 3.5 four",
            "a decimal point is no clause end"
        );
    }

    #[test]
    fn language_marks_are_dropped() {
        assert_eq!(
            without_language_marks("(fr)bɔ̃ʒˈuʁ(en-us) hˈaɪ"),
            "bɔ̃ʒˈuʁ hˈaɪ"
        );
        assert_eq!(without_language_marks("hˈaɪ"), "hˈaɪ");
        assert_eq!(without_language_marks("a (b"), "a (b");
    }
}
