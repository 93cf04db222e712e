//! Making one model file from the archive members it is built from.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Cursor, Write};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::ct2::Ct2Model;
use super::manifest::{Build, ModelFile, Source};
use super::progress::Progress;
use super::whisper::{self, Weights, WhisperAssets};
use super::{ModelError, quantize};

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
        Build::WhisperGgml | Build::WhisperGgmlQ8_0 => {
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
            let weights = if file.build == Build::WhisperGgmlQ8_0 {
                Weights::Q8_0
            } else {
                Weights::F16
            };
            whisper::convert(&model, &assets, weights, writer, progress)
                .map_err(|e| fail(e.to_string()))?;
        }
        Build::WavS16 => {
            let wav = wav_to_s16(get(&file.from[0])?).map_err(fail)?;
            write(out, &wav, progress).map_err(|e| fail(e.to_string()))?;
        }
        Build::GgufQ8_0 => {
            return Err(fail(
                "gguf-q8_0 is made by gguf_q8_0, not streamed (voicehost bug)".to_owned(),
            ));
        }
    }
    Ok(())
}

/// Makes a `gguf-q8_0` file at `out`: joins the `from` members in their listed order into a
/// temporary file beside `out`, checks it against `joined` (the upstream GGUF), and has
/// llama.cpp's quantizer re-encode it to Q8_0. Each step prints its time.
pub fn gguf_q8_0(
    file: &ModelFile,
    members: &Members,
    out: &Path,
    progress: &Progress,
) -> Result<(), ModelError> {
    let fail = |message: String| ModelError::Build {
        path: file.path.clone(),
        message,
    };
    let Some(pinned) = &file.joined else {
        return Err(fail("gguf-q8_0 without `joined` (manifest bug)".to_owned()));
    };
    let dir = out.parent().unwrap_or(Path::new("."));
    let joined = tempfile::Builder::new()
        .prefix(".joined-")
        .suffix(".gguf")
        .tempfile_in(dir)
        .map_err(|e| ModelError::io(dir, e))?;

    let task = progress.bytes(
        pinned.size,
        format!("joining {} part(s) of {}", file.from.len(), file.path),
    );
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    {
        let mut writer = io::BufWriter::with_capacity(1 << 20, joined.as_file());
        for reference in &file.from {
            let data = members.get(reference).ok_or_else(|| {
                ModelError::Archive(format!("{reference} was not extracted (manifest bug)"))
            })?;
            for chunk in data.chunks(1 << 20) {
                writer
                    .write_all(chunk)
                    .map_err(|e| ModelError::io(joined.path(), e))?;
                hasher.update(chunk);
                size += chunk.len() as u64;
                task.inc(chunk.len() as u64);
            }
        }
        writer
            .flush()
            .map_err(|e| ModelError::io(joined.path(), e))?;
    }
    let hash = hex::encode(hasher.finalize());
    if size != pinned.size || hash != pinned.sha256 {
        task.fail();
        return Err(fail(format!(
            "the joined parts have {size} bytes and sha256 {hash}; the manifest expects the \
             upstream file, {} bytes and {}. Nothing was written. The packages changed or are \
             listed out of order: report it, or update models/manifest.toml",
            pinned.size, pinned.sha256
        )));
    }
    task.finish("joined, sha256 matches the upstream file");

    // The quantizer reports no progress: the growth of its output file stands in for it.
    let task = progress.bytes(file.size, format!("re-encoding {} to Q8_0", file.path));
    let result = std::thread::scope(|scope| {
        let worker = scope.spawn(|| quantize::to_q8_0(joined.path(), out, 0));
        while !worker.is_finished() {
            task.set(fs::metadata(out).map(|m| m.len()).unwrap_or(0));
            std::thread::sleep(Duration::from_millis(200));
        }
        worker
            .join()
            .unwrap_or_else(|_| Err("the quantizer thread panicked".to_owned()))
    });
    match result {
        Ok(()) => {
            task.finish("re-encoded by llama.cpp");
            Ok(())
        }
        Err(e) => {
            task.fail();
            Err(fail(e))
        }
    }
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
    use crate::manifest::Pinned;

    fn file(build: Build, from: &[&str], joined: Option<Pinned>) -> ModelFile {
        ModelFile {
            path: "out.bin".to_owned(),
            build,
            from: from.iter().map(|s| (*s).to_owned()).collect(),
            assets: None,
            size: 0,
            sha256: None,
            joined,
        }
    }

    fn members(items: &[(&str, &[u8])]) -> Members {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
            .collect()
    }

    fn pinned(data: &[u8]) -> Pinned {
        Pinned {
            size: data.len() as u64,
            sha256: hex::encode(Sha256::digest(data)),
        }
    }

    /// The names of the files in `dir`.
    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn parts_are_joined_in_the_listed_order_not_by_name() {
        let parts = members(&[("p10:part10.bin", b"B"), ("p2:part2.bin", b"A")]);
        let f = file(Build::Concat, &["p2:part2.bin", "p10:part10.bin"], None);
        let mut out = Vec::new();
        build(&f, &parts, &mut out, &mut |_| {}).unwrap();
        assert_eq!(out, b"AB");
    }

    #[test]
    fn parts_that_do_not_join_into_the_upstream_file_are_not_re_encoded() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.gguf");
        let parts = members(&[("p:a", b"a"), ("p:b", b"b")]);
        // Pinned as "ba": the parts listed the other way round.
        let f = file(Build::GgufQ8_0, &["p:a", "p:b"], Some(pinned(b"ba")));
        let err = gguf_q8_0(&f, &parts, &out, &Progress::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("the joined parts have 2 bytes"), "{err}");
        assert!(err.contains("out of order"), "{err}");
        assert!(
            leftovers(dir.path()).is_empty(),
            "{:?}",
            leftovers(dir.path())
        );
    }

    #[test]
    fn a_quantizer_failure_names_the_file_and_leaves_no_joined_copy() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.gguf");
        let parts = members(&[("p:a", b"not a "), ("p:b", b"model")]);
        let f = file(
            Build::GgufQ8_0,
            &["p:a", "p:b"],
            Some(pinned(b"not a model")),
        );
        let err = gguf_q8_0(&f, &parts, &out, &Progress::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("making out.bin: llama.cpp's quantizer failed"),
            "{err}"
        );
        let left = leftovers(dir.path());
        assert!(left.iter().all(|f| !f.starts_with(".joined-")), "{left:?}");
    }

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
