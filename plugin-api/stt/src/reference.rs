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

use super::capture::RATE;
use super::played::{CONTINUES, ticks};
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
        // Where the resampled far end goes next (ticks), and where the next frame would
        // start if it continues the same stream.
        let mut next_out = 0i64;
        let mut next_in: Option<i64> = None;
        while !shared.stop.load(Ordering::SeqCst) {
            let frame = match reference.next().await {
                Follow::Item(frame) => frame,
                Follow::Connected => {
                    if !connected_once {
                        tracing::info!(event = "aec_reference_connected", addr = %addr, "Echo canceller gets tts's render reference");
                        connected_once = true;
                    }
                    resampler = None;
                    continue;
                }
                Follow::Lost(_) | Follow::Unavailable(_) => continue,
            };
            let mono = voicehost_audio::to_mono(
                &voicehost_audio::from_s16le(&frame.pcm_s16le),
                frame.channels.max(1) as usize,
            );
            let at = ticks(frame.ts_unix_us);
            // A new stretch of playback (after silence, or an output that dropped what it
            // held) starts a new resampler, timed by its own first frame.
            let continues = next_in.is_some_and(|n| (at - n).abs() <= CONTINUES);
            if !continues || resampler.as_ref().is_none_or(|r| r.rates().0 != frame.sample_rate) {
                resampler = Resampler::new(frame.sample_rate, RATE).ok();
                // The resampler's first output samples are its start-up: the far end's
                // first sample comes `delay` samples in.
                next_out = at - resampler.as_ref().map_or(0, |r| r.delay() as i64);
            }
            let Some(r) = resampler.as_mut() else {
                continue;
            };
            next_in = Some(
                at + mono.len() as i64 * i64::from(RATE) / i64::from(frame.sample_rate.max(1)),
            );
            let out = r.process(&mono);
            shared.push_render(next_out, &out);
            next_out += out.len() as i64;
        }
    });
}
