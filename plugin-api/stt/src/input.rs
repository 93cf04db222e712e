//! The capture thread's input: the configured source, then any input `SetInput` opened
//! (from the next read on), and silence in real time once a file has ended.

use voicehost_audio::{InputSpec, Pacing, Source};

use super::capture::RATE;
use super::shared::Shared;

/// What the capture thread reads.
#[derive(Debug)]
pub struct Input {
    source: Box<dyn Source>,
}

impl Input {
    pub fn new(source: Box<dyn Source>) -> Input {
        Input { source }
    }

    /// Takes over an input opened by `SetInput`, if there is one; `at_unix_us`: capture
    /// time of the new input's first sample.
    pub fn switch(&mut self, shared: &Shared, at_unix_us: i64) {
        if let Some(next) = shared.next_input.lock().ok().and_then(|mut n| n.take()) {
            tracing::info!(
                event = "input_changed",
                from = %self.source.describe(),
                to = %next.describe(),
                at_unix_us,
                "Capture switched input"
            );
            self.source = next;
        }
    }

    /// About 10 ms of input; `None` when the input ended (it goes on as silence, paced by
    /// `pacing`). `Err`: why stt no longer serves.
    pub fn read(&mut self, pacing: Pacing) -> Result<Option<Vec<f32>>, String> {
        let mut read = Vec::new();
        match self.source.read(&mut read, 10) {
            Ok(true) => Ok(Some(read)),
            Ok(false) => {
                tracing::info!(event = "input_ended", input = %self.source.describe(), "Input ended; listening to silence");
                // The file ended: carry on as a silent microphone, in real time.
                self.source = voicehost_audio::open_input(&InputSpec::Null, RATE, pacing)
                    .map_err(|e| format!("capture failed: {e}"))?;
                Ok(None)
            }
            Err(e) => {
                tracing::error!(event = "capture_failed", error = %e, "Capture failed");
                Err(format!("capture failed: {e}"))
            }
        }
    }
}
