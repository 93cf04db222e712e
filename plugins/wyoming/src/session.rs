//! One Wyoming connection: events read in order and answered, audio streamed on to kwd
//! (wake) or collected for stt (transcribe), text sent to tts and its audio back.
//!
//! A reader loop handles the client's events one at a time; everything sent back goes
//! through one writer task (so wake detections go out while audio keeps coming in). A
//! framing error is answered with an `error` event and ends the connection; a request that
//! cannot be served (bad audio format, unknown voice, a service that is down) is answered
//! with an `error` event and the connection stays open for the next one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use voicehost_proto::kwd::v1::DetectRequest;
use voicehost_proto::stt::v1::TranscribeRequest;
use voicehost_proto::tts::v1::SynthesizeRequest;

use crate::audio::{self, Converter, Format, RATE};
use crate::frame::{Event, read_event, write_event};
use crate::info::base_name;
use crate::server::Shared;

/// Events queued for the writer; a client that does not read stalls its own session only.
const OUTBOX: usize = 256;

/// How long `audio-stop` waits for kwd to finish the last chunks of a wake stream.
const DETECT_DRAIN: Duration = Duration::from_secs(5);

/// Serves one connection until the client closes it, breaks the framing or idles out.
pub async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let (out, mut outbox) = mpsc::channel::<Event>(OUTBOX);
    let writer = tokio::spawn(async move {
        while let Some(event) = outbox.recv().await {
            if write_event(&mut write, &event).await.is_err() {
                break;
            }
        }
    });
    let mut session = Session {
        shared: Arc::clone(&shared),
        out,
        transcribe: None,
        detect: None,
        audio: Audio::None,
        synth: None,
    };
    let mut reader = BufReader::new(read);
    let idle = Duration::from_millis(shared.settings.idle_timeout_ms);
    let limits = shared.settings.limits;
    loop {
        let event = match tokio::time::timeout(idle, read_event(&mut reader, limits)).await {
            Err(_) => {
                tracing::debug!(%peer, "Wyoming connection idle; closed");
                break;
            }
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                tracing::info!(event = "wyoming_bad_frame", %peer, code = e.code, error = %e.text, "Closing a connection");
                session.send(Event::error(e.code, e.text)).await;
                break;
            }
            Ok(Ok(Some(event))) => event,
        };
        if !session.handle(event).await {
            break;
        }
    }
    // Ends a wake stream, so kwd frees its detector.
    session.audio = Audio::None;
    drop(session);
    let _ = writer.await;
}

/// The audio stream in progress, if any.
enum Audio {
    None,
    /// Collecting 16 kHz mono PCM for stt.
    Transcribing {
        converter: Converter,
        pcm: Vec<u8>,
        language: String,
    },
    /// Streaming 16 kHz mono PCM to kwd.
    Detecting {
        converter: Converter,
        chunks: mpsc::Sender<DetectRequest>,
        detected: Arc<AtomicBool>,
        task: tokio::task::JoinHandle<()>,
    },
}

/// A `synthesize-start` … `synthesize-stop` stream in progress.
struct SynthStream {
    voice: String,
    text: String,
    /// Milliseconds of audio sent so far (the next chunk's timestamp).
    at_ms: u64,
}

struct Session {
    shared: Arc<Shared>,
    out: mpsc::Sender<Event>,
    /// `transcribe` seen, with its language: the next audio is for stt.
    transcribe: Option<String>,
    /// `detect` seen, with the wake models it names: the next audio is for kwd.
    detect: Option<Vec<String>>,
    audio: Audio,
    synth: Option<SynthStream>,
}

impl Session {
    /// Queues `event` for the client; false when the client is gone.
    async fn send(&self, event: Event) -> bool {
        self.out.send(event).await.is_ok()
    }

    async fn error(&self, code: &str, text: impl Into<String>) -> bool {
        let text = text.into();
        tracing::info!(event = "wyoming_error", code, error = %text, "Request refused");
        self.send(Event::error(code, text)).await
    }

    /// Handles one event; false ends the connection.
    async fn handle(&mut self, event: Event) -> bool {
        match event.kind.as_str() {
            "describe" => {
                let info = self.shared.info().await;
                self.send(Event::new("info", info)).await
            }
            "ping" => {
                let text = event.str("text").map(str::to_owned);
                self.send(Event::new("pong", json!({ "text": text }))).await
            }
            "transcribe" => self.on_transcribe(&event).await,
            "detect" => self.on_detect(&event).await,
            "audio-start" => self.on_audio_start(&event).await,
            "audio-chunk" => self.on_audio_chunk(&event).await,
            "audio-stop" => self.on_audio_stop().await,
            "synthesize" => self.on_synthesize(&event).await,
            "synthesize-start" => self.on_synthesize_start(&event).await,
            "synthesize-chunk" => self.on_synthesize_chunk(&event).await,
            "synthesize-stop" => self.on_synthesize_stop().await,
            other => {
                // The protocol's rule: events a program does not know are ignored.
                tracing::debug!(kind = other, "Wyoming event ignored");
                true
            }
        }
    }

    async fn on_transcribe(&mut self, event: &Event) -> bool {
        if self.shared.upstreams.stt.is_none() {
            return self
                .error(
                    "not-available",
                    "speech to text is not served here: enable [stt]",
                )
                .await;
        }
        self.transcribe = Some(event.str("language").unwrap_or_default().to_owned());
        self.detect = None;
        true
    }

    async fn on_detect(&mut self, event: &Event) -> bool {
        if self.shared.upstreams.kwd.is_none() {
            return self
                .error(
                    "not-available",
                    "wake word detection is not served here: enable [kwd]",
                )
                .await;
        }
        let loaded = self.shared.wake_models().await;
        let asked: Vec<String> = match event.data.get("names") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(names)) => names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            Some(other) => {
                return self
                    .error(
                        "bad-request",
                        format!("detect: names must be a list, not {other}"),
                    )
                    .await;
            }
        };
        let mut models = Vec::new();
        for name in &asked {
            match loaded.iter().find(|m| same_model(m, name)) {
                Some(m) => models.push(m.clone()),
                None => {
                    return self
                        .error(
                            "unknown-wake-word",
                            format!(
                                "detect: no wake model {name:?}; loaded: {}",
                                loaded.join(", ")
                            ),
                        )
                        .await;
                }
            }
        }
        self.detect = Some(models);
        self.transcribe = None;
        true
    }

    async fn on_audio_start(&mut self, event: &Event) -> bool {
        self.audio = Audio::None;
        let converter = match Format::of(event).and_then(Converter::new) {
            Ok(c) => c,
            Err(e) => return self.error("unsupported-audio", e).await,
        };
        if let Some(models) = self.detect.take() {
            return self.start_detecting(converter, models).await;
        }
        if self.shared.upstreams.stt.is_none() {
            return self
                .error(
                    "not-available",
                    "audio-start without detect, and speech to text is not served here",
                )
                .await;
        }
        self.audio = Audio::Transcribing {
            converter,
            pcm: Vec::new(),
            language: self.transcribe.take().unwrap_or_default(),
        };
        true
    }

    async fn start_detecting(&mut self, converter: Converter, models: Vec<String>) -> bool {
        let Some(mut kwd) = self.shared.upstreams.kwd() else {
            return self
                .error("not-available", "wake word detection is not served here")
                .await;
        };
        let (chunks, rx) = mpsc::channel::<DetectRequest>(64);
        let _ = chunks
            .send(DetectRequest {
                models,
                pcm_s16le: Vec::new(),
            })
            .await;
        let mut detections = match kwd.detect(ReceiverStream::new(rx)).await {
            Ok(r) => r.into_inner(),
            Err(e) => return self.unavailable("kwd", &e).await,
        };
        let detected = Arc::new(AtomicBool::new(false));
        let (out, flag) = (self.out.clone(), Arc::clone(&detected));
        let task = tokio::spawn(async move {
            loop {
                match detections.message().await {
                    Ok(Some(d)) => {
                        flag.store(true, Ordering::Relaxed);
                        tracing::info!(event = "wyoming_detection", model = %d.model, audio_ms = d.audio_ms, "Wake word detected in a client's audio");
                        let event = Event::new(
                            "detection",
                            json!({ "name": d.model, "timestamp": d.audio_ms, "speaker": Value::Null }),
                        );
                        if out.send(event).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = out
                            .send(Event::error(
                                "service-unavailable",
                                format!("kwd: {}", e.message()),
                            ))
                            .await;
                        return;
                    }
                }
            }
        });
        self.audio = Audio::Detecting {
            converter,
            chunks,
            detected,
            task,
        };
        true
    }

    async fn on_audio_chunk(&mut self, event: &Event) -> bool {
        let max_ms = self.shared.settings.max_audio_ms;
        let (converter, chunk_ok) = match &mut self.audio {
            Audio::None => {
                return self
                    .error(
                        "no-audio-start",
                        "audio-chunk before audio-start; send audio-start first",
                    )
                    .await;
            }
            Audio::Transcribing { converter, .. } | Audio::Detecting { converter, .. } => {
                let stated = Format::of(event);
                let same = stated.map_or(true, |f| f == converter.format());
                (converter, same)
            }
        };
        if !chunk_ok {
            self.audio = Audio::None;
            return self
                .error(
                    "unsupported-audio",
                    "audio-chunk: its format differs from audio-start's",
                )
                .await;
        }
        let pcm = match converter.push(&event.payload) {
            Ok(pcm) => pcm,
            Err(e) => {
                self.audio = Audio::None;
                return self.error("unsupported-audio", e).await;
            }
        };
        match &mut self.audio {
            Audio::None => true,
            Audio::Transcribing { pcm: all, .. } => {
                all.extend_from_slice(&pcm);
                let ms = all.len() as u64 / 2 * 1000 / u64::from(RATE);
                if ms > max_ms {
                    self.audio = Audio::None;
                    return self
                        .error(
                            "audio-too-long",
                            format!(
                                "transcribe: more than {max_ms} ms of audio ([wyoming] max_audio_ms); send shorter utterances"
                            ),
                        )
                        .await;
                }
                true
            }
            Audio::Detecting { chunks, .. } => {
                let sent = chunks
                    .send(DetectRequest {
                        models: Vec::new(),
                        pcm_s16le: pcm,
                    })
                    .await;
                if sent.is_err() {
                    // kwd ended the stream: its task has told the client why.
                    self.audio = Audio::None;
                }
                true
            }
        }
    }

    async fn on_audio_stop(&mut self) -> bool {
        match std::mem::replace(&mut self.audio, Audio::None) {
            Audio::None => true,
            Audio::Transcribing {
                mut converter,
                mut pcm,
                language,
            } => {
                pcm.extend(converter.flush());
                self.transcribe_now(pcm, language).await
            }
            Audio::Detecting {
                chunks,
                detected,
                task,
                ..
            } => {
                drop(chunks);
                if tokio::time::timeout(DETECT_DRAIN, task).await.is_err() {
                    tracing::warn!("kwd did not finish a wake stream in time");
                }
                if detected.load(Ordering::Relaxed) {
                    true
                } else {
                    self.send(Event::new("not-detected", json!({}))).await
                }
            }
        }
    }

    async fn transcribe_now(&mut self, pcm: Vec<u8>, language: String) -> bool {
        let Some(mut stt) = self.shared.upstreams.stt() else {
            return self
                .error("not-available", "speech to text is not served here")
                .await;
        };
        if pcm.is_empty() {
            return self
                .error(
                    "bad-request",
                    "transcribe: no audio between audio-start and audio-stop",
                )
                .await;
        }
        let started = Instant::now();
        let reply = stt
            .transcribe(TranscribeRequest {
                pcm_s16le: pcm,
                sample_rate: RATE,
                language: language.clone(),
            })
            .await;
        let r = match reply {
            Ok(r) => r.into_inner(),
            Err(e) if e.code() == tonic::Code::InvalidArgument => {
                return self
                    .error("bad-request", format!("stt: {}", e.message()))
                    .await;
            }
            Err(e) => return self.unavailable("stt", &e).await,
        };
        tracing::info!(
            event = "wyoming_transcript",
            audio_ms = r.audio_ms,
            recognize_ms = r.recognize_ms,
            ms = started.elapsed().as_millis() as u64,
            chars = r.text.len(),
            "Transcribed a client's audio"
        );
        let language = if r.language.is_empty() {
            language
        } else {
            r.language
        };
        self.send(Event::new(
            "transcript-start",
            json!({ "language": language }),
        ))
        .await
            && self
                .send(Event::new("transcript-chunk", json!({ "text": r.text })))
                .await
            && self
                .send(Event::new(
                    "transcript",
                    json!({ "text": r.text, "language": language }),
                ))
                .await
            && self.send(Event::new("transcript-stop", json!({}))).await
    }

    async fn on_synthesize(&mut self, event: &Event) -> bool {
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

    async fn on_synthesize_start(&mut self, event: &Event) -> bool {
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

    async fn on_synthesize_chunk(&mut self, event: &Event) -> bool {
        let Some(stream) = self.synth.as_mut() else {
            return self
                .error("bad-request", "synthesize-chunk without synthesize-start")
                .await;
        };
        stream.text.push_str(event.str("text").unwrap_or_default());
        let sentences = take_sentences(&mut stream.text);
        self.speak_stream(sentences).await
    }

    async fn on_synthesize_stop(&mut self) -> bool {
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
    async fn speak_stream(&mut self, sentences: Vec<String>) -> bool {
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
    async fn speak(&mut self, text: &str, voice: &str, at_ms: &mut u64) -> bool {
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
    async fn voice(&self, event: &Event) -> Result<String, String> {
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

    async fn unavailable(&self, service: &str, e: &tonic::Status) -> bool {
        self.error("service-unavailable", format!("{service}: {}", e.message()))
            .await
    }
}

/// Whether wake model `loaded` is what a client calls `name`: the same, or the same
/// ignoring case, `_`/`-`/space and a `_vX.Y` version ("alexa" is "alexa_v0.1").
pub fn same_model(loaded: &str, name: &str) -> bool {
    let plain = |s: &str| -> String {
        base_name(s)
            .chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    loaded == name || plain(loaded) == plain(name)
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
    fn wake_model_names_match_as_clients_write_them() {
        assert!(same_model("alexa_v0.1", "alexa_v0.1"));
        assert!(same_model("alexa_v0.1", "alexa"));
        assert!(same_model("hey_jarvis_v0.1", "Hey Jarvis"));
        assert!(!same_model("alexa_v0.1", "hey_jarvis"));
    }

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
