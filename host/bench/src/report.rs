//! The report of one benchmark: p50/p95 of each dialog timing in app.log beside its design
//! target, process usage, cut-short user lines and playback underruns, printed as a table
//! and written to `bench.json` (and the chart to `bench.png`).

use std::path::Path;

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

/// One timing of [`STAGES`] over the benchmark, as printed, charted and written to bench.json.
#[derive(Debug, serde::Serialize)]
pub(super) struct Stage {
    pub(super) name: String,
    pub(super) samples: usize,
    pub(super) p50_ms: Option<f64>,
    pub(super) p95_ms: Option<f64>,
    pub(super) target_ms: Option<f64>,
}

/// The `p` quantile (0 to 1) of `sorted`, nearest rank; `None` when empty.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).copied()
}

/// Prints the report of the benchmark whose app.log is `app_log` and writes bench.json and
/// bench.png into `out`.
pub(super) fn report(
    app_log: &Path,
    usage: &Sampled,
    out: &Path,
    runs: u32,
    endpoint: &str,
    speech_ms: &[u64],
) -> Result<(), String> {
    let text =
        std::fs::read_to_string(app_log).map_err(|e| format!("{}: {e}", app_log.display()))?;
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let stages: Vec<Stage> = STAGES
        .iter()
        .map(|(name, event, field, target)| {
            let mut v: Vec<f64> = lines
                .iter()
                .filter(|l| l["event"] == *event)
                .filter_map(|l| l["fields"][*field].as_str()?.parse().ok())
                .collect();
            v.sort_by(f64::total_cmp);
            Stage {
                name: (*name).to_owned(),
                samples: v.len(),
                p50_ms: percentile(&v, 0.5),
                p95_ms: percentile(&v, 0.95),
                target_ms: *target,
            }
        })
        .collect();
    let fmt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
    println!(
        "\nvoicehost bench: {runs} run(s) of the happy path (2 turns each), endpoint = {endpoint}\n"
    );
    println!(
        "{:<36} {:>4} {:>9} {:>9} {:>10}",
        "stage", "n", "p50 ms", "p95 ms", "target ms"
    );
    for s in &stages {
        let verdict = match (s.p95_ms, s.target_ms) {
            (Some(p), Some(t)) if p <= t => "  ok",
            (Some(_), Some(_)) => "  over",
            _ => "",
        };
        println!(
            "{:<36} {:>4} {:>9} {:>9} {:>10}{verdict}",
            s.name,
            s.samples,
            fmt(s.p50_ms),
            fmt(s.p95_ms),
            fmt(s.target_ms)
        );
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
        "\nUSER lines cut short (utterance audio shorter than the line): {cut} of {}",
        users.len()
    );
    for (line, _) in users.iter().filter(|(_, cut)| *cut) {
        println!("  cut: {line}");
    }
    // Gaps in the assistant's speech: synthesis fell behind playback (target: none).
    let underruns: Vec<f64> = lines
        .iter()
        .filter(|l| l["event"] == "underrun")
        .filter_map(|l| l["fields"]["duration_ms"].as_str()?.parse().ok())
        .collect();
    println!(
        "playback underruns (gaps in a reply): {} lasting {:.0} ms in all (target: 0)",
        underruns.len(),
        underruns.iter().sum::<f64>()
    );
    let json = serde_json::json!({
        "runs": runs,
        "endpoint": endpoint,
        "stages": stages,
        "usage": usage,
        "underruns": { "count": underruns.len(), "total_ms": underruns.iter().sum::<f64>() },
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v = [10.0, 20.0, 30.0, 40.0, 100.0];
        assert_eq!(percentile(&v, 0.5), Some(30.0));
        assert_eq!(percentile(&v, 0.95), Some(100.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
