//! The report of one benchmark: p50/p95 of each dialog timing in app.log beside its design
//! target, process usage, cut-short user lines and playback underruns, printed as a table
//! and written to `bench.json` (and the chart to `bench.png`).

use std::path::Path;

use crate::acoustic::Timings;
use crate::lines::user_lines;
use crate::plot::chart;
use crate::sampler::Sampled;

/// The timings reported, their app.log event and field, and the design target (ms).
pub(super) const STAGES: &[(&str, &str, &str, Option<f64>)] = &[
    (
        "wake → acknowledgement audio",
        "ack_played",
        "wake_to_ack_ms",
        Some(200.0),
    ),
    (
        "end of speech → final text",
        "turn_timing",
        "speech_end_to_text_ms",
        None,
    ),
    (
        "request → first token",
        "turn_timing",
        "request_to_first_token_ms",
        Some(800.0),
    ),
    (
        "first chunk → first audio",
        "turn_timing",
        "first_chunk_to_first_audio_ms",
        Some(150.0),
    ),
    (
        "end of speech → first reply audio",
        "turn_timing",
        "speech_end_to_first_audio_ms",
        None,
    ),
];

/// The most a built-in skill's answer may add to tts's own time to its first audio: final
/// text → match → Speak → (tts: first clause synthesised and queued) → first audio.
const SKILL_OVERHEAD_MS: f64 = 50.0;

/// A number field of an app.log line (written as a string or a number).
fn field(line: &serde_json::Value, name: &str) -> Option<f64> {
    let v = &line["fields"][name];
    v.as_f64().or_else(|| v.as_str()?.parse().ok())
}

/// The skill turns' timings (`skill_matched`, with tts's `tts_first_audio` of the same
/// utterance): final text → first audio, of which tts's Speak → first audio, and the rest.
fn skill_samples(lines: &[serde_json::Value]) -> [(&'static str, Vec<f64>, Option<f64>); 4] {
    let tts_ms = |utterance: f64| {
        lines
            .iter()
            .filter(|l| l["event"] == "tts_first_audio")
            .find(|l| field(l, "utterance") == Some(utterance))
            .and_then(|l| field(l, "ms"))
    };
    let (mut total, mut tts, mut rest, mut speech_end) = (vec![], vec![], vec![], vec![]);
    for l in lines.iter().filter(|l| l["event"] == "skill_matched") {
        let (Some(matched_us), Some(to_audio)) = (
            field(l, "text_to_match_us"),
            field(l, "match_to_first_audio_ms"),
        ) else {
            continue;
        };
        let text_to_audio = matched_us / 1000.0 + to_audio;
        total.push(text_to_audio);
        speech_end.extend(field(l, "speech_end_to_first_audio_ms"));
        if let Some(t) = field(l, "utterance").and_then(tts_ms) {
            tts.push(t);
            rest.push(text_to_audio - t);
        }
    }
    [
        ("skill: final text → first audio", total, None),
        ("  of it tts: Speak → first audio", tts, None),
        ("  of it skill + dialog", rest, Some(SKILL_OVERHEAD_MS)),
        ("skill: end of speech → first audio", speech_end, None),
    ]
}

/// One timing of [`STAGES`] over the benchmark, as printed, charted and written to bench.json.
#[derive(Debug, serde::Serialize)]
pub(super) struct Stage {
    pub(super) name: String,
    pub(super) samples: usize,
    pub(super) p50_ms: Option<f64>,
    pub(super) p95_ms: Option<f64>,
    /// The most its p95 may be.
    pub(super) target_ms: Option<f64>,
    /// The most its p50 may be, where the target is on the median.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) target_p50_ms: Option<f64>,
}

/// The acoustic stage a user feels most: the silence after their question.
pub(super) const QUESTION_TO_REPLY: &str = "sound: end of question → reply";

/// The acoustic stages, measured from the recording, against their targets: the
/// acknowledgement and barge-in on the median, the reply on the median and p95.
fn acoustic_stages(t: &Timings) -> [Stage; 3] {
    [
        summarise(
            "sound: end of Alexa → ack",
            &t.wake_to_ack,
            Some(150.0),
            None,
        ),
        summarise(
            QUESTION_TO_REPLY,
            &t.question_to_reply,
            Some(800.0),
            Some(1500.0),
        ),
        summarise(
            "sound: barge-in onset → quiet",
            &t.barge_in_to_quiet,
            Some(300.0),
            None,
        ),
    ]
}

/// `samples` as a [`Stage`] with its targets.
fn summarise(name: &str, samples: &[f64], target_p50: Option<f64>, target: Option<f64>) -> Stage {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    Stage {
        name: name.to_owned(),
        samples: v.len(),
        p50_ms: percentile(&v, 0.5),
        p95_ms: percentile(&v, 0.95),
        target_ms: target,
        target_p50_ms: target_p50,
    }
}

/// The `p` quantile (0 to 1) of `sorted`, nearest rank; `None` when empty.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).copied()
}

/// What the benchmark did, beside app.log: the report's input.
pub(super) struct Outcome<'a> {
    pub(super) runs: u32,
    /// `[stt] endpoint`.
    pub(super) endpoint: &'a str,
    /// Each user line's speech (ms), in the order spoken.
    pub(super) speech_ms: &'a [u64],
    /// The timings measured from the recording (`--acoustic`).
    pub(super) acoustic: Option<&'a Timings>,
    /// Lines that got no reply.
    pub(super) unanswered: &'a [String],
}

/// Prints the report of the benchmark whose app.log is `app_log` and writes bench.json and
/// bench.png into `out`.
pub(super) fn report(
    app_log: &Path,
    usage: &Sampled,
    out: &Path,
    outcome: &Outcome<'_>,
) -> Result<(), String> {
    let Outcome {
        runs,
        endpoint,
        speech_ms,
        acoustic,
        unanswered,
    } = *outcome;
    let text =
        std::fs::read_to_string(app_log).map_err(|e| format!("{}: {e}", app_log.display()))?;
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let stage = |name: &str, v: Vec<f64>, target: Option<f64>| summarise(name, &v, None, target);
    let mut stages: Vec<Stage> = STAGES
        .iter()
        .map(|(name, event, name_in_log, target)| {
            let v = lines
                .iter()
                .filter(|l| l["event"] == *event)
                .filter_map(|l| field(l, name_in_log))
                .collect();
            stage(name, v, *target)
        })
        .collect();
    stages.extend(
        skill_samples(&lines)
            .into_iter()
            .map(|(name, v, target)| stage(name, v, target)),
    );
    if let Some(t) = acoustic {
        stages.extend(acoustic_stages(t));
    }
    let fmt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
    let room = if acoustic.is_some() {
        "on a sound server (the stages marked sound: measured from its recording)"
    } else {
        "WAV in and out"
    };
    println!(
        "\nvoicehost bench: {runs} run(s) of the happy path (2 turns for the model, 1 for a skill), endpoint = {endpoint}, {room}\n"
    );
    println!(
        "{:<36} {:>4} {:>9} {:>9} {:>15}",
        "stage", "n", "p50 ms", "p95 ms", "target ms"
    );
    for s in &stages {
        let within = |p: Option<f64>, t: Option<f64>| match (p, t) {
            (Some(p), Some(t)) => Some(p <= t),
            _ => None,
        };
        let verdict = match (
            within(s.p50_ms, s.target_p50_ms),
            within(s.p95_ms, s.target_ms),
        ) {
            (None, None) => "",
            (Some(false), _) | (_, Some(false)) => "  over",
            _ => "  ok",
        };
        let target = match (s.target_p50_ms, s.target_ms) {
            (Some(p50), Some(p95)) => format!("p50 {p50:.0} p95 {p95:.0}"),
            (Some(p50), None) => format!("p50 {p50:.0}"),
            (None, t) => fmt(t),
        };
        println!(
            "{:<36} {:>4} {:>9} {:>9} {target:>15}{verdict}",
            s.name,
            s.samples,
            fmt(s.p50_ms),
            fmt(s.p95_ms),
        );
    }
    let questions = acoustic
        .map(|t| per_question(t, &lines))
        .unwrap_or_default();
    if let Some(t) = acoustic {
        for note in &t.notes {
            println!("  not measured: {note}");
        }
        println!("\neach question, end of speech → first reply sound (ms): sound | software");
        for q in &questions {
            println!(
                "  {:<14} {:>6} | {:>6}",
                q.line,
                format!("{:.0}", q.sound_ms),
                fmt(q.software_ms)
            );
        }
    }
    println!("\n{:<10} {:>8} {:>14}", "process", "CPU %", "peak RSS MiB");
    for (name, u) in &usage.processes {
        println!("{name:<10} {:>8.1} {:>14.0}", u.cpu_percent, u.peak_rss_mb);
    }
    match usage.gpu_used_mb {
        Some(mb) => println!("GPU memory in use (peak): {mb} MiB"),
        None => println!("GPU memory: no NVIDIA driver (NVML) on this machine"),
    }
    let (cut, users) = user_lines(app_log, speech_ms);
    println!(
        "\nUSER lines cut short (utterance audio shorter than the line, its last word missing): {cut} of {}",
        users.len()
    );
    for (line, _) in users.iter().filter(|(_, cut)| *cut) {
        println!("  cut: {line}");
    }
    for line in unanswered {
        println!("not answered (the run went on with its next wake word): {line}");
    }
    // Gaps in the assistant's speech: synthesis fell behind playback (target: none).
    let underruns: Vec<f64> = lines
        .iter()
        .filter(|l| l["event"] == "underrun")
        .filter_map(|l| l["fields"]["duration_ms"].as_str()?.parse().ok())
        .collect();
    // `+ 0.0`: the sum of no floats is -0.0.
    let underrun_ms = underruns.iter().sum::<f64>() + 0.0;
    println!(
        "playback underruns (gaps in a reply): {} lasting {underrun_ms:.0} ms in all (target: 0)",
        underruns.len(),
    );
    let json = serde_json::json!({
        "runs": runs,
        "endpoint": endpoint,
        "acoustic": acoustic.is_some(),
        "unanswered": unanswered,
        "stages": stages,
        "questions": questions,
        "usage": usage,
        "underruns": { "count": underruns.len(), "total_ms": underrun_ms },
        "user_lines": {
            "total": users.len(),
            "cut": cut,
            "lines": users.iter().map(|(l, c)| serde_json::json!({"text": l, "cut": c})).collect::<Vec<_>>(),
        },
    });
    let json_path = out.join("bench.json");
    std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("{}: {e}", json_path.display()))?;
    let png = out.join("bench.png");
    chart(&stages, &png)?;
    println!("\nwrote {} and {}", json_path.display(), png.display());
    Ok(())
}

/// One question's latency as the recording measured it, beside the host's own figure
/// (VAD speech end → first sample out) for the same turn.
#[derive(Debug, serde::Serialize)]
struct Question {
    line: String,
    sound_ms: f64,
    /// `None` where the log does not say (a reply cut short, a line not transcribed).
    software_ms: Option<f64>,
}

/// The measured questions, each with the host's `speech_end_to_first_audio_ms` of its
/// reply (a skill's or the model's): the first `user_said` after the line's speech ended
/// is its turn, and the reply carries the same dialog and turn.
fn per_question(t: &Timings, lines: &[serde_json::Value]) -> Vec<Question> {
    let key = |l: &serde_json::Value| {
        (
            l["fields"]["dialog"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            l["fields"]["turn"].as_str().unwrap_or_default().to_owned(),
        )
    };
    let software = |ended: f64| {
        let said = lines.iter().find(|l| {
            l["event"] == "user_said" && l["ts"].as_str().and_then(unix_ms) > Some(ended)
        })?;
        lines
            .iter()
            .filter(|l| l["event"] == "turn_timing" || l["event"] == "skill_matched")
            .find(|l| key(l) == key(said))
            .and_then(|l| field(l, "speech_end_to_first_audio_ms"))
    };
    t.questions
        .iter()
        .map(|(line, ended, ms)| Question {
            line: line.clone(),
            sound_ms: *ms,
            software_ms: software(*ended),
        })
        .collect()
}

/// A log timestamp (`2026-12-06T18:43:12.970213Z`, UTC) in ms since the Unix epoch.
fn unix_ms(ts: &str) -> Option<f64> {
    let t = chrono::DateTime::parse_from_rfc3339(ts).ok()?;
    Some(t.timestamp_micros() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_timestamps_in_unix_ms() {
        assert_eq!(unix_ms("1970-01-01T00:00:01.5Z"), Some(1500.0));
        // 2026-12-06 is day 20,793 of the epoch.
        let ms = unix_ms("2026-12-06T18:43:12.970Z").unwrap();
        assert!(
            (ms - (20_793.0 * 86_400_000.0 + 67_392_970.0)).abs() < 0.01,
            "{ms}"
        );
        assert_eq!(unix_ms("18:43:12"), None);
    }

    #[test]
    fn percentiles() {
        let v = [10.0, 20.0, 30.0, 40.0, 100.0];
        assert_eq!(percentile(&v, 0.5), Some(30.0));
        assert_eq!(percentile(&v, 0.95), Some(100.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
