//! The `info` event: what this server offers, built from what the bridged services report
//! (stt's model and languages, tts's voices, kwd's wake models) with attributions and
//! licences. Home Assistant creates an entity per program it finds `installed`.

use serde_json::{Value, json};

/// Speech to text as stt reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Asr {
    pub engine: String,
    pub engine_version: String,
    pub model: String,
    pub languages: Vec<String>,
}

/// A voice as tts reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Voice {
    pub name: String,
    pub languages: Vec<String>,
    pub description: String,
}

/// Text to speech as tts reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Tts {
    pub engine: String,
    pub engine_version: String,
    pub voices: Vec<Voice>,
    pub default_voice: String,
    pub sample_rate: u32,
}

/// The wake models kwd has loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct Wake {
    pub models: Vec<String>,
    /// kwd's engine: `openwakeword` or `microwakeword`.
    pub engine: String,
}

/// Everything `info` lists; a part is `None` when its service is not bridged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Programs {
    pub asr: Option<Asr>,
    pub tts: Option<Tts>,
    pub wake: Option<Wake>,
}

/// Who made an engine's models, where they come from and their licence.
struct Credit {
    program: &'static str,
    description: &'static str,
    author: &'static str,
    url: &'static str,
    licence: &'static str,
}

/// The credit of an engine, by the plugin name its service reports.
fn credit(engine: &str) -> Credit {
    let engine = engine.to_lowercase();
    if engine.contains("piper") {
        Credit {
            program: "voicehost-piper",
            description: "Piper (VITS) text to speech in voicehost",
            author: "Michael Hansen (rhasspy)",
            url: "https://github.com/rhasspy/piper",
            licence: "voice en_US-joe-medium: package MIT, model card CC0-1.0, fine-tuned from \
                      lessac (research-only data); see voicehost's models/README.md",
        }
    } else if engine.contains("tts") || engine.contains("kokoro") {
        Credit {
            program: "voicehost-kokoro",
            description: "Kokoro-82M text to speech in voicehost",
            author: "hexgrad",
            url: "https://huggingface.co/hexgrad/Kokoro-82M",
            licence: "Apache-2.0",
        }
    } else if engine.contains("stt") || engine.contains("whisper") {
        Credit {
            program: "voicehost-whisper",
            description: "Whisper (whisper.cpp) speech to text with echo cancellation in voicehost",
            author: "OpenAI",
            url: "https://github.com/openai/whisper",
            licence: "MIT",
        }
    } else {
        Credit {
            program: "voicehost",
            description: "a voicehost plugin",
            author: "voicehost",
            url: "https://github.com/voicehost/voicehost",
            licence: "see the plugin's documentation",
        }
    }
}

/// The credit of kwd's engine, by the name `GetState` reports.
fn wake_credit(engine: &str) -> Credit {
    if engine == "microwakeword" {
        Credit {
            program: "voicehost-microwakeword",
            description: "microWakeWord wake word detection in voicehost",
            author: "Kevin Ahrendt",
            url: "https://github.com/kahrendt/microWakeWord",
            licence: "Apache-2.0 (microWakeWord models)",
        }
    } else {
        Credit {
            program: "voicehost-openwakeword",
            description: "openWakeWord wake word detection in voicehost",
            author: "David Scripka",
            url: "https://github.com/dscripka/openWakeWord",
            licence: "CC BY-NC-SA 4.0 (openWakeWord 0.4.0 models): not for commercial use",
        }
    }
}

fn attribution(c: &Credit) -> Value {
    json!({ "name": c.author, "url": c.url })
}

/// A wake model's name without its version ("alexa_v0.1" → "alexa"): a trailing `_v`
/// followed by digits and dots.
pub fn base_name(model: &str) -> &str {
    match model.rfind("_v") {
        Some(i)
            if !model[i + 2..].is_empty()
                && model[i + 2..]
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '.') =>
        {
            &model[..i]
        }
        _ => model,
    }
}

/// The phrase a wake model listens for: its name without the version ("alexa_v0.1" →
/// "alexa", "hey_jarvis_v0.1" → "hey jarvis").
pub fn phrase(model: &str) -> String {
    base_name(model).replace('_', " ")
}

/// The `info` event's data.
pub fn info(programs: &Programs, version: &str) -> Value {
    let mut asr = Vec::new();
    if let Some(a) = &programs.asr {
        let c = credit(&a.engine);
        asr.push(json!({
            "name": c.program,
            "description": c.description,
            "attribution": attribution(&c),
            "installed": true,
            "version": version,
            "supports_transcript_streaming": true,
            "models": [{
                "name": a.model,
                "description": format!("{} ({}; {} {})", a.model, c.licence, a.engine, a.engine_version),
                "attribution": attribution(&c),
                "installed": true,
                "version": a.engine_version,
                "languages": a.languages,
            }],
        }));
    }
    let mut tts = Vec::new();
    if let Some(t) = &programs.tts {
        let c = credit(&t.engine);
        let voices: Vec<Value> = t
            .voices
            .iter()
            .map(|v| {
                json!({
                    "name": v.name,
                    "description": if v.description.is_empty() { v.name.clone() } else { v.description.clone() },
                    "attribution": attribution(&c),
                    "installed": true,
                    "version": t.engine_version,
                    "languages": v.languages,
                    "speakers": Value::Null,
                })
            })
            .collect();
        tts.push(json!({
            "name": c.program,
            "description": format!("{} ({})", c.description, c.licence),
            "attribution": attribution(&c),
            "installed": true,
            "version": version,
            "supports_synthesize_streaming": true,
            "voices": voices,
        }));
    }
    let mut wake = Vec::new();
    if let Some(w) = &programs.wake {
        let credit = wake_credit(&w.engine);
        let models: Vec<Value> = w
            .models
            .iter()
            .map(|m| {
                json!({
                    "name": m,
                    "description": format!("{} ({})", phrase(m), credit.licence),
                    "phrase": phrase(m),
                    "attribution": attribution(&credit),
                    "installed": true,
                    "version": version,
                    "languages": ["en"],
                })
            })
            .collect();
        wake.push(json!({
            "name": credit.program,
            "description": credit.description,
            "attribution": attribution(&credit),
            "installed": true,
            "version": version,
            "models": models,
        }));
    }
    json!({
        "asr": asr,
        "tts": tts,
        "wake": wake,
        "handle": [],
        "intent": [],
        "mic": [],
        "snd": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_drop_the_version() {
        assert_eq!(phrase("alexa_v0.1"), "alexa");
        assert_eq!(phrase("hey_jarvis_v0.1"), "hey jarvis");
        assert_eq!(phrase("my_vroom"), "my vroom");
    }

    #[test]
    fn every_part_is_listed_with_its_credit() {
        let programs = Programs {
            asr: Some(Asr {
                engine: "voicehost-plugin-stt".into(),
                engine_version: "0.1.0".into(),
                model: "ggml-tiny.en-q8_0".into(),
                languages: vec!["en".into()],
            }),
            tts: Some(Tts {
                engine: "voicehost-plugin-piper".into(),
                engine_version: "0.1.0".into(),
                voices: vec![Voice {
                    name: "en_US-joe-medium".into(),
                    languages: vec!["en_US".into()],
                    description: String::new(),
                }],
                default_voice: "en_US-joe-medium".into(),
                sample_rate: 22_050,
            }),
            wake: Some(Wake {
                models: vec!["alexa_v0.1".into()],
                engine: "openwakeword".into(),
            }),
        };
        let info = info(&programs, "0.1.0");
        assert_eq!(info["asr"][0]["name"], "voicehost-whisper");
        assert_eq!(info["asr"][0]["models"][0]["languages"][0], "en");
        assert!(
            info["asr"][0]["models"][0]["description"]
                .as_str()
                .unwrap()
                .contains("MIT")
        );
        assert_eq!(info["tts"][0]["name"], "voicehost-piper");
        assert_eq!(info["tts"][0]["voices"][0]["name"], "en_US-joe-medium");
        assert_eq!(
            info["tts"][0]["voices"][0]["description"],
            "en_US-joe-medium"
        );
        assert_eq!(info["wake"][0]["models"][0]["phrase"], "alexa");
        assert!(
            info["wake"][0]["models"][0]["description"]
                .as_str()
                .unwrap()
                .contains("CC BY-NC-SA")
        );
        for part in ["asr", "tts", "wake"] {
            assert_eq!(info[part][0]["installed"], true);
            assert!(info[part][0]["attribution"]["url"].is_string());
        }
        let none = super::info(&Programs::default(), "0.1.0");
        assert_eq!(none["asr"], json!([]));
    }

    #[test]
    fn the_wake_credit_is_the_engine_kwd_runs() {
        let programs = Programs {
            wake: Some(Wake {
                models: vec!["alexa".into()],
                engine: "microwakeword".into(),
            }),
            ..Programs::default()
        };
        let info = info(&programs, "0.1.0");
        assert_eq!(info["wake"][0]["name"], "voicehost-microwakeword");
        assert_eq!(info["wake"][0]["models"][0]["phrase"], "alexa");
        let description = info["wake"][0]["models"][0]["description"]
            .as_str()
            .unwrap();
        assert!(description.contains("Apache-2.0"), "{description}");
    }
}
