//! Speech to text of a client's audio: `transcribe`, then the audio collected at 16 kHz
//! mono until `audio-stop`, then stt's `Transcribe` and the transcript events.

use std::time::Instant;

use serde_json::json;
use voicehost_proto::stt::v1::TranscribeRequest;

use super::Session;
use crate::audio::RATE;
use crate::frame::Event;

impl Session {
    pub(super) async fn on_transcribe(&mut self, event: &Event) -> bool {
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

    pub(super) async fn transcribe_now(&mut self, pcm: Vec<u8>, language: String) -> bool {
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
}
