//! WebRTC AEC3 (`EchoCanceller::Full`, delay estimated by AEC3 itself) on 10 ms frames of
//! 16 kHz mono audio.

use webrtc_audio_processing::Processor;
use webrtc_audio_processing_config::{Config, EchoCanceller as Variant};

use super::pipeline::{FRAME, RATE};

/// Echo statistics as AEC3 reports them.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoStats {
    /// Echo return loss enhancement, dB.
    pub erle_db: Option<f64>,
    /// Estimated far-end → near-end delay, ms.
    pub delay_ms: Option<u32>,
}

/// The echo canceller: feed it what was played (`render`) and what was captured
/// (`capture`); both are 10 ms frames ([`FRAME`] samples at 16 kHz).
#[derive(Debug)]
pub struct EchoCanceller {
    ap: Processor,
}

impl EchoCanceller {
    pub fn new() -> Result<EchoCanceller, String> {
        let ap = Processor::new(RATE).map_err(|e| format!("AEC3 cannot start: {e:?}"))?;
        ap.set_config(Config {
            echo_canceller: Some(Variant::Full {
                stream_delay_ms: None,
            }),
            ..Default::default()
        });
        Ok(EchoCanceller { ap })
    }

    /// A frame that was sent to the loudspeaker (the far end).
    pub fn render(&self, frame: &[f32]) {
        debug_assert_eq!(frame.len(), FRAME);
        let mut channels = vec![frame.to_vec()];
        if let Err(e) = self.ap.analyze_render_frame(&mut channels) {
            tracing::warn!(error = ?e, "AEC3 rejected a render frame");
        }
    }

    /// Removes the echo from a captured frame, in place.
    pub fn capture(&self, frame: &mut Vec<f32>) {
        debug_assert_eq!(frame.len(), FRAME);
        let mut channels = vec![std::mem::take(frame)];
        if let Err(e) = self.ap.process_capture_frame(&mut channels) {
            tracing::warn!(error = ?e, "AEC3 rejected a capture frame");
        }
        *frame = channels.remove(0);
    }

    pub fn stats(&self) -> EchoStats {
        let s = self.ap.get_stats();
        EchoStats {
            erle_db: s.echo_return_loss_enhancement,
            delay_ms: s.delay_ms,
        }
    }
}
