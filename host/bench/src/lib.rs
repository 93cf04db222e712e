//! `voicehost bench`: the happy path (wake word → acknowledgement → question → reply →
//! follow-up → reply → "what time is it" → a skill's reply → silence) N times on the real plugins, spoken by espeak-ng into stt's
//! capture (`SetInput`) as a person would: each line once the assistant stopped talking.
//! Prints p50/p95 of every dialog timing from app.log beside the design targets (a skill's
//! answer split into tts's part and the rest, which should stay under 50 ms), CPU and
//! peak RSS per plugin process (and GPU memory where NVML works), and writes
//! `bench.json` and a chart `bench.png` into the output directory.
//!
//! With several `--endpoint` modes (default `silence,turn_model`) each runs in a voicehost
//! process of its own (`--out DIR/<mode>`), and the end-of-speech latencies and the user
//! lines cut short are compared side by side.
//!
//! The assistant is the caller's: this crate drives anything that implements
//! [`Assistant`] (the `voicehost` crate's `Config`, which runs the whole host in this
//! process), and the comparison re-runs the current executable's `bench` subcommand with
//! [`BenchArgs`].

mod acoustic;
mod assistant;
mod compare;
mod lines;
mod measure;
mod plot;
mod report;
mod sampler;
pub mod sound_server;

use std::path::{Path, PathBuf};

pub use assistant::{Assistant, AssistantError};

/// The `[stt] endpoint` modes `--endpoint` takes.
const ENDPOINTS: [&str; 3] = ["silence", "smart", "turn_model"];

/// `voicehost bench`'s flags.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[arg(long, default_value = "config/config.txt")]
    config: PathBuf,
    /// How many times the scenario runs.
    #[arg(long, default_value_t = 5)]
    runs: u32,
    /// Where the scripts, logs, the assistant's WAV, bench.json and bench.png go.
    #[arg(long, default_value = "bench-out")]
    out: PathBuf,
    /// stt endpointing modes to compare (`[stt] endpoint`: silence, smart, turn_model),
    /// each in a run of its own.
    #[arg(long, value_delimiter = ',', default_value = "silence,turn_model")]
    endpoint: Vec<String>,
    /// On real sound devices: a PulseAudio server of the benchmark's own (a speaker, a
    /// microphone, an echo path between them), the assistant on its default devices, and
    /// the latencies a user hears measured from a recording of both.
    #[arg(long)]
    acoustic: bool,
    /// Set by `--acoustic` for the run on the sound server it started.
    #[arg(long, hide = true)]
    on_sound_server: bool,
}

impl BenchArgs {
    /// The config file `--config` names.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// The arguments of a `voicehost bench` that runs endpoint `mode` into `out`, as this one
    /// would otherwise.
    fn child_args(&self, mode: &str, out: &Path) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec!["bench".into(), "--config".into()];
        args.push(self.config.clone().into());
        args.extend(["--runs".into(), self.runs.to_string().into()]);
        args.extend(["--endpoint".into(), mode.into(), "--out".into()]);
        args.push(out.into());
        if self.acoustic {
            args.push("--acoustic".into());
        }
        args
    }
}

/// Runs the benchmark on `assistant` (loaded from `args.config()`); the error says what
/// failed.
pub fn main(args: BenchArgs, assistant: impl Assistant) -> Result<(), String> {
    if args.runs == 0 || args.runs > 1000 {
        return Err(format!(
            "--runs {} is out of range; use 1 to 1000",
            args.runs
        ));
    }
    for mode in &args.endpoint {
        if !ENDPOINTS.contains(&mode.as_str()) {
            return Err(format!(
                "--endpoint {mode:?} is unknown; use silence, smart, turn_model or several, \
                 e.g. silence,smart,turn_model"
            ));
        }
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create --out {}: {e}", args.out.display()))?;
    let out = std::fs::canonicalize(&args.out).map_err(|e| e.to_string())?;
    if args.endpoint.len() > 1 {
        return compare::compare(&args, &out);
    }
    let mode = args
        .endpoint
        .first()
        .map_or_else(|| "silence".to_owned(), String::clone);
    if args.acoustic && !args.on_sound_server {
        return acoustic::on_sound_server(&args.child_args(&mode, &out));
    }
    measure::run(assistant, &out, args.runs, &mode, args.acoustic)
}
