//! The warm-up greeting: said once through tts when every phase serves, before the first
//! dialog (`[dialog] warmup_greeting`).

use std::time::{Duration, Instant};

use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;
use voicehost_proto::tts::v1::{SpeakRequest, Wait};

use crate::host::Host;
use crate::service::Service;

/// Says the warm-up greeting once through tts (if tts runs): `warmup_done` in app.log.
pub async fn warmup(host: &Host, greeting: &str) {
    if !host.enabled().contains(&Service::Tts) {
        return;
    }
    let Ok(channel) = host.channel(Service::Tts) else {
        return;
    };
    let started = Instant::now();
    let mut client = TtsServiceClient::new(channel);
    let call = client.speak(SpeakRequest {
        text: greeting.to_owned(),
        dialog_id: String::new(),
        voice: String::new(),
        wait: Wait::Finished as i32,
    });
    match tokio::time::timeout(Duration::from_secs(30), call).await {
        Ok(Ok(_)) => tracing::info!(
            event = "warmup_done",
            text = %greeting,
            ms = started.elapsed().as_millis() as u64,
            "Warm-up greeting spoken"
        ),
        Ok(Err(status)) => tracing::warn!(
            event = "warmup_failed",
            error = %status.message(),
            code = %status.code(),
            "Warm-up greeting failed"
        ),
        Err(_) => tracing::warn!(
            event = "warmup_failed",
            error = "no answer within 30 s",
            "Warm-up greeting failed"
        ),
    }
}
