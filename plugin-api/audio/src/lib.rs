//! Audio I/O shared by the tts and stt plugins.
//!
//! - Outputs ([`Sink`]): a sound card through cpal (`device`, `device:NAME`; feature
//!   `device`, default — without it no audio library is linked), a WAV file
//!   that receives exactly what would have been played (`wav:PATH`), or nothing (`null`).
//!   `auto` takes the sound card when one really plays, else a WAV file. File and null
//!   outputs are paced in real time like a device (or `fast`).
//! - Inputs ([`Source`]): a capture device, or a WAV file read in real time (`wav:PATH`,
//!   optionally looped) for demos and tests.
//! - [`Resampler`] (rubato) and channel mapping between what an engine makes and what a
//!   device takes.
//!
//! Every blocking call here is bounded: a device that does not play or plays too fast (the
//! ALSA `null` device of a machine without a sound card) is reported, never spun on.

#[cfg(feature = "device")]
mod capture;
#[cfg(feature = "device")]
mod device;
mod input;
#[cfg(not(feature = "device"))]
mod nodevice;
#[cfg(not(feature = "device"))]
use nodevice as device;
#[cfg(not(feature = "device"))]
use nodevice as capture;
mod output;
mod pacer;
mod pcm;
mod resample;
mod spec;

pub use device::probe_output;
pub use input::{Source, open_input};
pub use output::{DISCARD_FADE, Sink, open_output};
pub use pacer::Pacer;
pub use pcm::{from_s16le, to_i16, to_s16le};
pub use resample::{Resampler, from_mono, to_mono};
pub use spec::{InputSpec, OutputSpec, Pacing, ProbeMode};

/// What went wrong with an audio device or file; messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("{0}")]
    Spec(String),
    #[error("audio device: {0}")]
    Device(String),
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("resampler: {0}")]
    Resample(String),
}

/// The fix to name when a sound card cannot be used.
pub const DEVICE_FIX: &str =
    "no usable sound card: set output = wav:/path/to/out.wav (or null) in this plugin's section";
