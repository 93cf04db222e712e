//! Making one model file from the archive members it is built from.

use std::collections::BTreeMap;
use std::io::{self, Cursor, Write};

use super::ModelError;
use super::ct2::Ct2Model;
use super::manifest::{Build, ModelFile, Source};
use super::whisper::{self, WhisperAssets};

/// Archive members by `package:member` reference.
pub type Members = BTreeMap<String, Vec<u8>>;

/// The files inside a whisper-ggml `assets` directory that the converter reads.
const WHISPER_ASSETS: [&str; 3] = ["mel_filters.npz", "gpt2.tiktoken", "multilingual.tiktoken"];

/// Every `package:member` reference `file` is built from.
pub fn sources(file: &ModelFile) -> Vec<String> {
    let mut out = file.from.clone();
    if let Some(dir) = &file.assets {
        out.extend(WHISPER_ASSETS.iter().map(|a| format!("{dir}/{a}")));
    }
    out
}

/// Builds `file` from `members` into `out`; `progress` gets the bytes written.
pub fn build(
    file: &ModelFile,
    members: &Members,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<(), ModelError> {
    let get = |reference: &str| -> Result<&[u8], ModelError> {
        members.get(reference).map(Vec::as_slice).ok_or_else(|| {
            ModelError::Archive(format!("{reference} was not extracted (manifest bug)"))
        })
    };
    let fail = |message: String| ModelError::Build {
        path: file.path.clone(),
        message,
    };
    let write = |out: &mut dyn Write, data: &[u8], progress: &mut dyn FnMut(u64)| {
        for chunk in data.chunks(1 << 20) {
            out.write_all(chunk)?;
            progress(chunk.len() as u64);
        }
        Ok::<(), io::Error>(())
    };
    match file.build {
        Build::Copy | Build::Concat => {
            for reference in &file.from {
                write(out, get(reference)?, progress).map_err(|e| fail(e.to_string()))?;
            }
        }
        Build::WhisperGgml => {
            let mut joined = Vec::new();
            for reference in &file.from {
                joined.extend_from_slice(get(reference)?);
            }
            let model = Ct2Model::parse(joined).map_err(|e| fail(e.to_string()))?;
            let dir = file.assets.as_deref().unwrap_or_default();
            let text = |name: &str| -> Result<String, ModelError> {
                String::from_utf8(get(&format!("{dir}/{name}"))?.to_vec())
                    .map_err(|_| fail(format!("{name} is not UTF-8")))
            };
            let assets = WhisperAssets {
                mel_filters: whisper::mel_filters(get(&format!("{dir}/mel_filters.npz"))?)
                    .map_err(|e| fail(e.to_string()))?,
                gpt2: whisper::parse_tiktoken(&text("gpt2.tiktoken")?)
                    .map_err(|e| fail(e.to_string()))?,
                multilingual: whisper::parse_tiktoken(&text("multilingual.tiktoken")?)
                    .map_err(|e| fail(e.to_string()))?,
            };
            let writer = io::BufWriter::with_capacity(1 << 20, out);
            whisper::convert(&model, &assets, writer, progress).map_err(|e| fail(e.to_string()))?;
        }
        Build::WavS16 => {
            let wav = wav_to_s16(get(&file.from[0])?).map_err(fail)?;
            write(out, &wav, progress).map_err(|e| fail(e.to_string()))?;
        }
    }
    Ok(())
}

/// Converts a 16 kHz WAV of any sample format and channel count to 16-bit mono.
pub fn wav_to_s16(input: &[u8]) -> Result<Vec<u8>, String> {
    let mut reader = hound::WavReader::new(Cursor::new(input)).map_err(|e| e.to_string())?;
    let spec = reader.spec();
    if spec.sample_rate != 16_000 {
        return Err(format!(
            "the WAV is {} Hz; only 16 kHz sources are converted (resample it first)",
            spec.sample_rate
        ));
    }
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?
        }
    };
    let channels = usize::from(spec.channels.max(1));
    let out_spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut out = Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut out, out_spec).map_err(|e| e.to_string())?;
    for frame in samples.chunks(channels) {
        let mono = frame.iter().sum::<f32>() / frame.len() as f32;
        let s16 = (mono * 32767.0).round().clamp(-32768.0, 32767.0) as i16;
        writer.write_sample(s16).map_err(|e| e.to_string())?;
    }
    writer.finalize().map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

/// Groups `references` by package: package name → members.
pub fn by_package(references: &[String]) -> BTreeMap<&str, Vec<&str>> {
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in references {
        if let Some(Source { package, member }) = Source::parse(r) {
            let members = out.entry(package).or_default();
            if !members.contains(&member) {
                members.push(member);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_stereo_wav_becomes_s16_mono() {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 16_000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut buf = Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut buf, spec).unwrap();
        for (l, r) in [(0.5f32, 0.5f32), (-1.0, -1.0), (1.5, 1.5), (0.25, -0.25)] {
            w.write_sample(l).unwrap();
            w.write_sample(r).unwrap();
        }
        w.finalize().unwrap();
        let out = wav_to_s16(&buf.into_inner()).unwrap();
        let mut r = hound::WavReader::new(Cursor::new(out)).unwrap();
        assert_eq!(r.spec().channels, 1);
        assert_eq!(r.spec().bits_per_sample, 16);
        let s: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(s, vec![16384, -32767, 32767, 0]);
    }

    #[test]
    fn other_rates_are_refused() {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 44_100,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut buf = Cursor::new(Vec::new());
        hound::WavWriter::new(&mut buf, spec)
            .unwrap()
            .finalize()
            .unwrap();
        let err = wav_to_s16(&buf.into_inner()).unwrap_err();
        assert!(err.contains("44100 Hz"), "{err}");
    }
}
