//! WebRTC AEC3 (`EchoCanceller::Full`, delay estimated by AEC3 itself) on 10 ms frames of
//! 16 kHz mono audio — with the SDK's `aec` feature (default). Without it the type exists
//! but cannot be made, and `aec_enabled` defaults to false.

#[cfg(feature = "aec")]
use webrtc_audio_processing::Processor;
#[cfg(feature = "aec")]
use webrtc_audio_processing_config::{Config, EchoCanceller as Variant};

#[cfg(feature = "aec")]
use super::capture::{FRAME, RATE};

/// Whether this build has echo cancellation (the `aec` feature).
pub const AVAILABLE: bool = cfg!(feature = "aec");

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
#[cfg(feature = "aec")]
#[derive(Debug)]
pub struct EchoCanceller {
    ap: Processor,
}

#[cfg(feature = "aec")]
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

/// Built without the `aec` feature: no value of this type exists.
#[cfg(not(feature = "aec"))]
#[derive(Debug)]
pub enum EchoCanceller {}

#[cfg(not(feature = "aec"))]
impl EchoCanceller {
    pub fn new() -> Result<EchoCanceller, String> {
        Err(NOT_BUILT.to_owned())
    }

    pub fn render(&self, _frame: &[f32]) {
        match *self {}
    }

    pub fn capture(&self, _frame: &mut Vec<f32>) {
        match *self {}
    }

    pub fn stats(&self) -> EchoStats {
        match *self {}
    }
}

/// Why `aec_enabled = true` cannot work in a build without the `aec` feature.
pub const NOT_BUILT: &str = "this stt plugin was built without echo cancellation (the stt SDK's \
    `aec` feature is off): set aec_enabled = false, or rebuild it with the feature";
