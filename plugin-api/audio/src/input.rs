//! Inputs: a capture device, or a WAV file read in real time.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::resample::{Resampler, to_mono};
use crate::{AudioError, InputSpec, Pacer, Pacing};

/// Where captured audio comes from: mono f32 at [`Source::rate`].
pub trait Source: Send + std::fmt::Debug {
    fn rate(&self) -> u32;
    /// Appends the next piece (about `ms` of audio) to `out`, blocking until it is there;
    /// `Ok(false)` at the end of a file.
    fn read(&mut self, out: &mut Vec<f32>, ms: u32) -> Result<bool, AudioError>;
    fn describe(&self) -> String;
    /// Length of a finite input (a WAV file read once); `None` for devices and loops.
    fn duration(&self) -> Option<Duration> {
        None
    }
}

/// Opens `spec`, delivering mono audio resampled to `rate`.
pub fn open_input(
    spec: &InputSpec,
    rate: u32,
    pacing: Pacing,
) -> Result<Box<dyn Source>, AudioError> {
    match spec {
        InputSpec::Wav { path, looped } => {
            Ok(Box::new(WavSource::open(path, rate, *looped, pacing)?))
        }
        InputSpec::Device(name) => crate::capture::open_source(name.as_deref(), rate),
        InputSpec::Null => Ok(Box::new(Silence::new(rate, "null".to_owned()))),
        InputSpec::Auto => match crate::capture::open_source(None, rate) {
            Ok(device) => Ok(device),
            Err(e) => Ok(Box::new(Silence::new(
                rate,
                format!("silence (auto: no capture device: {e})"),
            ))),
        },
    }
}

/// A microphone that hears nothing, in real time.
#[derive(Debug)]
struct Silence {
    rate: u32,
    pacer: Pacer,
    why: String,
}

impl Silence {
    fn new(rate: u32, why: String) -> Silence {
        Silence {
            rate,
            pacer: Pacer::new(rate, Duration::ZERO),
            why,
        }
    }
}

impl Source for Silence {
    fn rate(&self) -> u32 {
        self.rate
    }

    fn read(&mut self, out: &mut Vec<f32>, ms: u32) -> Result<bool, AudioError> {
        let n = (self.rate as usize * ms as usize / 1000).max(1);
        self.pacer.advance(n);
        out.resize(out.len() + n, 0.0);
        Ok(true)
    }

    fn describe(&self) -> String {
        self.why.clone()
    }
}

/// A WAV file delivered at the speed it would be recorded.
#[derive(Debug)]
struct WavSource {
    path: PathBuf,
    samples: Vec<f32>,
    pos: usize,
    rate: u32,
    looped: bool,
    pacing: Pacing,
    pacer: Pacer,
}

impl WavSource {
    fn open(path: &Path, rate: u32, looped: bool, pacing: Pacing) -> Result<WavSource, AudioError> {
        let fail = |message: String| AudioError::File {
            path: path.display().to_string(),
            message,
        };
        let mut reader = hound::WavReader::open(path)
            .map_err(|e| fail(format!("cannot read the WAV input: {e}")))?;
        let spec = reader.spec();
        let interleaved: Vec<f32> = match spec.sample_format {
            hound::SampleFormat::Float => reader
                .samples::<f32>()
                .collect::<Result<_, _>>()
                .map_err(|e| fail(e.to_string()))?,
            hound::SampleFormat::Int => {
                let scale = 1.0 / (1u64 << (spec.bits_per_sample.max(1) - 1)) as f32;
                reader
                    .samples::<i32>()
                    .map(|s| s.map(|v| v as f32 * scale))
                    .collect::<Result<_, _>>()
                    .map_err(|e| fail(e.to_string()))?
            }
        };
        let mono = to_mono(&interleaved, usize::from(spec.channels));
        let mut resampler = Resampler::new(spec.sample_rate, rate)?;
        let mut samples = resampler.process(&mono);
        samples.extend(resampler.flush());
        Ok(WavSource {
            path: path.to_owned(),
            samples,
            pos: 0,
            rate,
            looped,
            pacing,
            pacer: Pacer::new(rate, Duration::ZERO),
        })
    }
}

impl Source for WavSource {
    fn rate(&self) -> u32 {
        self.rate
    }

    fn read(&mut self, out: &mut Vec<f32>, ms: u32) -> Result<bool, AudioError> {
        if self.pos >= self.samples.len() {
            if !self.looped || self.samples.is_empty() {
                return Ok(false);
            }
            self.pos = 0;
        }
        let n = (self.rate as usize * ms as usize / 1000).max(1);
        let end = (self.pos + n).min(self.samples.len());
        if self.pacing == Pacing::Realtime {
            self.pacer.advance(end - self.pos);
        }
        out.extend_from_slice(&self.samples[self.pos..end]);
        self.pos = end;
        Ok(true)
    }

    fn describe(&self) -> String {
        format!("wav:{}", self.path.display())
    }

    fn duration(&self) -> Option<Duration> {
        (!self.looped).then(|| {
            Duration::from_micros(self.samples.len() as u64 * 1_000_000 / u64::from(self.rate))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_input_is_resampled_and_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 32_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for _ in 0..32_000 {
            w.write_sample(1000i16).unwrap();
            w.write_sample(1000i16).unwrap();
        }
        w.finalize().unwrap();
        let mut src = open_input(
            &InputSpec::Wav {
                path: path.clone(),
                looped: false,
            },
            16_000,
            Pacing::Fast,
        )
        .unwrap();
        let mut all = Vec::new();
        while src.read(&mut all, 20).unwrap() {}
        assert!((all.len() as i64 - 16_000).abs() < 400, "{}", all.len());
        assert!(src.describe().starts_with("wav:"));
        let missing = open_input(
            &InputSpec::Wav {
                path: dir.path().join("nope.wav"),
                looped: false,
            },
            16_000,
            Pacing::Fast,
        )
        .unwrap_err();
        assert!(missing.to_string().contains("nope.wav"));
    }
}
