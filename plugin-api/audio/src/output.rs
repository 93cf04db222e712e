//! Outputs: sound card, WAV file, null. All take mono f32 samples at the rate given when
//! opened and block to keep real time (unless `Pacing::Fast`).

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{AudioError, OutputSpec, Pacer, Pacing, ProbeMode};

/// How much audio an output holds ahead of the clock, like a device's buffer.
pub(crate) const LEAD: Duration = Duration::from_millis(60);
/// What [`Sink::discard`] keeps of the audio written, faded out: a cut mid-waveform clicks.
pub const DISCARD_FADE: Duration = Duration::from_millis(5);

/// Where synthesised audio is played.
pub trait Sink: Send + std::fmt::Debug {
    /// Plays mono samples, blocking while the output is `LEAD` ahead of real time.
    fn write(&mut self, samples: &[f32]) -> Result<(), AudioError>;
    /// Makes everything written so far durable/audible (e.g. a valid WAV header).
    fn flush(&mut self) -> Result<(), AudioError>;
    /// When the samples written so far will have been played.
    fn drained_at(&self) -> Instant;
    /// When the first sample written next will be played (the echo canceller's far end is
    /// timed by it). An output that keeps no clock of its own: when the samples written so
    /// far have played, or now.
    fn next_played_at(&self) -> Instant {
        self.drained_at().max(Instant::now())
    }
    /// Drops what was written and not yet played (the user interrupted it), but for a
    /// fade-out of at most [`DISCARD_FADE`]. Outputs that are not heard keep it all.
    fn discard(&mut self) {}
    /// Whether [`Sink::discard`] drops anything.
    fn discards(&self) -> bool {
        false
    }
    /// What this output is, for logs.
    fn describe(&self) -> String;
}

/// Opens `spec` for mono audio at `rate` Hz. A device is probed first under
/// `ProbeMode::Strict`; `auto` falls back to its WAV file when no device really plays.
pub fn open_output(
    spec: &OutputSpec,
    rate: u32,
    pacing: Pacing,
    probe: ProbeMode,
) -> Result<Box<dyn Sink>, AudioError> {
    match spec {
        OutputSpec::Null => Ok(Box::new(NullSink {
            pacer: Pacer::new(rate, LEAD),
            pacing,
        })),
        OutputSpec::Wav(path) => Ok(Box::new(WavSink::create(path, rate, pacing)?)),
        OutputSpec::Device(name) => crate::device::open_sink(name.as_deref(), rate, probe),
        OutputSpec::Auto(fallback) => {
            match open_output(&OutputSpec::Device(None), rate, pacing, ProbeMode::Strict) {
                Ok(sink) => Ok(sink),
                Err(e) => {
                    tracing::warn!(
                        event = "output_fallback",
                        reason = %e,
                        file = %fallback.display(),
                        "No usable sound card; writing the audio to a WAV file instead"
                    );
                    Ok(Box::new(WavSink::create(fallback, rate, pacing)?))
                }
            }
        }
    }
}

#[derive(Debug)]
struct NullSink {
    pacer: Pacer,
    pacing: Pacing,
}

impl Sink for NullSink {
    fn write(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        if self.pacing == Pacing::Realtime {
            self.pacer.advance(samples.len());
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), AudioError> {
        Ok(())
    }

    fn drained_at(&self) -> Instant {
        self.pacer.finished_at()
    }

    fn describe(&self) -> String {
        "null".to_owned()
    }
}

/// Writes 16-bit mono PCM: exactly the audio that would have been played.
struct WavSink {
    path: PathBuf,
    writer: hound::WavWriter<BufWriter<std::fs::File>>,
    pacer: Pacer,
    pacing: Pacing,
}

impl std::fmt::Debug for WavSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSink")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl WavSink {
    fn create(path: &Path, rate: u32, pacing: Pacing) -> Result<WavSink, AudioError> {
        let fail = |message: String| AudioError::File {
            path: path.display().to_string(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail(format!("cannot create its directory: {e}")))?;
        }
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        // A restarted tts (crash, hot swap) carries on after what was already written.
        let writer = if repair_header(path, spec).is_ok() {
            hound::WavWriter::append(path)
                .map_err(|e| fail(format!("cannot append to the WAV output: {e}")))?
        } else {
            hound::WavWriter::create(path, spec)
                .map_err(|e| fail(format!("cannot create the WAV output: {e}")))?
        };
        Ok(WavSink {
            path: path.to_owned(),
            writer,
            pacer: Pacer::new(rate, LEAD),
            pacing,
        })
    }
}

/// Checks that `path` is a WAV file in `spec`'s format with the plain 44-byte header this
/// sink writes, and sets its length fields from the file's size: a writer that was killed
/// left them stale.
fn repair_header(path: &Path, spec: hound::WavSpec) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not a matching WAV file");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let mut h = [0u8; 44];
    f.read_exact(&mut h)?;
    let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let matches = &h[0..4] == b"RIFF"
        && &h[8..16] == b"WAVEfmt "
        && u32_at(16) == 16
        && u16_at(20) == 1
        && u16_at(22) == spec.channels
        && u32_at(24) == spec.sample_rate
        && u16_at(34) == spec.bits_per_sample
        && &h[36..40] == b"data";
    if !matches {
        return Err(bad());
    }
    let size = f.metadata()?.len();
    let data = u32::try_from((size - 44) & !1).map_err(|_| bad())?;
    f.set_len(44 + u64::from(data))?;
    f.seek(SeekFrom::Start(4))?;
    f.write_all(&(36 + data).to_le_bytes())?;
    f.seek(SeekFrom::Start(40))?;
    f.write_all(&data.to_le_bytes())?;
    f.flush()
}

impl Sink for WavSink {
    fn write(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        if self.pacing == Pacing::Realtime {
            self.pacer.advance(samples.len());
        }
        for s in samples {
            self.writer
                .write_sample(crate::to_i16(*s))
                .map_err(|e| AudioError::File {
                    path: self.path.display().to_string(),
                    message: e.to_string(),
                })?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), AudioError> {
        self.writer.flush().map_err(|e| AudioError::File {
            path: self.path.display().to_string(),
            message: e.to_string(),
        })
    }

    fn drained_at(&self) -> Instant {
        self.pacer.finished_at()
    }

    fn describe(&self) -> String {
        format!("wav:{}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wav_output_holds_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/a.wav");
        let mut sink = open_output(
            &OutputSpec::Wav(path.clone()),
            24_000,
            Pacing::Fast,
            ProbeMode::Strict,
        )
        .unwrap();
        sink.write(&[0.5, -0.5, 0.0]).unwrap();
        sink.flush().unwrap();
        let mut r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.spec().sample_rate, 24_000);
        let s: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(s, vec![16384, -16384, 0]);
    }

    #[test]
    fn the_next_sample_plays_after_what_was_written_or_now() {
        let opened = Instant::now();
        let mut sink =
            open_output(&OutputSpec::Null, 1000, Pacing::Realtime, ProbeMode::Strict).unwrap();
        assert!(sink.next_played_at() >= opened);
        // 50 ms written at once (within the output's lead): the next plays after them, its
        // clock started when the output opened.
        sink.write(&[0.0; 50]).unwrap();
        let (next, written) = (sink.next_played_at(), Instant::now());
        eprintln!(
            "next sample {:?} after the write",
            next.saturating_duration_since(written)
        );
        assert!(next >= opened + Duration::from_millis(50), "{next:?}");
        assert!(next <= written + Duration::from_millis(50), "{next:?}");
        // Idle long past that: it plays as soon as it is written.
        std::thread::sleep(Duration::from_millis(120));
        let now = Instant::now();
        let next = sink.next_played_at();
        assert!(
            next >= now && next < now + Duration::from_millis(50),
            "{next:?}"
        );
    }

    #[test]
    fn a_reopened_wav_output_continues_even_after_a_kill() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let open = || {
            open_output(
                &OutputSpec::Wav(path.clone()),
                24_000,
                Pacing::Fast,
                ProbeMode::Strict,
            )
            .unwrap()
        };
        let mut first = open();
        first.write(&[0.5; 100]).unwrap();
        first.flush().unwrap();
        // Killed: nothing finalises the file, and samples that reached the disk after the
        // last header update (here 10 written behind the writer's back) are not counted.
        std::mem::forget(first);
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            f.write_all(&[0x00, 0x20].repeat(10)).unwrap();
        }
        let mut second = open();
        second.write(&[-0.5; 10]).unwrap();
        second.flush().unwrap();
        let mut r = hound::WavReader::open(&path).unwrap();
        let s: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(s.len(), 120);
        assert_eq!((s[0], s[109], s[119]), (16384, 8192, -16384));
        // Another format is not appended to: the file starts again.
        drop(second);
        let mut other = open_output(
            &OutputSpec::Wav(path.clone()),
            16_000,
            Pacing::Fast,
            ProbeMode::Strict,
        )
        .unwrap();
        other.write(&[0.0; 4]).unwrap();
        other.flush().unwrap();
        assert_eq!(hound::WavReader::open(&path).unwrap().len(), 4);
    }

    #[test]
    fn the_device_path_fails_clearly_without_a_sound_card() {
        // These machines have no sound card: either no device, or ALSA's null device,
        // which the probe must catch quickly instead of spinning.
        let started = Instant::now();
        match open_output(
            &OutputSpec::Device(None),
            24_000,
            Pacing::Realtime,
            ProbeMode::Strict,
        ) {
            Err(e) => {
                let text = e.to_string();
                eprintln!("{text}");
                assert!(text.contains("wav:"), "names the fix: {text}");
            }
            Ok(sink) => eprintln!("a real sound card is present: {}", sink.describe()),
        }
        assert!(started.elapsed() < Duration::from_secs(8));
    }

    #[test]
    fn a_device_that_plays_too_fast_is_refused() {
        // ALSA's `null` PCM takes audio as fast as it is given (where ALSA is installed).
        let started = Instant::now();
        match open_output(
            &OutputSpec::Device(Some("null".to_owned())),
            24_000,
            Pacing::Realtime,
            ProbeMode::Strict,
        ) {
            Err(e) => {
                let text = e.to_string();
                eprintln!("{text}");
                assert!(text.contains("wav:"), "names the fix: {text}");
            }
            Ok(sink) => eprintln!("device null played in real time: {}", sink.describe()),
        }
        assert!(started.elapsed() < Duration::from_secs(8));
    }
}
