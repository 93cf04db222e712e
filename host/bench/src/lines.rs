//! The user's lines: spoken by espeak-ng into WAV files, and read back from app.log to
//! tell which of them stt cut short.

use std::collections::BTreeMap;
use std::path::Path;

/// The user's lines; `|` is a 900 ms pause mid-sentence (smart endpointing must wait it out).
/// Two turns for the model, then one that a built-in skill answers.
pub(super) const LINES: [(&str, &str); 4] = [
    ("wake", "Alexa"),
    ("question", "What is the capital of France?"),
    ("follow_up", "And what about | Germany?"),
    ("skill", "What time is it?"),
];

/// The acoustic benchmark's last turn: a request for a long answer, and a question spoken
/// over that answer (barge-in) soon after it starts sounding.
pub(super) const BARGE_IN_LINES: [(&str, &str); 2] = [
    ("story", "Tell me a long story about a dragon."),
    ("barge_in", "What time is it?"),
];

/// A pause inside a line.
const PAUSE_MS: usize = 900;

/// `text` spoken by espeak-ng into `wav`, with 1 s of silence before and after (a person
/// does not start talking the instant the assistant stops); each `|` is a pause of
/// [`PAUSE_MS`]. Returns how long the speech lasts (pauses included, padding not), in ms.
pub(super) fn espeak(text: &str, wav: &Path) -> Result<u64, String> {
    let raw = wav.with_extension("raw.wav");
    let fail = |e: hound::Error| format!("{}: {e}", raw.display());
    let mut spec = None;
    let mut speech: Vec<i16> = Vec::new();
    for (i, part) in text.split('|').enumerate() {
        let status = std::process::Command::new("espeak-ng")
            .args(["-v", "en", "-w"])
            .arg(&raw)
            .arg(part.trim())
            .status()
            .map_err(|e| {
                format!("cannot run espeak-ng ({e}); install it: apt-get install espeak-ng")
            })?;
        if !status.success() {
            return Err(format!("espeak-ng failed on {part:?}"));
        }
        let mut reader = hound::WavReader::open(&raw).map_err(fail)?;
        let s = reader.spec();
        if i > 0 {
            let pause = s.sample_rate as usize * usize::from(s.channels) * PAUSE_MS / 1000;
            speech.extend(std::iter::repeat_n(0, pause));
        }
        for sample in reader.samples::<i16>() {
            speech.push(sample.map_err(fail)?);
        }
        spec = Some(s);
    }
    let spec = spec.ok_or_else(|| format!("no text to speak in {text:?}"))?;
    let pad = vec![0i16; spec.sample_rate as usize * usize::from(spec.channels)];
    let mut writer = hound::WavWriter::create(wav, spec).map_err(fail)?;
    for s in pad.iter().chain(&speech).chain(&pad) {
        writer.write_sample(*s).map_err(fail)?;
    }
    writer.finalize().map_err(fail)?;
    let _ = std::fs::remove_file(&raw);
    let frames = speech.len() / usize::from(spec.channels.max(1));
    Ok(frames as u64 * 1000 / u64::from(spec.sample_rate.max(1)))
}

/// The words of `text`, lower case, without punctuation.
fn plain_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Every final transcript of the user's questions (from app.log's `stt_final`, in order
/// per dialog: the n-th is the n-th spoken question), each with whether it was cut short:
/// its audio is shorter than the question's speech (`speech_ms`, pauses included) and its
/// transcript lacks the question's last word, i.e. the utterance ended before the speaker
/// did. A misheard but whole line is not cut, nor is a whole line whose utterance holds
/// less silence than the line (a fast endpoint keeps ~150 ms after the last word, the
/// silence wait more, and the VAD may start after a soft first sound).
pub(super) fn user_lines(app_log: &Path, speech_ms: &[u64]) -> (usize, Vec<(String, bool)>) {
    let texts: Vec<&str> = LINES
        .iter()
        .chain(BARGE_IN_LINES.iter())
        .map(|(_, text)| *text)
        .collect();
    let text = std::fs::read_to_string(app_log).unwrap_or_default();
    let mut turns: BTreeMap<String, usize> = BTreeMap::new();
    let mut lines = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["event"] != "stt_final" {
            continue;
        }
        let fields = &v["fields"];
        let dialog = fields["dialog"].as_str().unwrap_or_default().to_owned();
        let turn = turns.entry(dialog).or_default();
        *turn += 1;
        // LINES[0] is the wake word, heard by kwd; the questions follow it.
        let Some(expected) = speech_ms.get(*turn) else {
            continue;
        };
        let audio_ms: u64 = fields["audio_ms"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        let said = fields["text"].as_str().unwrap_or_default().to_owned();
        let last = texts
            .get(*turn)
            .and_then(|t| plain_words(t).pop())
            .unwrap_or_default();
        let whole = plain_words(&said).contains(&last);
        lines.push((said, audio_ms < *expected && !whole));
    }
    let cut = lines.iter().filter(|(_, cut)| *cut).count();
    (cut, lines)
}
