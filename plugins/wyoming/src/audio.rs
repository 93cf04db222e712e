//! Client audio to what the services take: 16-bit little-endian PCM of any rate and channel
//! count becomes 16 kHz mono, chunk by chunk, as it arrives.

use serde_json::json;
use voicehost_audio::{Resampler, from_s16le, to_mono, to_s16le};

use crate::frame::Event;

/// The rate kwd and stt take.
pub const RATE: u32 = 16_000;

/// The format of an audio stream, from `audio-start` or an `audio-chunk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub rate: u32,
    pub width: u32,
    pub channels: u32,
}

impl Format {
    /// The format an audio event states; the error names the bad field and what is taken.
    pub fn of(event: &Event) -> Result<Format, String> {
        let field = |key: &str| {
            event
                .uint(key)
                .ok_or_else(|| format!("{}: {key} is missing or not a whole number", event.kind))
        };
        let (rate, width, channels) = (field("rate")?, field("width")?, field("channels")?);
        if !(8_000..=192_000).contains(&rate) {
            return Err(format!(
                "{}: rate {rate} Hz; send 8000 to 192000 Hz",
                event.kind
            ));
        }
        if width != 2 {
            return Err(format!(
                "{}: width {width}; send 16-bit samples (width 2)",
                event.kind
            ));
        }
        if !(1..=8).contains(&channels) {
            return Err(format!("{}: {channels} channels; send 1 to 8", event.kind));
        }
        Ok(Format {
            rate: rate as u32,
            width: width as u32,
            channels: channels as u32,
        })
    }
}

/// Converts one stream to 16 kHz mono 16-bit PCM.
#[derive(Debug)]
pub struct Converter {
    format: Format,
    resampler: Resampler,
}

impl Converter {
    pub fn new(format: Format) -> Result<Converter, String> {
        let resampler = Resampler::new(format.rate, RATE).map_err(|e| e.to_string())?;
        Ok(Converter { format, resampler })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// 16 kHz mono s16le of `pcm` (whole frames of this stream's format).
    pub fn push(&mut self, pcm: &[u8]) -> Result<Vec<u8>, String> {
        let frame = (self.format.width * self.format.channels) as usize;
        if !pcm.len().is_multiple_of(frame) {
            return Err(format!(
                "audio-chunk: {} bytes is not a whole number of {frame}-byte frames",
                pcm.len()
            ));
        }
        let mono = to_mono(&from_s16le(pcm), self.format.channels as usize);
        Ok(to_s16le(&self.resampler.process(&mono)))
    }

    /// The resampler's last samples, at the end of the stream.
    pub fn flush(&mut self) -> Vec<u8> {
        to_s16le(&self.resampler.flush())
    }
}

/// The `audio-chunk`s (1024 samples each) of mono s16le `pcm` at `rate`, after an
/// `audio-start` when `with_start`; `at_ms` is the timestamp of its first sample and
/// moves past its last.
pub fn events(pcm: &[u8], rate: u32, at_ms: &mut u64, with_start: bool) -> Vec<Event> {
    let format = json!({ "rate": rate, "width": 2, "channels": 1 });
    let mut out = Vec::new();
    if with_start {
        let mut start = format.clone();
        start["timestamp"] = (*at_ms).into();
        out.push(Event::new("audio-start", start));
    }
    for chunk in pcm.chunks(2048) {
        let mut data = format.clone();
        data["timestamp"] = (*at_ms).into();
        out.push(Event::new("audio-chunk", data).with_payload(chunk.to_vec()));
        *at_ms += (chunk.len() / 2) as u64 * 1000 / u64::from(rate.max(1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_checked_by_name() {
        let ev = |data| Event::new("audio-start", data);
        let ok = Format::of(&ev(json!({"rate": 44100, "width": 2, "channels": 2}))).unwrap();
        assert_eq!((ok.rate, ok.width, ok.channels), (44_100, 2, 2));
        for (data, says) in [
            (json!({"width": 2, "channels": 1}), "rate is missing"),
            (json!({"rate": 16000, "width": 4, "channels": 1}), "width 4"),
            (
                json!({"rate": 100, "width": 2, "channels": 1}),
                "rate 100 Hz",
            ),
            (
                json!({"rate": 16000, "width": 2, "channels": 0}),
                "0 channels",
            ),
            (
                json!({"rate": "16000", "width": 2, "channels": 1}),
                "rate is missing",
            ),
        ] {
            let err = Format::of(&ev(data)).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn stereo_44k_becomes_16k_mono() {
        let format = Format {
            rate: 44_100,
            width: 2,
            channels: 2,
        };
        let mut c = Converter::new(format).unwrap();
        // One second of a 440 Hz tone, left and right equal.
        let frames: Vec<f32> = (0..44_100)
            .flat_map(|i| {
                let s = (i as f32 * 440.0 * std::f32::consts::TAU / 44_100.0).sin() * 0.5;
                [s, s]
            })
            .collect();
        let mut out = Vec::new();
        for chunk in to_s16le(&frames).chunks(4 * 1000) {
            out.extend(c.push(chunk).unwrap());
        }
        out.extend(c.flush());
        let samples = out.len() / 2;
        assert!((15_900..=16_100).contains(&samples), "{samples} samples");
        assert!(c.push(&[0; 3]).unwrap_err().contains("4-byte frames"));
    }

    #[test]
    fn audio_goes_out_in_1024_sample_chunks_with_timestamps() {
        let pcm = vec![0u8; 2 * 2500];
        let mut at = 100;
        let ev = events(&pcm, 16_000, &mut at, true);
        let kinds: Vec<&str> = ev.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["audio-start", "audio-chunk", "audio-chunk", "audio-chunk"]
        );
        assert_eq!(ev[1].payload.len(), 2048);
        assert_eq!(ev[2].uint("timestamp"), Some(164));
        assert_eq!(at, 256, "past the last sample");
        assert_eq!(ev[1].uint("rate"), Some(16_000));
    }
}
