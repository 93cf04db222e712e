//! Wake word on a client's audio: `detect` names the models, the audio after
//! `audio-start` streams to kwd's `Detect`, and its detections go back as `detection`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use voicehost_proto::kwd::v1::DetectRequest;

use super::{Audio, Session};
use crate::audio::Converter;
use crate::frame::Event;
use crate::info::base_name;

impl Session {
    pub(super) async fn on_detect(&mut self, event: &Event) -> bool {
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

    pub(super) async fn start_detecting(
        &mut self,
        converter: Converter,
        models: Vec<String>,
    ) -> bool {
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
}
