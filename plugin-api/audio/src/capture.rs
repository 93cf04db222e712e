//! Capture from a sound card through cpal (feature `device`). The cpal stream lives on its
//! own thread (streams are not `Send`); samples cross through a shared queue.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample};

use crate::AudioError;
use crate::input::Source;
use crate::resample::{Resampler, to_mono};

/// Opens the capture device `name` (default when `None`) for mono audio at `rate` Hz.
pub(crate) fn open_source(name: Option<&str>, rate: u32) -> Result<Box<dyn Source>, AudioError> {
    Ok(Box::new(DeviceSource::open(name, rate)?))
}

/// Captured samples, and the signal that more came: the reader wakes as a period arrives
/// rather than polling for it.
#[derive(Debug, Default)]
struct Captured {
    queue: Mutex<VecDeque<f32>>,
    arrived: Condvar,
}

/// A capture device through cpal.
struct DeviceSource {
    name: String,
    captured: Arc<Captured>,
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

fn capture<T: SizedSample>(data: &[T], channels: usize, captured: &Captured)
where
    f32: FromSample<T>,
{
    let samples: Vec<f32> = data.iter().map(|s| f32::from_sample(*s)).collect();
    if let Ok(mut q) = captured.queue.lock() {
        q.extend(to_mono(&samples, channels));
        // Keep at most 10 s if nobody reads.
        let excess = q.len().saturating_sub(480_000);
        q.drain(..excess);
    }
    captured.arrived.notify_one();
}

impl DeviceSource {
    fn open(name: Option<&str>, rate: u32) -> Result<DeviceSource, AudioError> {
        let wanted = name.map(str::to_owned);
        let captured = Arc::new(Captured::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (q, s) = (Arc::clone(&captured), Arc::clone(&stop));
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
            captured,
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

    /// Waits for what the device captured since the last read. `_ms` paces the file
    /// sources; a device delivers a period at a time, and its callback wakes the reader.
    fn read(&mut self, out: &mut Vec<f32>, _ms: u32) -> Result<bool, AudioError> {
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        let failed = || AudioError::Device(format!("{}: the capture thread failed", self.name));
        let mut queue = self.captured.queue.lock().map_err(|_| failed())?;
        while queue.is_empty() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(AudioError::Device(format!(
                    "{} delivered no audio for 2 s",
                    self.name
                )));
            }
            queue = self
                .captured
                .arrived
                .wait_timeout(queue, left)
                .map_err(|_| failed())?
                .0;
        }
        let chunk: Vec<f32> = queue.drain(..).collect();
        drop(queue);
        out.extend(self.resampler.process(&chunk));
        Ok(true)
    }

    fn describe(&self) -> String {
        format!("device:{}", self.name)
    }
}
