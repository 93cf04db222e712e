//! Kokoro's voices for `ListVoices`: the `.bin` files of `voices_dir` that speak English.

use voicehost_tts_sdk::{BoxError, Voice};

use crate::config::{Settings, is_voice_name};

/// The English voices in `voices_dir`, by name. The phonemiser is espeak-ng's US English,
/// so the other languages' voices (`ef_dora`, `jf_alpha`, …) are left out: they would read
/// English with a foreign accent.
pub fn english_voices(s: &Settings) -> Result<Vec<Voice>, BoxError> {
    let dir = &s.voices_dir;
    let entries = std::fs::read_dir(dir).map_err(|e| {
        format!(
            "cannot list the voices in {} ([tts] voices_dir): {e}; fetch them with \
             `voicehost models fetch --only kokoro-voices`",
            dir.display()
        )
    })?;
    let mut voices = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list the voices in {}: {e}", dir.display()))?
            .path();
        if path.extension().is_none_or(|e| e != "bin") {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Some(voice) = english_voice(name) {
            voices.push(voice);
        }
    }
    voices.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(voices)
}

/// The voice `name` with its language and a description, from Kokoro's naming (`af_heart`:
/// a = American English, f = female); `None` unless it is an English voice.
pub fn english_voice(name: &str) -> Option<Voice> {
    if !is_voice_name(name) {
        return None;
    }
    let mut code = name.chars();
    let (language, accent) = match code.next() {
        Some('a') => ("en_US", "American English"),
        Some('b') => ("en_GB", "British English"),
        _ => return None,
    };
    let gender = match code.next() {
        Some('f') => ", female",
        Some('m') => ", male",
        _ => "",
    };
    Some(Voice::new(name, [language]).with_description(format!("Kokoro v1.0, {accent}{gender}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_voices_get_their_language_from_the_name() {
        let heart = english_voice("af_heart").unwrap();
        assert_eq!(heart.languages, ["en_US"]);
        assert_eq!(heart.description, "Kokoro v1.0, American English, female");
        let george = english_voice("bm_george").unwrap();
        assert_eq!(george.languages, ["en_GB"]);
        assert_eq!(george.description, "Kokoro v1.0, British English, male");
        for other in ["jf_alpha", "ef_dora", "zm_yunxi", "", "a-b"] {
            assert_eq!(english_voice(other), None, "{other}");
        }
    }

    #[test]
    fn only_the_english_bin_files_of_voices_dir_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        for file in [
            "bf_emma.bin",
            "af_heart.bin",
            "jf_alpha.bin",
            "af_notes.txt",
        ] {
            std::fs::write(dir.path().join(file), b"").unwrap();
        }
        let settings = Settings {
            model: "kokoro.onnx".into(),
            vocab: "vocab.json".into(),
            voices_dir: dir.path().to_owned(),
            voice: "af_heart".to_owned(),
            onnxruntime: "libonnxruntime.so".into(),
            speed: 1.0,
            device: crate::config::Device::Cpu,
            threads: 1,
        };
        let names: Vec<String> = english_voices(&settings)
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, ["af_heart", "bf_emma"]);
        let missing = Settings {
            voices_dir: dir.path().join("nope"),
            ..settings
        };
        let err = english_voices(&missing).unwrap_err().to_string();
        assert!(err.contains("nope") && err.contains("voices_dir"), "{err}");
    }
}
