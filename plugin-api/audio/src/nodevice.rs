//! Built without the `device` feature: no sound card support is linked (no cpal, no ALSA),
//! and every device spec is refused with what to use instead.

use crate::input::Source;
use crate::output::Sink;
use crate::{AudioError, ProbeMode};

fn refused(what: &str) -> AudioError {
    AudioError::Device(format!(
        "{what}: this plugin was built without sound card support (voicehost-audio's \
         `device` feature); use wav:PATH or null, or rebuild it with the feature"
    ))
}

pub(crate) fn open_sink(
    _name: Option<&str>,
    _rate: u32,
    _probe: ProbeMode,
) -> Result<Box<dyn Sink>, AudioError> {
    Err(refused("output device"))
}

pub(crate) fn open_source(_name: Option<&str>, _rate: u32) -> Result<Box<dyn Source>, AudioError> {
    Err(refused("capture device"))
}

/// Checks that the output device `name` really plays: never, in this build.
pub fn probe_output(_name: Option<&str>) -> Result<String, AudioError> {
    Err(refused("output device"))
}
