//! One Wyoming connection: events read in order and answered, audio streamed on to kwd
//! (wake) or collected for stt (transcribe), text sent to tts and its audio back.
//!
//! A reader loop handles the client's events one at a time; everything sent back goes
//! through one writer task (so wake detections go out while audio keeps coming in). A
//! framing error is answered with an `error` event and ends the connection; a request that
//! cannot be served (bad audio format, unknown voice, a service that is down) is answered
//! with an `error` event and the connection stays open for the next one.

mod asr;
mod speech;
mod wake;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use voicehost_proto::kwd::v1::DetectRequest;

use crate::audio::{Converter, Format, RATE};
use crate::frame::{Event, read_event, write_event};
use crate::server::Shared;
use speech::SynthStream;

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

    async fn unavailable(&self, service: &str, e: &tonic::Status) -> bool {
        self.error("service-unavailable", format!("{service}: {}", e.message()))
            .await
    }
}
