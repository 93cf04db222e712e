//! Faults: why a turn did not end with a played reply, and the spoken prompt that answers
//! one.

use std::time::{Duration, Instant};

use voicehost_proto::tts::v1::{SpeakRequest, Wait};

use crate::service::Service;

use super::session::Dialogs;
use super::{Metrics, RECOVERY};

/// Why a turn did not end with a played reply.
#[derive(Debug)]
pub(super) enum Fault {
    Stt(String),
    Llm(String),
    Tts(String),
}

impl Dialogs {
    /// Logs a fault, counts it and speaks its prompt (after tts is back, if needed).
    pub(super) async fn fault(&self, dialog: &str, turn: u32, fault: Fault) {
        let (kind, why, prompt) = match &fault {
            Fault::Stt(w) => {
                Metrics::bump(&self.metrics.stt_errors);
                (Service::Stt, w, &self.cfg.stt_error_prompt)
            }
            Fault::Llm(w) => {
                Metrics::bump(&self.metrics.llm_errors);
                (Service::Llm, w, &self.cfg.llm_error_prompt)
            }
            Fault::Tts(w) => {
                Metrics::bump(&self.metrics.tts_errors);
                (Service::Tts, w, &self.cfg.tts_error_prompt)
            }
        };
        tracing::error!(event = "dialog_error", dialog, turn, service = kind.name(), error = %why, prompt = %prompt, "Dialog fault; speaking the prompt");
        self.stop_listening(dialog).await;
        let started = Instant::now();
        let deadline = started + RECOVERY;
        let mut last = String::new();
        while Instant::now() < deadline {
            let Some(mut tts) = self.tts() else { return };
            let call = tts.speak(SpeakRequest {
                text: prompt.clone(),
                dialog_id: dialog.to_owned(),
                voice: String::new(),
                wait: Wait::Finished as i32,
            });
            match tokio::time::timeout(Duration::from_secs(20), call).await {
                Ok(Ok(_)) => {
                    tracing::info!(
                        event = "prompt_played",
                        dialog,
                        service = kind.name(),
                        prompt = %prompt,
                        recovered_after_ms = started.elapsed().as_millis() as u64,
                        "Prompt played; listening again"
                    );
                    return;
                }
                Ok(Err(s)) => last = s.message().to_owned(),
                Err(_) => last = "no answer within 20 s".to_owned(),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        tracing::error!(event = "prompt_failed", dialog, prompt = %prompt, error = %last, "No output works; the prompt was not spoken");
    }
}

/// `call` failed: its status code and message.
pub(super) fn why(call: &str, s: &tonic::Status) -> String {
    format!("{call} failed ({:?}): {}", s.code(), s.message())
}
