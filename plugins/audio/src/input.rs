//! Inputs: a capture device, or a WAV file read in real time.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample};

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
        InputSpec::Device(name) => Ok(Box::new(DeviceSource::open(name.as_deref(), rate)?)),
        InputSpec::Null => Ok(Box::new(Silence::new(rate, "null".to_owned()))),
        InputSpec::Auto => match DeviceSource::open(None, rate) {
            Ok(device) => Ok(Box::new(device)),
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

/// A capture device through cpal.
struct DeviceSource {
    name: String,
    queue: Arc<Mutex<VecDeque<f32>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    resampler: Resampler,
    rate: u32,
}

impl std::fmt::Debug for DeviceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Drop for DeviceSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const INPUT_FIX: &str =
    "no usable capture device: set input = wav:/path/to/speech.wav in this plugin's section";

fn capture<T: SizedSample>(data: &[T], channels: usize, queue: &Mutex<VecDeque<f32>>)
where
    f32: FromSample<T>,
{
    let samples: Vec<f32> = data.iter().map(|s| f32::from_sample(*s)).collect();
    if let Ok(mut q) = queue.lock() {
        q.extend(to_mono(&samples, channels));
        // Keep at most 10 s if nobody reads.
        let excess = q.len().saturating_sub(480_000);
        q.drain(..excess);
    }
}

impl DeviceSource {
    fn open(name: Option<&str>, rate: u32) -> Result<DeviceSource, AudioError> {
        let wanted = name.map(str::to_owned);
        let queue = Arc::new(Mutex::new(VecDeque::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (q, s) = (Arc::clone(&queue), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("vh-audio-in".to_owned())
            .spawn(move || {
                let opened = (|| {
                    let host = cpal::default_host();
                    let device = match &wanted {
                        None => host.default_input_device(),
                        Some(n) => host.input_devices().ok().and_then(|mut ds| {
                            ds.find(|d| d.id().is_ok_and(|id| id.to_string() == *n))
                        }),
                    }
                    .ok_or_else(|| AudioError::Device(format!("no capture device; {INPUT_FIX}")))?;
                    let label = device
                        .description()
                        .map(|d| d.to_string())
                        .unwrap_or_default();
                    let supported = device
                        .default_input_config()
                        .map_err(|e| AudioError::Device(format!("{label}: {e}; {INPUT_FIX}")))?;
                    let config: cpal::StreamConfig = supported.into();
                    let channels = usize::from(config.channels);
                    let err = |e: cpal::Error| tracing::warn!(error = %e, "Capture stream error");
                    let stream = match supported.sample_format() {
                        SampleFormat::F32 => device.build_input_stream(
                            config,
                            move |d: &[f32], _: &cpal::InputCallbackInfo| capture(d, channels, &q),
                            err,
                            None,
                        ),
                        SampleFormat::I16 => device.build_input_stream(
                            config,
                            move |d: &[i16], _: &cpal::InputCallbackInfo| capture(d, channels, &q),
                            err,
                            None,
                        ),
                        other => {
                            return Err(AudioError::Device(format!(
                                "{label}: sample format {other} not supported; {INPUT_FIX}"
                            )));
                        }
                    }
                    .map_err(|e| AudioError::Device(format!("{label}: {e}; {INPUT_FIX}")))?;
                    stream
                        .play()
                        .map_err(|e| AudioError::Device(format!("{label}: {e}; {INPUT_FIX}")))?;
                    Ok((stream, label, config.sample_rate))
                })();
                match opened {
                    Ok((stream, label, device_rate)) => {
                        let _ = tx.send(Ok((label, device_rate)));
                        while !s.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        drop(stream);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| AudioError::Device(format!("cannot start the capture thread: {e}")))?;
        let (name, device_rate) = rx.recv_timeout(Duration::from_secs(5)).map_err(|_| {
            AudioError::Device(format!(
                "the capture device did not open within 5 s; {INPUT_FIX}"
            ))
        })??;
        Ok(DeviceSource {
            name,
            queue,
            stop,
            thread: Some(thread),
            resampler: Resampler::new(device_rate, rate)?,
            rate,
        })
    }
}

impl Source for DeviceSource {
    fn rate(&self) -> u32 {
        self.rate
    }

    fn read(&mut self, out: &mut Vec<f32>, ms: u32) -> Result<bool, AudioError> {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        loop {
            let chunk: Vec<f32> = match self.queue.lock() {
                Ok(mut q) if !q.is_empty() => q.drain(..).collect(),
                _ => Vec::new(),
            };
            if !chunk.is_empty() {
                out.extend(self.resampler.process(&chunk));
                return Ok(true);
            }
            if std::time::Instant::now() > deadline {
                return Err(AudioError::Device(format!(
                    "{} delivered no audio for 2 s",
                    self.name
                )));
            }
            std::thread::sleep(Duration::from_millis(u64::from(ms.clamp(2, 20))));
        }
    }

    fn describe(&self) -> String {
        format!("device:{}", self.name)
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
