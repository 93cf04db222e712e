//! Sound cards through cpal. A cpal stream lives on its own thread (streams are not `Send`);
//! samples cross through a shared queue. The probe plays silence briefly and checks the
//! card consumes it at its real rate: the ALSA `null` device of a machine without a sound
//! card consumes instantly, which would otherwise make playback spin a core.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};

use crate::output::{DISCARD_FADE, LEAD, Sink};
use crate::resample::{Resampler, from_mono};
use crate::{AudioError, DEVICE_FIX, Pacer, ProbeMode};

/// Samples shared between the writer and the cpal callback.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub queue: Mutex<VecDeque<f32>>,
    /// Interleaved samples the device has taken so far.
    pub consumed: AtomicU64,
    /// When the queue's first sample will be played: the last callback's playback time (the
    /// stream's own estimate, its buffering included) plus what that callback took. Locked
    /// with the queue held, so the two agree.
    pub head_played_at: Mutex<Option<Instant>>,
    pub error: Mutex<Option<String>>,
    pub stop: AtomicBool,
}

/// An open output device.
pub(crate) struct DeviceOut {
    pub shared: Arc<Shared>,
    pub rate: u32,
    pub channels: usize,
    pub name: String,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for DeviceOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceOut")
            .field("name", &self.name)
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .finish_non_exhaustive()
    }
}

impl Drop for DeviceOut {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn find_output(name: Option<&str>) -> Result<cpal::Device, AudioError> {
    let host = cpal::default_host();
    let device = match name {
        None => host.default_output_device(),
        Some(wanted) => host
            .output_devices()
            .map_err(|e| AudioError::Device(format!("cannot list output devices: {e}")))?
            .find(|d| {
                // `alsa:hw:1,0` or just `hw:1,0`, or the description.
                d.id().is_ok_and(|id| {
                    let id = id.to_string();
                    id == wanted || id.split_once(':').is_some_and(|(_, n)| n == wanted)
                }) || d.description().is_ok_and(|desc| desc.to_string() == wanted)
            }),
    };
    device.ok_or_else(|| {
        AudioError::Device(match name {
            None => format!("there is no default output device; {DEVICE_FIX}"),
            Some(n) => format!("no output device called {n:?}; {DEVICE_FIX}"),
        })
    })
}

fn fill<T: SizedSample + FromSample<f32>>(
    out: &mut [T],
    info: &cpal::OutputCallbackInfo,
    frame_len: Duration,
    shared: &Shared,
) {
    let mut queue = match shared.queue.lock() {
        Ok(q) => q,
        Err(_) => return,
    };
    for slot in out.iter_mut() {
        *slot = T::from_sample(queue.pop_front().unwrap_or(0.0));
    }
    shared
        .consumed
        .fetch_add(out.len() as u64, Ordering::Relaxed);
    let t = info.timestamp();
    let plays_at = Instant::now() + t.playback.duration_since(t.callback);
    if let Ok(mut head) = shared.head_played_at.lock() {
        *head = Some(plays_at + frame_len * out.len() as u32);
    }
}

fn build<T: SizedSample + FromSample<f32>>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    shared: Arc<Shared>,
) -> Result<cpal::Stream, cpal::Error> {
    let errors = Arc::clone(&shared);
    // One sample of one channel, in the device's time.
    let frame_len =
        Duration::from_secs(1) / config.sample_rate.max(1) / u32::from(config.channels.max(1));
    device.build_output_stream(
        *config,
        move |data: &mut [T], info: &cpal::OutputCallbackInfo| fill(data, info, frame_len, &shared),
        move |err| {
            if let Ok(mut e) = errors.error.lock() {
                *e = Some(err.to_string());
            }
        },
        None,
    )
}

/// Opens the output device `name` (default when `None`) and starts its stream.
pub(crate) fn open_output_device(name: Option<&str>) -> Result<DeviceOut, AudioError> {
    let name = name.map(str::to_owned);
    let shared = Arc::new(Shared::default());
    let (tx, rx) = mpsc::channel();
    let thread_shared = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("vh-audio-out".to_owned())
        .spawn(move || {
            let opened = (|| {
                let device = find_output(name.as_deref())?;
                let label = device
                    .description()
                    .map(|d| d.to_string())
                    .unwrap_or_else(|_| "output device".to_owned());
                let supported = device.default_output_config().map_err(|e| {
                    AudioError::Device(format!(
                        "{label}: no usable output format ({e}); {DEVICE_FIX}"
                    ))
                })?;
                let config: cpal::StreamConfig = supported.into();
                let stream = match supported.sample_format() {
                    SampleFormat::F32 => build::<f32>(&device, &config, Arc::clone(&thread_shared)),
                    SampleFormat::I16 => build::<i16>(&device, &config, Arc::clone(&thread_shared)),
                    SampleFormat::I32 => build::<i32>(&device, &config, Arc::clone(&thread_shared)),
                    SampleFormat::U16 => build::<u16>(&device, &config, Arc::clone(&thread_shared)),
                    other => {
                        return Err(AudioError::Device(format!(
                            "{label}: sample format {other} is not supported; {DEVICE_FIX}"
                        )));
                    }
                }
                .map_err(|e| {
                    AudioError::Device(format!("{label}: cannot open a stream ({e}); {DEVICE_FIX}"))
                })?;
                stream.play().map_err(|e| {
                    AudioError::Device(format!(
                        "{label}: cannot start playback ({e}); {DEVICE_FIX}"
                    ))
                })?;
                Ok((
                    stream,
                    label,
                    config.sample_rate,
                    usize::from(config.channels),
                ))
            })();
            match opened {
                Ok((stream, label, rate, channels)) => {
                    let _ = tx.send(Ok((label, rate, channels)));
                    while !thread_shared.stop.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    drop(stream);
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })
        .map_err(|e| AudioError::Device(format!("cannot start the audio thread: {e}")))?;
    let (name, rate, channels) = match rx.recv_timeout(Duration::from_secs(5)) {
        Ok(result) => result?,
        Err(_) => {
            shared.stop.store(true, Ordering::SeqCst);
            return Err(AudioError::Device(format!(
                "the output device did not open within 5 s; {DEVICE_FIX}"
            )));
        }
    };
    Ok(DeviceOut {
        shared,
        rate,
        channels,
        name,
        thread: Some(thread),
    })
}

/// Opens tried before a stream that reported an error and took no audio is taken as the
/// device's answer (a stream that reported an error but plays is fine: see `probe_once`):
/// the assistant would otherwise speak into a WAV file instead. The waits between them
/// double (0.2 + 0.4 + 0.8 + 1.6 s), for a sound server slow to set a stream up on a
/// loaded machine.
const OPEN_ATTEMPTS: u32 = 5;

/// Opens the output device `name` and probes it, again after a stream error at start.
fn open_probed(name: Option<&str>) -> Result<DeviceOut, AudioError> {
    let mut attempt = 1;
    loop {
        let device = open_output_device(name)?;
        match device.probe_once(300) {
            Ok(()) => return Ok(device),
            Err(Probe::StreamError(e)) if attempt < OPEN_ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "Output stream failed at start; opening it again");
                drop(device);
                std::thread::sleep(Duration::from_millis(100 << attempt));
                attempt += 1;
            }
            Err(Probe::StreamError(e) | Probe::DoesNotPlay(e)) => return Err(e),
        }
    }
}

/// Why a probe failed.
enum Probe {
    /// The stream reported an error (may pass: see [`OPEN_ATTEMPTS`]).
    StreamError(AudioError),
    /// The device took no audio, or took it faster than it can play.
    DoesNotPlay(AudioError),
}

impl DeviceOut {
    /// Plays `ms` of silence and checks the device takes it at its own rate.
    fn probe_once(&self, ms: u64) -> Result<(), Probe> {
        let samples = self.rate as usize * self.channels * ms as usize / 1000;
        let before = self.shared.consumed.load(Ordering::Relaxed);
        if let Ok(mut q) = self.shared.queue.lock() {
            q.extend(std::iter::repeat_n(0.0, samples));
        }
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(ms));
        let taken = self.shared.consumed.load(Ordering::Relaxed) - before;
        let elapsed = started.elapsed().as_secs_f64();
        let expected = elapsed * f64::from(self.rate) * self.channels as f64;
        // An error the stream reported meanwhile, taken: it matters only if the device did
        // not play. ALSA's PulseAudio plugin fails `snd_pcm_avail_delay` with EIO until the
        // server has timing information for a new stream (it mistakes PulseAudio's
        // "no data yet" for a failure), and cpal reports that and goes on playing.
        let error = self.shared.error.lock().ok().and_then(|mut e| e.take());
        if taken == 0 {
            return Err(match error {
                Some(e) => Probe::StreamError(AudioError::Device(format!(
                    "{}: {e}; {DEVICE_FIX}",
                    self.name
                ))),
                None => Probe::DoesNotPlay(AudioError::Device(format!(
                    "{} took no audio in {ms} ms: it does not play; {DEVICE_FIX}",
                    self.name
                ))),
            });
        }
        if let Some(e) = error {
            tracing::info!(error = %e, device = %self.name, "The output stream reported an error at start but plays at its rate: taken as passing");
        }
        if taken as f64 > expected * 3.0 + 4096.0 {
            return Err(Probe::DoesNotPlay(AudioError::Device(format!(
                "{} consumed {:.1} s of audio in {:.1} s: it is not a real sound card (e.g. \
                 ALSA's null device) and would not pace playback; {DEVICE_FIX}",
                self.name,
                taken as f64 / f64::from(self.rate) / self.channels as f64,
                elapsed
            ))));
        }
        Ok(())
    }
}

/// Checks that the output device `name` (default when `None`) really plays.
pub fn probe_output(name: Option<&str>) -> Result<String, AudioError> {
    let device = open_probed(name)?;
    Ok(device.name.clone())
}

/// Opens the output device `name` (default when `None`), probed as `probe` says.
pub(crate) fn open_sink(
    name: Option<&str>,
    rate: u32,
    probe: ProbeMode,
) -> Result<Box<dyn Sink>, AudioError> {
    let device = match probe {
        ProbeMode::Strict => open_probed(name)?,
        ProbeMode::Lenient => match open_probed(name) {
            Ok(device) => device,
            Err(e) => {
                tracing::warn!(error = %e, "Output device probe failed; playing anyway");
                open_output_device(name)?
            }
        },
        ProbeMode::Off => open_output_device(name)?,
    };
    Ok(Box::new(DeviceSink::new(device, rate)?))
}

/// A sound card: audio is resampled to its rate, copied to its channels and queued; writing
/// blocks while more than `LEAD` is queued.
#[derive(Debug)]
struct DeviceSink {
    device: DeviceOut,
    resampler: Resampler,
    pacer: Pacer,
}

impl DeviceSink {
    fn new(device: DeviceOut, rate: u32) -> Result<DeviceSink, AudioError> {
        let resampler = Resampler::new(rate, device.rate)?;
        let pacer = Pacer::new(rate, LEAD);
        Ok(DeviceSink {
            device,
            resampler,
            pacer,
        })
    }
}

impl Sink for DeviceSink {
    fn write(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        let out = from_mono(&self.resampler.process(samples), self.device.channels);
        let shared = &self.device.shared;
        if let Ok(mut q) = shared.queue.lock() {
            q.extend(out);
        }
        self.pacer.advance(samples.len());
        let limit =
            (self.device.rate as usize * self.device.channels) * LEAD.as_millis() as usize / 1000;
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut last = shared.consumed.load(Ordering::Relaxed);
        loop {
            let queued = shared.queue.lock().map(|q| q.len()).unwrap_or(0);
            if queued <= limit.max(1) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
            let now = shared.consumed.load(Ordering::Relaxed);
            if now != last {
                last = now;
            } else if Instant::now() > deadline {
                // A stream error alone is not the end (see `probe_once`): the device that
                // also stopped taking audio is.
                let why = shared
                    .error
                    .lock()
                    .ok()
                    .and_then(|e| e.clone())
                    .map_or(String::new(), |e| format!(" ({e})"));
                return Err(AudioError::Device(format!(
                    "{} stopped taking audio for 2 s{why}",
                    self.device.name
                )));
            }
        }
    }

    fn flush(&mut self) -> Result<(), AudioError> {
        let tail = from_mono(&self.resampler.flush(), self.device.channels);
        if let Ok(mut q) = self.device.shared.queue.lock() {
            q.extend(tail);
        }
        Ok(())
    }

    fn drained_at(&self) -> Instant {
        self.pacer.finished_at()
    }

    fn next_played_at(&self) -> Instant {
        let shared = &self.device.shared;
        let Ok(queue) = shared.queue.lock() else {
            return Instant::now();
        };
        let head = shared.head_played_at.lock().ok().and_then(|h| *h);
        let queued = Duration::from_secs_f64(
            queue.len() as f64 / f64::from(self.device.rate) / self.device.channels.max(1) as f64,
        );
        // The resampler holds a few samples back; they play first.
        let held = Duration::from_secs_f64(
            self.resampler.held() as f64 / f64::from(self.resampler.rates().0),
        );
        head.map_or_else(Instant::now, |h| h.max(Instant::now())) + queued + held
    }

    fn discard(&mut self) {
        let channels = self.device.channels.max(1);
        let fade = self.device.rate as usize * DISCARD_FADE.as_millis() as usize / 1000;
        let kept = if let Ok(mut q) = self.device.shared.queue.lock() {
            let kept = (q.len() / channels).min(fade.max(1));
            q.truncate(kept * channels);
            for (i, s) in q.iter_mut().enumerate() {
                *s *= 1.0 - (i / channels) as f32 / kept as f32;
            }
            kept
        } else {
            0
        };
        // The pacer counts samples at the rate written, the queue at the device's.
        let (written, device) = self.resampler.rates();
        self.pacer
            .restart(kept * written as usize / device.max(1) as usize);
    }

    fn discards(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("device:{}", self.device.name)
    }
}
