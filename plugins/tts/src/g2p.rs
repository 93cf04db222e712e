//! Grapheme-to-phoneme with the espeak-ng library (`en-us`, IPA), as Kokoro expects.
//!
//! espeak-ng translates one clause per call and drops the punctuation that ended it; the
//! punctuation is put back from the input text, because Kokoro uses it for prosody.
//! espeak-ng keeps global state, so every call goes through one lock.

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

/// Punctuation Kokoro's vocabulary knows and that ends a clause.
const CLAUSE_PUNCTUATION: &[char] = &[',', '.', '!', '?', ';', ':', '—', '…'];

/// espeak-ng set up for one language.
#[derive(Debug, Clone)]
pub struct G2p {
    language: String,
}

impl G2p {
    /// Initialises espeak-ng (once per process) and checks `language` exists.
    pub fn new(language: &str) -> Result<G2p, String> {
        let mut state = ESPEAK
            .lock()
            .map_err(|_| "espeak-ng lock poisoned".to_owned())?;
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
                return Err(
                    "espeak-ng failed to initialise: is espeak-ng-data installed? \
                            (apt-get install espeak-ng)"
                        .to_owned(),
                );
            }
            *state = Some(String::new());
        }
        set_voice(&mut state, language)?;
        Ok(G2p {
            language: language.to_owned(),
        })
    }

    /// IPA phonemes of `text`, with clause punctuation kept and Kokoro's substitutions.
    pub fn phonemize(&self, text: &str) -> Result<String, String> {
        let mut state = ESPEAK
            .lock()
            .map_err(|_| "espeak-ng lock poisoned".to_owned())?;
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
        Ok(kokoro_substitutions(&out))
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
fn to_phonemes(clause: &str) -> Result<String, String> {
    let ctext = CString::new(clause).map_err(|e| e.to_string())?;
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
        if !part.is_empty() {
            parts.push(part);
        }
    }
    Ok(parts.join(" "))
}

fn set_voice(state: &mut Option<String>, language: &str) -> Result<(), String> {
    if state.as_deref() == Some(language) {
        return Ok(());
    }
    let name = CString::new(language).map_err(|e| e.to_string())?;
    // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
    if unsafe { espeak_SetVoiceByName(name.as_ptr()) } != 0 {
        return Err(format!(
            "espeak-ng has no voice {language:?}; install espeak-ng-data or pick another language"
        ));
    }
    *state = Some(language.to_owned());
    Ok(())
}

/// espeak-ng's IPA → the symbols Kokoro was trained on.
fn kokoro_substitutions(ipa: &str) -> String {
    ipa.chars()
        .map(|c| match c {
            'r' => 'ɹ',
            'ʲ' => 'j',
            'x' => 'k',
            'ɬ' => 'l',
            other => other,
        })
        .collect()
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
        assert!(!ipa.contains('r'), "r becomes ɹ: {ipa}");
        let numbers = g2p.phonemize("Test 1 2 3").unwrap();
        assert!(
            numbers.contains("wˈʌn") && numbers.contains("θɹˈiː"),
            "{numbers}"
        );
        assert!(G2p::new("no-such-language-xx").is_err());
    }
}
