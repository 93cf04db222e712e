//! The render reference: tts's `RenderReference` stream (what it plays), resampled to
//! 10 ms frames at 16 kHz and queued for the capture thread, where it is the echo
//! canceller's and the echo guard's far end (and the simulated echo path's source).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use voicehost_audio::Resampler;
use voicehost_plugin_runtime::stream::{Follow, Resubscribe, dial};
use voicehost_proto::tts::v1::RenderReferenceRequest;
use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;

use super::capture::{FRAME, RATE};
use super::shared::Shared;

/// Queues tts's render reference for the capture thread (the echo canceller's far end and
/// the echo guard's); reconnects by itself.
pub fn render_reference(addr: String, shared: Arc<Shared>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "Cannot start the render-reference runtime");
            return;
        }
    };
    let open = {
        let addr = addr.clone();
        move || {
            let addr = addr.clone();
            async move {
                let channel = dial(&addr).await?;
                match TtsServiceClient::new(channel)
                    .render_reference(RenderReferenceRequest {})
                    .await
                {
                    Ok(stream) => Ok(stream.into_inner()),
                    Err(status) => Err(status.message().to_owned()),
                }
            }
        }
    };
    runtime.block_on(async move {
        let mut reference =
            Resubscribe::with_backoff(open, Duration::from_millis(200), Duration::from_secs(1));
        let mut connected_once = false;
        let mut resampler: Option<Resampler> = None;
        let mut pending: Vec<f32> = Vec::new();
        while !shared.stop.load(Ordering::SeqCst) {
            let frame = match reference.next().await {
                Follow::Item(frame) => frame,
                Follow::Connected => {
                    if !connected_once {
                        tracing::info!(event = "aec_reference_connected", addr = %addr, "Echo canceller gets tts's render reference");
                        connected_once = true;
                    }
                    resampler = None;
                    pending.clear();
                    continue;
                }
                Follow::Lost(_) | Follow::Unavailable(_) => continue,
            };
            let r = match &mut resampler {
                Some(r) if r.rates().0 == frame.sample_rate => r,
                _ => match Resampler::new(frame.sample_rate, RATE) {
                    Ok(r) => resampler.insert(r),
                    Err(_) => continue,
                },
            };
            let mono = voicehost_audio::to_mono(
                &voicehost_audio::from_s16le(&frame.pcm_s16le),
                frame.channels.max(1) as usize,
            );
            pending.extend(r.process(&mono));
            while pending.len() >= FRAME {
                let render: Vec<f32> = pending.drain(..FRAME).collect();
                shared.push_render(render);
            }
        }
    });
}
