//! Text to speech for a client: `synthesize`, or `synthesize-start` … `-stop` spoken
//! sentence by sentence as the text streams in, through tts's `Synthesize`.

use std::time::Instant;

use serde_json::{Value, json};
use voicehost_proto::tts::v1::SynthesizeRequest;

use super::Session;
use crate::audio;
use crate::frame::Event;

/// A `synthesize-start` … `synthesize-stop` stream in progress.
pub(super) struct SynthStream {
    pub(super) voice: String,
    pub(super) text: String,
    /// Milliseconds of audio sent so far (the next chunk's timestamp).
    pub(super) at_ms: u64,
}

impl Session {
    pub(super) async fn on_synthesize(&mut self, event: &Event) -> bool {
        if self.synth.is_some() {
            // The whole text again, for servers that do not stream: already spoken.
            return true;
        }
        let Some(text) = event.str("text").map(str::to_owned) else {
            return self
                .error("bad-request", "synthesize: text is missing")
                .await;
        };
        let voice = match self.voice(event).await {
            Ok(v) => v,
            Err(e) => return self.error("unknown-voice", e).await,
        };
        let mut at_ms = 0;
        self.speak(&text, &voice, &mut at_ms).await
    }

    pub(super) async fn on_synthesize_start(&mut self, event: &Event) -> bool {
        if self.shared.upstreams.tts.is_none() {
            return self
                .error(
                    "not-available",
                    "text to speech is not served here: enable [tts]",
                )
                .await;
        }
        let voice = match self.voice(event).await {
            Ok(v) => v,
            Err(e) => return self.error("unknown-voice", e).await,
        };
        self.synth = Some(SynthStream {
            voice,
            text: String::new(),
            at_ms: 0,
        });
        true
    }

    pub(super) async fn on_synthesize_chunk(&mut self, event: &Event) -> bool {
        let Some(stream) = self.synth.as_mut() else {
            return self
                .error("bad-request", "synthesize-chunk without synthesize-start")
                .await;
        };
        stream.text.push_str(event.str("text").unwrap_or_default());
        let sentences = take_sentences(&mut stream.text);
        self.speak_stream(sentences).await
    }

    pub(super) async fn on_synthesize_stop(&mut self) -> bool {
        let Some(stream) = self.synth.as_mut() else {
            return self.send(Event::new("synthesize-stopped", json!({}))).await;
        };
        let rest = std::mem::take(&mut stream.text);
        let rest = rest.trim();
        let sentences = if rest.is_empty() {
            Vec::new()
        } else {
            vec![rest.to_owned()]
        };
        let ok = self.speak_stream(sentences).await;
        self.synth = None;
        ok && self.send(Event::new("synthesize-stopped", json!({}))).await
    }

    /// Speaks each sentence of a synthesize stream as an audio stream of its own.
    pub(super) async fn speak_stream(&mut self, sentences: Vec<String>) -> bool {
        for sentence in sentences {
            let Some(stream) = self.synth.as_mut() else {
                return true;
            };
            let (voice, mut at_ms) = (stream.voice.clone(), stream.at_ms);
            if !self.speak(&sentence, &voice, &mut at_ms).await {
                return false;
            }
            if let Some(stream) = self.synth.as_mut() {
                stream.at_ms = at_ms;
            }
        }
        true
    }

    /// Synthesises `text` and sends it as `audio-start`, chunks, `audio-stop`.
    pub(super) async fn speak(&mut self, text: &str, voice: &str, at_ms: &mut u64) -> bool {
        let Some(mut tts) = self.shared.upstreams.tts() else {
            return self
                .error(
                    "not-available",
                    "text to speech is not served here: enable [tts]",
                )
                .await;
        };
        let started = Instant::now();
        let mut audio = match tts
            .synthesize(SynthesizeRequest {
                text: text.to_owned(),
                voice: voice.to_owned(),
            })
            .await
        {
            Ok(r) => r.into_inner(),
            Err(e) if e.code() == tonic::Code::InvalidArgument => {
                return self
                    .error("bad-request", format!("tts: {}", e.message()))
                    .await;
            }
            Err(e) => return self.unavailable("tts", &e).await,
        };
        let mut rate = None;
        loop {
            let chunk = match audio.message().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(e) => return self.unavailable("tts", &e).await,
            };
            if chunk.pcm_s16le.is_empty() {
                continue;
            }
            if rate.is_none() {
                tracing::info!(
                    event = "wyoming_first_audio",
                    ms = started.elapsed().as_millis() as u64,
                    "Synthesised the first audio for a client"
                );
            }
            let first = rate.is_none();
            let r = *rate.get_or_insert(chunk.sample_rate);
            for event in audio::events(&chunk.pcm_s16le, r, at_ms, first) {
                if !self.send(event).await {
                    return false;
                }
            }
        }
        if rate.is_none() {
            // Nothing to say (only punctuation): an empty audio stream all the same.
            let r = self.shared.tts_rate().await;
            for event in audio::events(&[], r, at_ms, true) {
                if !self.send(event).await {
                    return false;
                }
            }
        }
        self.send(Event::new("audio-stop", json!({ "timestamp": *at_ms })))
            .await
    }

    /// The voice a synthesize event asks for: by name (it must exist), by language (the
    /// first voice that speaks it, else the configured one), or the configured one.
    pub(super) async fn voice(&self, event: &Event) -> Result<String, String> {
        let Some(asked) = event.data.get("voice").and_then(Value::as_object) else {
            return Ok(String::new());
        };
        let voices = self.shared.voices().await;
        if let Some(name) = asked
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            if voices.is_empty() || voices.iter().any(|(v, _)| v == name) {
                return Ok(name.to_owned());
            }
            let names: Vec<&str> = voices.iter().map(|(v, _)| v.as_str()).collect();
            return Err(format!("no voice {name:?}; voices: {}", names.join(", ")));
        }
        if let Some(language) = asked.get("language").and_then(Value::as_str) {
            let wanted = language.replace('-', "_").to_lowercase();
            let found = voices.iter().find(|(_, langs)| {
                langs.iter().any(|l| {
                    let l = l.replace('-', "_").to_lowercase();
                    l == wanted || l.split('_').next() == Some(wanted.as_str())
                })
            });
            return Ok(found.map(|(v, _)| v.clone()).unwrap_or_default());
        }
        Ok(String::new())
    }
}

/// The whole sentences at the start of `text` (each ends in `.`, `!`, `?` or a newline
/// followed by white space); the rest stays in `text`.
pub fn take_sentences(text: &mut String) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let mut chars = text.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            let next_is_space = chars.peek().is_some_and(|(_, n)| n.is_whitespace());
            if (matches!(c, '.' | '!' | '?') && next_is_space) || c == '\n' {
                end = Some(i + c.len_utf8());
                break;
            }
        }
        let Some(end) = end else {
            return out;
        };
        let sentence: String = text.drain(..end).collect();
        let sentence = sentence.trim();
        if !sentence.is_empty() {
            out.push(sentence.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_text_is_spoken_sentence_by_sentence() {
        let mut text = "Hello there. How are".to_owned();
        assert_eq!(take_sentences(&mut text), ["Hello there."]);
        assert_eq!(text, " How are");
        text.push_str(" you? Pi is 3.14 ok");
        assert_eq!(take_sentences(&mut text), ["How are you?"]);
        assert_eq!(text, " Pi is 3.14 ok");
        text.push_str("!\nNext");
        assert_eq!(take_sentences(&mut text), ["Pi is 3.14 ok!"]);
        assert_eq!(text, "Next");
    }
}
