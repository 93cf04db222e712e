//! `--endpoint` with several modes: each mode benchmarked by a voicehost process of its
//! own into `--out DIR/<mode>`, then their end-of-speech latencies and cut-short user lines
//! printed side by side and written to `bench-endpoints.json`.

use std::path::Path;

use crate::BenchArgs;
use crate::report::{QUESTION_TO_REPLY, STAGES};

/// Runs every `--endpoint` mode in a voicehost process of its own and compares them.
pub(super) fn compare(args: &BenchArgs, out: &Path) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find voicehost: {e}"))?;
    let mut results = Vec::new();
    for mode in &args.endpoint {
        let dir = out.join(mode);
        eprintln!(
            "== endpoint = {mode} ({} runs, into {})",
            args.runs,
            dir.display()
        );
        let status = std::process::Command::new(&exe)
            .args(args.child_args(mode, &dir))
            .status()
            .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
        if !status.success() {
            return Err(format!("the {mode} run failed; see {}", dir.display()));
        }
        let path = dir.join("bench.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        results.push((mode.clone(), json));
    }
    let stage = |json: &serde_json::Value, name: &str, key: &str| {
        json["stages"]
            .as_array()
            .and_then(|stages| stages.iter().find(|s| s["name"] == name))
            .and_then(|s| s[key].as_f64())
    };
    let fmt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.0}"));
    println!(
        "
voicehost bench: endpointing compared, {} run(s) each
",
        args.runs
    );
    println!(
        "{:<11} {:>21} {:>21} {:>21} {:>12}",
        "endpoint", "speech end → text", "speech end → audio", "heard: end → reply", "USER lines"
    );
    println!(
        "{:<11} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "", "p50 ms", "p95 ms", "p50 ms", "p95 ms", "p50 ms", "p95 ms", "cut/total"
    );
    for (mode, json) in &results {
        println!(
            "{mode:<11} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>12}",
            fmt(stage(json, STAGES[1].0, "p50_ms")),
            fmt(stage(json, STAGES[1].0, "p95_ms")),
            fmt(stage(json, STAGES[4].0, "p50_ms")),
            fmt(stage(json, STAGES[4].0, "p95_ms")),
            fmt(stage(json, QUESTION_TO_REPLY, "p50_ms")),
            fmt(stage(json, QUESTION_TO_REPLY, "p95_ms")),
            format!(
                "{}/{}",
                json["user_lines"]["cut"].as_u64().unwrap_or(0),
                json["user_lines"]["total"].as_u64().unwrap_or(0)
            ),
        );
    }
    let p50 = |mode: &str| {
        results
            .iter()
            .find(|(m, _)| m == mode)
            .and_then(|(_, j)| stage(j, STAGES[4].0, "p50_ms"))
    };
    for (mode, _) in results.iter().filter(|(m, _)| m != "silence") {
        if let (Some(silence), Some(other)) = (p50("silence"), p50(mode)) {
            println!(
                "end of speech → first reply audio, p50: {mode} is {:.0} ms {} than silence",
                (silence - other).abs(),
                if other <= silence { "lower" } else { "higher" }
            );
        }
    }
    let summary = serde_json::json!({
        "runs": args.runs,
        "modes": results.iter().map(|(m, j)| (m.clone(), j.clone())).collect::<serde_json::Map<_, _>>(),
    });
    let path = out.join("bench-endpoints.json");
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
