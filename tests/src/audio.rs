//! Test audio: WAV files in and out at 16 kHz, speech from espeak-ng and from the
//! project's own tts, and scenes composed of clips, silence and noise.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::{Setup, channel, free_port, tts_keys};

/// 16 kHz mono samples (−1 … 1) of a 16-bit WAV file of any rate and channel count.
pub fn read_wav_16k(path: &Path) -> Vec<f32> {
    let mut reader = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let spec = reader.spec();
    let samples: Vec<f32> = reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect();
    resample_16k(
        &voicehost_audio::to_mono(&samples, usize::from(spec.channels)),
        spec.sample_rate,
    )
}

/// `mono` at `rate` resampled to 16 kHz.
pub fn resample_16k(mono: &[f32], rate: u32) -> Vec<f32> {
    if rate == 16_000 {
        return mono.to_vec();
    }
    let mut resampler = voicehost_audio::Resampler::new(rate, 16_000).unwrap();
    let mut out = resampler.process(mono);
    out.extend(resampler.flush());
    out
}

/// Writes 16 kHz mono samples (−1 … 1) as a 16-bit WAV file.
pub fn write_wav_16k(path: &Path, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample(voicehost_audio::to_i16(s)).unwrap();
    }
    w.finalize().unwrap();
}

/// `text` spoken by espeak-ng (its default English voice), 16 kHz mono.
pub fn espeak(text: &str) -> Vec<f32> {
    espeak_with(&["-v", "en"], text)
}

/// `text` spoken by espeak-ng with `args` (voice, speed, pitch: `-v en+f3 -s 160 -p 50`),
/// 16 kHz mono.
pub fn espeak_with(args: &[&str], text: &str) -> Vec<f32> {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("espeak.wav");
    let status = Command::new("espeak-ng")
        .args(args)
        .arg("-w")
        .arg(&wav)
        .arg(text)
        .status()
        .expect("espeak-ng is missing: run scripts/setup.sh");
    assert!(status.success(), "espeak-ng failed on {text:?}");
    read_wav_16k(&wav)
}

/// Each of `texts` spoken by the project's tts (Kokoro, af_heart), 16 kHz mono: one host
/// with the real tts plugin writing to a WAV file, one `Speak` per text.
pub async fn tts_speech(texts: &[&str]) -> Vec<Vec<f32>> {
    let requests: Vec<(&str, &str)> = texts.iter().map(|t| ("", *t)).collect();
    tts_speech_in(&requests, &[], Duration::from_secs(120)).await
}

/// Each (voice, text) spoken by the project's tts (an empty voice: the default), 16 kHz
/// mono, with `overrides` of the tts section's keys and `ready_within` for the host to
/// start.
pub async fn tts_speech_in(
    requests: &[(&str, &str)],
    overrides: &[(&str, &str)],
    ready_within: Duration,
) -> Vec<Vec<f32>> {
    speech_with(tts_keys, requests, overrides, ready_within).await
}

/// [`tts_speech_in`] with the tts plugin that `keys` configures (e.g.
/// [`piper_keys`](crate::piper_keys)).
pub async fn speech_with(
    keys: fn(u16, &Path) -> Vec<(String, String)>,
    requests: &[(&str, &str)],
    overrides: &[(&str, &str)],
    ready_within: Duration,
) -> Vec<Vec<f32>> {
    use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;
    use voicehost_proto::tts::v1::{SpeakRequest, Wait};

    let mut setup = Setup::new();
    let port = free_port();
    let out = setup.dir.path().join("speech.wav");
    let mut with = vec![("output_pacing", "fast")];
    with.extend_from_slice(overrides);
    setup.section_with("tts", keys(port, &out), &with);
    let mut host = setup.spawn();
    host.wait_for("host_ready", ready_within);
    let mut tts = TtsServiceClient::new(channel(port));
    let mut clips = Vec::new();
    for (voice, text) in requests {
        let before = hound::WavReader::open(&out).map_or(0, |r| r.len() as usize);
        tts.speak(SpeakRequest {
            text: (*text).to_owned(),
            dialog_id: String::new(),
            voice: (*voice).to_owned(),
            wait: Wait::Finished as i32,
        })
        .await
        .unwrap();
        let mut reader = hound::WavReader::open(&out).unwrap();
        let rate = reader.spec().sample_rate;
        let samples: Vec<f32> = reader
            .samples::<i16>()
            .skip(before)
            .map(|s| f32::from(s.unwrap()) / 32768.0)
            .collect();
        clips.push(resample_16k(&samples, rate));
    }
    host.terminate();
    clips
}

/// A reply streamed into `SpeakStream` a word every 20 ms (an LLM's pace), `runs` times
/// after a warm-up: each run's time from the first chunk sent to the `Started` playback
/// event (ms, from the events' own timestamps: `SpeakStream` returns only once the whole
/// reply is in). The rest of each reply is stopped, and given time to settle, so that the
/// next run starts on an idle engine.
pub async fn streaming_first_audio_ms(
    tts: &mut voicehost_proto::tts::v1::tts_service_client::TtsServiceClient<
        tonic::transport::Channel,
    >,
    text: &str,
    runs: usize,
) -> Vec<f64> {
    use tokio_stream::StreamExt;
    use voicehost_proto::common::v1::{DialogRef, TextChunk};
    use voicehost_proto::tts::v1::PlaybackEventKind;

    let mut times = Vec::new();
    for run in 0..=runs {
        let dialog = format!("bench{run}");
        let mut events = tts
            .playback_events(DialogRef {
                dialog_id: dialog.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let words: Vec<String> = text.split_inclusive(' ').map(str::to_owned).collect();
        let n = words.len();
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let sent_us = voicehost_plugin_runtime::now_us();
        let d = dialog.clone();
        tokio::spawn(async move {
            for (i, w) in words.into_iter().enumerate() {
                let chunk = TextChunk {
                    text: w,
                    eot: i + 1 == n,
                    dialog_id: d.clone(),
                    turn: 1,
                    index: i as u32,
                    finish_reason: String::new(),
                };
                if tx.send(chunk).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        tts.speak_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap();
        while let Some(Ok(e)) = events.next().await {
            if e.kind() == PlaybackEventKind::Started {
                if run > 0 {
                    times.push((e.ts_unix_us - sent_us) as f64 / 1000.0);
                }
                break;
            }
        }
        tts.stop_speaking(DialogRef { dialog_id: dialog })
            .await
            .unwrap();
        // A clause already being synthesised finishes: let it, before the next run.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    times
}

/// `samples` without leading and trailing near-silence (below 1 % of full scale).
pub fn trim_silence(samples: &[f32]) -> Vec<f32> {
    let loud = |s: &f32| s.abs() > 0.01;
    let start = samples.iter().position(loud).unwrap_or(0);
    let end = samples.iter().rposition(loud).map_or(0, |e| e + 1);
    samples[start..end.max(start)].to_vec()
}

/// 16 kHz `clips` placed at their start times (seconds) on `total` seconds of silence.
pub fn scene(total: f32, clips: &[(f32, &[f32])]) -> Vec<f32> {
    let mut out = vec![0.0; (total * 16_000.0) as usize];
    for (start, clip) in clips {
        let at = (start * 16_000.0) as usize;
        assert!(at + clip.len() <= out.len(), "the scene is too short");
        out[at..at + clip.len()].copy_from_slice(clip);
    }
    out
}

/// 16 kHz white noise at about −20 dBFS, the same every time.
pub fn white_noise(seconds: f32) -> Vec<f32> {
    let mut state = 0x2545_f491_u32;
    (0..(seconds * 16_000.0) as usize)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state as f32 / u32::MAX as f32 - 0.5) * 0.2
        })
        .collect()
}
