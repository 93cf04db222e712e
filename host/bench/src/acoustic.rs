//! `voicehost bench --acoustic`: the benchmark on a sound server of its own
//! ([`crate::sound_server`]) instead of WAV input and output. The user's lines are played
//! into the microphone, the assistant hears them (and the echo of its own voice) through
//! its capture device and speaks through its output device, and one stereo recording holds
//! the microphone (left) and the speaker (right) on the sound server's clock. The latencies
//! a user feels are measured from that recording alone:
//!
//! - end of "Alexa" → the acknowledgement's first sound;
//! - end of a question → the reply's first sound;
//! - the user's speech onset over a reply (barge-in) → the speaker quiet.
//!
//! Where each line lies in the recording is found by cross-correlating the line's own audio
//! with the microphone channel (near where it was played: the wall clock only narrows the
//! search), so its start and end are exact even with the assistant's echo under it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sound_server::{Client, ECHO_MS, SoundServer};

/// The recording's sample rate: espeak-ng's, so the user's lines are found in it as they
/// were played.
pub(super) const RATE: u32 = 22_050;
/// Sound (speech onset, the assistant's first sound) is a 10 ms frame whose RMS is above
/// this (dBFS); a null sink's silence is digital zero.
const SOUND_DBFS: f32 = -40.0;
/// The speaker counts as silent once it stays under [`SOUND_DBFS`] this long, and at least
/// until the user's line ends: a reply's own pause (Kokoro's between two sentences can be
/// 250 ms) while the user talks over it is not the reply stopped.
const QUIET_MS: usize = 250;
/// A barge-in is measured only where the reply sounded this shortly before the user began.
const PLAYING_WITHIN_MS: usize = 300;

/// Samples in a 10 ms frame.
const FRAME: usize = RATE as usize / 100;

/// What a user line is, for the measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Line {
    /// The wake word: its end → the acknowledgement's first sound.
    Wake,
    /// A request: its end → the reply's first sound.
    Question,
    /// Spoken over a reply: its onset → the speaker quiet.
    BargeIn,
}

/// A user line played into the microphone.
#[derive(Debug, Clone)]
pub(super) struct Played {
    pub(super) line: Line,
    pub(super) wav: PathBuf,
    /// When `paplay` started, in ms after the recording started (wall clock).
    pub(super) at_ms: u64,
    /// The same moment in ms since the Unix epoch.
    pub(super) unix_ms: f64,
}

/// The acoustic timings of one benchmark (ms), and what could not be measured.
#[derive(Debug, Default)]
pub(super) struct Timings {
    pub(super) wake_to_ack: Vec<f64>,
    pub(super) question_to_reply: Vec<f64>,
    /// Each question measured, in the order spoken: its line's name, when its speech ended
    /// (ms since the Unix epoch, to find its turn in app.log) and the latency.
    pub(super) questions: Vec<(String, f64, f64)>,
    pub(super) barge_in_to_quiet: Vec<f64>,
    pub(super) notes: Vec<String>,
}

/// Runs `voicehost bench` again (the current executable, with `args` and
/// `--on-sound-server`) on a sound server started here, and stops the server after.
pub(super) fn on_sound_server(args: &[std::ffi::OsString]) -> Result<(), String> {
    let server = SoundServer::start(ECHO_MS)?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find voicehost: {e}"))?;
    eprintln!(
        "sound server: {} (speaker → microphone echo path {ECHO_MS} ms)",
        server.dir().display()
    );
    let status = Command::new(&exe)
        .args(args)
        .arg("--on-sound-server")
        .envs(server.env())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the benchmark on the sound server failed ({status})"
        ))
    }
}

/// The sound server a parent `voicehost bench --acoustic` started for this process.
pub(super) fn client() -> Result<Client, String> {
    Client::from_env().ok_or_else(|| {
        "--on-sound-server without PULSE_SERVER: run `voicehost bench --acoustic`, which \
         starts the sound server"
            .to_owned()
    })
}

/// A mono track at [`RATE`].
type Track = Vec<f32>;

/// Reads a 16-bit WAV at [`RATE`]: its channels, each as a track.
fn read_wav(path: &Path) -> Result<Vec<Track>, String> {
    let fail = |e: hound::Error| format!("{}: {e}", path.display());
    let mut reader = hound::WavReader::open(path).map_err(fail)?;
    let spec = reader.spec();
    if spec.sample_rate != RATE || spec.bits_per_sample != 16 {
        return Err(format!(
            "{}: {} Hz {}-bit; the benchmark needs {RATE} Hz 16-bit",
            path.display(),
            spec.sample_rate,
            spec.bits_per_sample
        ));
    }
    let channels = usize::from(spec.channels.max(1));
    let mut tracks = vec![Track::new(); channels];
    for (i, s) in reader.samples::<i16>().enumerate() {
        tracks[i % channels].push(f32::from(s.map_err(fail)?) / 32768.0);
    }
    Ok(tracks)
}

/// Whether each 10 ms frame of `x` has sound.
fn sound(x: &[f32]) -> Vec<bool> {
    let floor = 10f32.powf(SOUND_DBFS / 20.0);
    x.chunks(FRAME)
        .map(|f| (f.iter().map(|v| v * v).sum::<f32>() / f.len() as f32).sqrt() > floor)
        .collect()
}

/// RMS of each 10 ms frame.
fn envelope(x: &[f32]) -> Vec<f32> {
    x.chunks(FRAME)
        .map(|f| (f.iter().map(|v| v * v).sum::<f32>() / f.len() as f32).sqrt())
        .collect()
}

/// Pearson correlation of `a` and `b` (equal lengths); 0 where either is constant.
fn pearson(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len()) as f32;
    if n < 2.0 {
        return 0.0;
    }
    let (ma, mb) = (a.iter().sum::<f32>() / n, b.iter().sum::<f32>() / n);
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (x - ma, y - mb);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa <= f32::EPSILON || bb <= f32::EPSILON {
        0.0
    } else {
        ab / (aa * bb).sqrt()
    }
}

/// Where `speech` begins in `mic` (a sample index), searched from `from` to `to`: first by
/// the 10 ms envelopes, then to the sample by the waveforms. `None` if it is not there.
fn locate(mic: &[f32], speech: &[f32], from: usize, to: usize) -> Option<usize> {
    let (env_mic, env_speech) = (envelope(mic), envelope(speech));
    let frames = env_speech.len();
    let (first, last) = (
        from / FRAME,
        (to / FRAME).min(env_mic.len().checked_sub(frames)?),
    );
    let (coarse, score) = (first..=last)
        .map(|f| (f, pearson(&env_mic[f..f + frames], &env_speech)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    // The line's envelope, even under the assistant's echo, matches this well.
    if score < 0.5 {
        return None;
    }
    let around = coarse * FRAME;
    let lo = around.saturating_sub(2 * FRAME);
    let hi = (around + 2 * FRAME).min(mic.len().checked_sub(speech.len())?);
    (lo..=hi).max_by(|&a, &b| {
        let dot = |at: usize| {
            mic[at..at + speech.len()]
                .iter()
                .zip(speech)
                .map(|(m, s)| m * s)
                .sum::<f32>()
        };
        dot(a).total_cmp(&dot(b))
    })
}

/// The spoken part of a line's WAV (from its first to its last frame with sound) and where
/// it starts in the file (samples).
fn speech_of(wav: &Path) -> Result<(Track, usize), String> {
    let track = read_wav(wav)?.swap_remove(0);
    let frames = sound(&track);
    let first = frames.iter().position(|&s| s);
    let last = frames.iter().rposition(|&s| s);
    let (Some(first), Some(last)) = (first, last) else {
        return Err(format!("{}: no speech in it", wav.display()));
    };
    let (start, end) = (first * FRAME, ((last + 1) * FRAME).min(track.len()));
    Ok((track[start..end].to_vec(), start))
}

/// The timings in `recording` (microphone left, speaker right) of the `played` lines.
pub(super) fn analyse(recording: &Path, played: &[Played]) -> Result<Timings, String> {
    let mut tracks = read_wav(recording)?;
    if tracks.len() != 2 {
        return Err(format!("{}: not a stereo recording", recording.display()));
    }
    let speaker = sound(&tracks.swap_remove(1));
    let mic = tracks.swap_remove(0);
    let ms = |frames: usize| frames as f64 * 10.0;
    let mut t = Timings::default();
    for (i, p) in played.iter().enumerate() {
        let (speech, lead) = speech_of(&p.wav)?;
        let expected = p.at_ms as usize * RATE as usize / 1000 + lead;
        let from = expected.saturating_sub(RATE as usize);
        let to = expected + 2 * RATE as usize;
        let name = p.wav.file_stem().unwrap_or_default().to_string_lossy();
        let Some(start) = locate(&mic, &speech, from, to) else {
            t.notes.push(format!(
                "line {i} ({name}): not found in the microphone's recording"
            ));
            continue;
        };
        let (start_f, end_f) = (start / FRAME, (start + speech.len()).div_ceil(FRAME));
        match p.line {
            Line::Wake | Line::Question => {
                let Some(onset) = speaker.iter().skip(start_f).position(|&s| s) else {
                    t.notes
                        .push(format!("line {i} ({name}): no sound after it"));
                    continue;
                };
                let latency = ms(start_f + onset) - ms(end_f);
                if p.line == Line::Wake {
                    t.wake_to_ack.push(latency);
                } else {
                    t.question_to_reply.push(latency);
                    let ended = p.unix_ms + ms(end_f) - p.at_ms as f64;
                    t.questions.push((name.to_string(), ended, latency));
                }
            }
            Line::BargeIn => {
                let before = start_f.saturating_sub(PLAYING_WITHIN_MS / 10);
                if !speaker[before..start_f.min(speaker.len())].contains(&true) {
                    t.notes.push(format!(
                        "line {i} ({name}): the reply was not sounding when the user began"
                    ));
                    continue;
                }
                let quiet = (start_f..speaker.len()).find(|&q| {
                    let until = (q + QUIET_MS / 10).max(end_f).min(speaker.len());
                    until > q && !speaker[q..until].contains(&true)
                });
                let quiet = quiet.map(|q| q - start_f);
                match quiet {
                    Some(q) => t.barge_in_to_quiet.push(ms(q)),
                    None => t.notes.push(format!(
                        "line {i} ({name}): the speaker never went quiet after it"
                    )),
                }
            }
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic noise burst standing in for speech.
    fn burst(n: usize, seed: u32) -> Track {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 8) as f32 / (1 << 24) as f32 - 0.5
            })
            .collect()
    }

    fn write(path: &Path, channels: &[&Track]) {
        let spec = hound::WavSpec {
            channels: channels.len() as u16,
            sample_rate: RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for i in 0..channels[0].len() {
            for c in channels {
                w.write_sample((c[i] * 32767.0) as i16).unwrap();
            }
        }
        w.finalize().unwrap();
    }

    /// Samples of `ms` milliseconds.
    fn at(ms: usize) -> usize {
        ms * RATE as usize / 1000
    }

    #[test]
    fn finds_lines_under_echo_and_measures_from_the_audio() {
        let dir = tempfile::tempdir().unwrap();
        // Two lines, each a WAV with 1 s of silence before the speech.
        let (q, b) = (burst(at(800), 1), burst(at(600), 2));
        let line = |speech: &Track, name: &str| {
            let mut wav = vec![0.0; at(1000)];
            wav.extend(speech);
            wav.extend(vec![0.0; at(1000)]);
            let path = dir.path().join(format!("{name}.wav"));
            write(&path, &[&wav]);
            path
        };
        let (qwav, bwav) = (line(&q, "question"), line(&b, "barge"));
        let (mut mic, mut spk) = (vec![0.0; at(9000)], vec![0.0; at(9000)]);
        // The question's speech at 1.23 s; the reply sounds 640 ms after its end, until
        // 6.5 s, its echo in the microphone 40 ms later and 6 dB down.
        mic[at(1230)..at(1230) + q.len()].copy_from_slice(&q);
        let reply = burst(at(6500) - at(2670), 3);
        spk[at(2670)..at(6500)].copy_from_slice(&reply);
        for (i, v) in reply.iter().enumerate() {
            mic[at(2710) + i] += 0.5 * v;
        }
        // The user speaks over it at 4.0 s; the speaker is quiet 450 ms later.
        for (i, v) in b.iter().enumerate() {
            mic[at(4000) + i] += v;
        }
        spk[at(4450)..at(6500)].fill(0.0);
        // Before that, a pause in the reply longer than the quiet the measure waits for,
        // while the user still talks: not the reply stopped.
        spk[at(4050)..at(4320)].fill(0.0);
        let rec = dir.path().join("rec.wav");
        write(&rec, &[&mic, &spk]);
        // paplay started 150 ms and 250 ms before the lines' padding ended.
        let played = [
            Played {
                line: Line::Question,
                wav: qwav,
                at_ms: 80,
                unix_ms: 1_000_080.0,
            },
            Played {
                line: Line::BargeIn,
                wav: bwav,
                at_ms: 2750,
                unix_ms: 1_002_750.0,
            },
        ];
        let t = analyse(&rec, &played).unwrap();
        assert!(t.notes.is_empty(), "{:?}", t.notes);
        assert_eq!(t.question_to_reply.len(), 1);
        assert!(
            (t.question_to_reply[0] - 640.0).abs() <= 20.0,
            "{:?}",
            t.question_to_reply
        );
        // Its end on the wall clock, where app.log finds its turn.
        let ended = t.questions[0].1;
        assert!((ended - 1_002_030.0).abs() <= 20.0, "{ended}");
        assert_eq!(t.barge_in_to_quiet.len(), 1);
        assert!(
            (t.barge_in_to_quiet[0] - 450.0).abs() <= 20.0,
            "{:?}",
            t.barge_in_to_quiet
        );
    }

    #[test]
    fn a_line_that_is_not_there_is_a_note_not_a_figure() {
        let dir = tempfile::tempdir().unwrap();
        let mut wav = vec![0.0; at(1000)];
        wav.extend(burst(at(500), 7));
        let path = dir.path().join("wake.wav");
        write(&path, &[&wav]);
        let silence = vec![0.0; at(4000)];
        let rec = dir.path().join("rec.wav");
        write(&rec, &[&silence, &silence]);
        let played = [Played {
            line: Line::Wake,
            wav: path,
            at_ms: 0,
            unix_ms: 0.0,
        }];
        let t = analyse(&rec, &played).unwrap();
        assert!(t.wake_to_ack.is_empty());
        assert_eq!(t.notes.len(), 1, "{:?}", t.notes);
    }
}
