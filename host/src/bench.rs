//! `voicehost bench`: the happy path (wake word → acknowledgement → question → reply →
//! follow-up → reply → silence) N times on the real plugins, spoken by espeak-ng into stt's
//! capture (`SetInput`) as a person would: each line once the assistant stopped talking.
//! Prints p50/p95 of every dialog timing from app.log beside the design targets, CPU and
//! peak RSS per plugin process (and GPU memory where NVML works), and writes
//! `bench.json` and a chart `bench.png` into the output directory.
//!
//! With several `--endpoint` modes (default `silence,smart`) each runs in a voicehost
//! process of its own (`--out DIR/<mode>`), and the end-of-speech latencies and the user
//! lines cut short are compared side by side.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio_stream::StreamExt;
use voicehost_proto::common::v1::DialogRef;
use voicehost_proto::loader::v1::loader_service_client::LoaderServiceClient;
use voicehost_proto::loader::v1::{GetPidsRequest, ShutdownRequest};
use voicehost_proto::stt::v1::SetInputRequest;
use voicehost_proto::stt::v1::stt_service_client::SttServiceClient;
use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;
use voicehost_proto::tts::v1::{PlaybackEvent, PlaybackEventKind};

use crate::config::Config;
use crate::host::endpoint;
use crate::service::Service;

/// The timings reported, their app.log event and field, and the design target (ms).
const STAGES: &[(&str, &str, &str, Option<f64>)] = &[
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

/// The user's lines; `|` is a 900 ms pause mid-sentence (smart endpointing must wait it out).
const LINES: [(&str, &str); 3] = [
    ("wake", "Alexa"),
    ("question", "What is the capital of France?"),
    ("follow_up", "And what about | Germany?"),
];

/// A pause inside a line.
const PAUSE_MS: usize = 900;

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
    /// stt endpointing modes to compare (`[stt] endpoint`), each in a run of its own.
    #[arg(long, value_delimiter = ',', default_value = "silence,smart")]
    endpoint: Vec<String>,
}

impl BenchArgs {
    pub fn config(&self) -> &Path {
        &self.config
    }
}

/// Runs the benchmark; the error says what failed.
pub fn main(args: BenchArgs, mut config: Config) -> Result<(), String> {
    if args.runs == 0 || args.runs > 1000 {
        return Err(format!(
            "--runs {} is out of range; use 1 to 1000",
            args.runs
        ));
    }
    for mode in &args.endpoint {
        if mode != "silence" && mode != "smart" {
            return Err(format!(
                "--endpoint {mode:?} is unknown; use silence, smart or silence,smart"
            ));
        }
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create --out {}: {e}", args.out.display()))?;
    let out = std::fs::canonicalize(&args.out).map_err(|e| e.to_string())?;
    if args.endpoint.len() > 1 {
        return compare(&args, &out);
    }
    let mode = args
        .endpoint
        .first()
        .map_or_else(|| "silence".to_owned(), String::clone);
    config.set_plugin_key(Service::Stt, "endpoint", &mode);
    let mut speech_ms = Vec::new();
    for (name, text) in LINES {
        speech_ms.push(espeak(text, &out.join(format!("{name}.wav")))?);
    }
    config.system.log_dir = out.join("logs");
    let _ = std::fs::remove_dir_all(&config.system.log_dir);
    config.set_plugin_key(Service::Stt, "input", "null");
    config.set_plugin_key(Service::Stt, "input_echo", "0.5@80");
    config.set_plugin_key(
        Service::Tts,
        "output",
        &format!("wav:{}", out.join("assistant.wav").display()),
    );
    config.set_plugin_key(Service::Tts, "output_pacing", "realtime");
    let ports: BTreeMap<Service, u16> =
        config.plugins.iter().map(|p| (p.service, p.port)).collect();
    let bind = config.loader.bind_addr.to_string();
    let admin_port = config.loader.admin_port;
    let app_log = config.system.log_dir.join("app.log");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let host = tokio::spawn(crate::run::run(config, None));
        wait_log(&app_log, "host_ready", 1, Duration::from_secs(300)).await?;
        let channel =
            |svc: Service| endpoint(&bind, ports.get(&svc).copied().unwrap_or(0)).connect_lazy();
        let mut admin = LoaderServiceClient::new(endpoint(&bind, admin_port).connect_lazy());
        let sampler = Sampler::start(admin.clone());
        let mut stt = SttServiceClient::new(channel(Service::Stt));
        let mut playback = TtsServiceClient::new(channel(Service::Tts))
            .playback_events(DialogRef {
                dialog_id: String::new(),
            })
            .await
            .map_err(|s| format!("tts PlaybackEvents: {}", s.message()))?
            .into_inner();
        let started = Instant::now();
        for run in 1..=args.runs {
            let say = |name: &str| SetInputRequest {
                input: format!("wav:{}", out.join(format!("{name}.wav")).display()),
            };
            stt.set_input(say("wake"))
                .await
                .map_err(|s| s.message().to_owned())?;
            finished(&mut playback, false).await?;
            stt.set_input(say("question"))
                .await
                .map_err(|s| s.message().to_owned())?;
            finished(&mut playback, true).await?;
            tokio::time::sleep(Duration::from_millis(800)).await;
            stt.set_input(say("follow_up"))
                .await
                .map_err(|s| s.message().to_owned())?;
            finished(&mut playback, true).await?;
            wait_log(
                &app_log,
                "dialog_ended",
                run as usize,
                Duration::from_secs(30),
            )
            .await?;
            eprintln!(
                "run {run}/{} done ({} s)",
                args.runs,
                started.elapsed().as_secs()
            );
        }
        let usage = sampler.stop().await;
        let _ = admin.shutdown(ShutdownRequest {}).await;
        let _ = host.await;
        report(&app_log, &usage, &out, args.runs, &mode, &speech_ms)
    })
}

/// Runs every `--endpoint` mode in a voicehost process of its own and compares them.
fn compare(args: &BenchArgs, out: &Path) -> Result<(), String> {
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
            .arg("bench")
            .arg("--config")
            .arg(&args.config)
            .args([
                "--runs",
                &args.runs.to_string(),
                "--endpoint",
                mode,
                "--out",
            ])
            .arg(&dir)
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
        "{:<9} {:>21} {:>21} {:>12}",
        "endpoint", "speech end → text", "speech end → audio", "USER lines"
    );
    println!(
        "{:<9} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "", "p50 ms", "p95 ms", "p50 ms", "p95 ms", "cut/total"
    );
    for (mode, json) in &results {
        println!(
            "{mode:<9} {:>10} {:>10} {:>10} {:>10} {:>12}",
            fmt(stage(json, STAGES[1].0, "p50_ms")),
            fmt(stage(json, STAGES[1].0, "p95_ms")),
            fmt(stage(json, STAGES[4].0, "p50_ms")),
            fmt(stage(json, STAGES[4].0, "p95_ms")),
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
    if let (Some(silence), Some(smart)) = (p50("silence"), p50("smart")) {
        println!(
            "
end of speech → first reply audio, p50: smart is {:.0} ms {} than silence",
            (silence - smart).abs(),
            if smart <= silence { "lower" } else { "higher" }
        );
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

/// Every final transcript of the user's questions (from app.log's `stt_final`, in order
/// per dialog: the n-th is the n-th spoken question), each with whether it was cut short:
/// its audio is shorter than the question's speech (`speech_ms`, pauses included), i.e.
/// the utterance ended before the speaker did. A misheard but whole line is not cut.
fn user_lines(app_log: &Path, speech_ms: &[u64]) -> (usize, Vec<(String, bool)>) {
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
        lines.push((said, audio_ms < *expected));
    }
    let cut = lines.iter().filter(|(_, cut)| *cut).count();
    (cut, lines)
}

/// Waits for the next FINISHED playback event in a dialog (`in_dialog`) or outside one.
async fn finished(
    events: &mut tonic::Streaming<PlaybackEvent>,
    in_dialog: bool,
) -> Result<(), String> {
    let wait = async {
        while let Some(ev) = events.next().await {
            let ev = ev.map_err(|s| format!("tts playback events: {}", s.message()))?;
            if ev.kind() == PlaybackEventKind::Finished && ev.dialog_id.is_empty() != in_dialog {
                return Ok(());
            }
        }
        Err("tts playback events ended".to_owned())
    };
    tokio::time::timeout(Duration::from_secs(90), wait)
        .await
        .map_err(|_| {
            "the assistant did not answer within 90 s; see the app.log in --out".to_owned()
        })?
}

async fn wait_log(path: &Path, event: &str, count: usize, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let needle = format!("\"event\":\"{event}\"");
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.matches(&needle).count() >= count {
            return Ok(());
        }
        if text.contains("\"event\":\"fatal\"") || Instant::now() > deadline {
            return Err(format!(
                "no {event} #{count} in {} within {} s",
                path.display(),
                limit.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `text` spoken by espeak-ng into `wav`, with 1 s of silence before and after (a person
/// does not start talking the instant the assistant stops); each `|` is a pause of
/// [`PAUSE_MS`]. Returns how long the speech lasts (pauses included, padding not), in ms.
fn espeak(text: &str, wav: &Path) -> Result<u64, String> {
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

/// CPU and memory of one process over the run.
#[derive(Debug, Default, Clone, serde::Serialize)]
struct Usage {
    cpu_percent: f64,
    peak_rss_mb: f64,
    #[serde(skip)]
    first: Option<(Instant, u64)>,
    #[serde(skip)]
    last: Option<(Instant, u64)>,
}

#[derive(Debug, Default, serde::Serialize)]
struct Sampled {
    processes: BTreeMap<String, Usage>,
    /// Most GPU memory in use (MiB) during the run, where NVML works.
    gpu_used_mb: Option<u64>,
}

struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Sampled>,
}

impl Sampler {
    /// Samples /proc for the host and every plugin process four times a second.
    fn start(mut admin: LoaderServiceClient<tonic::transport::Channel>) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut s = Sampled::default();
            let gpu = crate::gpu::NvmlProbe;
            while !flag.load(Ordering::SeqCst) {
                if let Ok(pids) = admin.get_pids(GetPidsRequest {}).await {
                    let pids = pids.into_inner();
                    let mut all = vec![("host".to_owned(), pids.host_pid)];
                    all.extend(pids.services.into_iter().map(|p| (p.name, p.pid)));
                    for (name, pid) in all.into_iter().filter(|(_, pid)| *pid != 0) {
                        let u = s.processes.entry(name).or_default();
                        if let Some((ticks, rss)) = proc_stat(pid) {
                            let now = (Instant::now(), ticks);
                            u.first.get_or_insert(now);
                            u.last = Some(now);
                            u.peak_rss_mb = u.peak_rss_mb.max(rss);
                        }
                    }
                }
                if let Ok(Some(m)) = crate::gpu::GpuProbe::memory(&gpu) {
                    let used = m.total_mb - m.free_mb;
                    s.gpu_used_mb = Some(s.gpu_used_mb.unwrap_or(0).max(used));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            for u in s.processes.values_mut() {
                if let (Some((t0, c0)), Some((t1, c1))) = (u.first, u.last) {
                    let secs = (t1 - t0).as_secs_f64().max(1e-3);
                    // SAFETY: sysconf only reads a constant.
                    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
                    u.cpu_percent = (c1 - c0) as f64 / hz / secs * 100.0;
                }
            }
            s
        });
        Sampler { stop, task }
    }

    async fn stop(self) -> Sampled {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap_or_default()
    }
}

/// utime + stime (clock ticks) and resident memory (MiB) of `pid`.
fn proc_stat(pid: u32) -> Option<(u64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks, rss_kb / 1024.0))
}

#[derive(Debug, serde::Serialize)]
struct Stage {
    name: String,
    samples: usize,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
    target_ms: Option<f64>,
}

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(i).copied()
}

fn report(
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

/// A horizontal bar chart: p50 and p95 per stage, with the target marked.
fn chart(stages: &[Stage], path: &Path) -> Result<(), String> {
    use plotters::prelude::*;
    const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
    let font = std::fs::read(FONT)
        .map_err(|e| format!("{FONT}: {e}; install it: apt-get install fonts-dejavu-core"))?;
    plotters::style::register_font(
        "sans-serif",
        FontStyle::Normal,
        Box::leak(font.into_boxed_slice()),
    )
    .map_err(|_| format!("{FONT} is not a usable font"))?;
    let err = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    let max = stages
        .iter()
        .flat_map(|s| [s.p95_ms, s.target_ms])
        .flatten()
        .fold(100.0, f64::max)
        * 1.1;
    let n = stages.len();
    let root = BitMapBackend::new(path, (1100, 120 + 70 * n as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut c = ChartBuilder::on(&root)
        .caption(
            "voicehost dialog latency (p50 dark, p95 light, target red)",
            ("sans-serif", 22),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(10)
        .build_cartesian_2d(0.0..max, 0.0..n as f64)
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("ms")
        .label_style(("sans-serif", 15))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, s) in stages.iter().enumerate() {
        let y = (n - 1 - i) as f64;
        if let Some(p95) = s.p95_ms {
            c.draw_series([Rectangle::new(
                [(0.0, y + 0.2), (p95, y + 0.8)],
                RGBColor(158, 202, 225).filled(),
            )])
            .map_err(|e| err(&e))?;
        }
        if let Some(p50) = s.p50_ms {
            c.draw_series([Rectangle::new(
                [(0.0, y + 0.3), (p50, y + 0.7)],
                RGBColor(33, 113, 181).filled(),
            )])
            .map_err(|e| err(&e))?;
        }
        let label = format!(
            "{}: p50 {} ms, p95 {} ms{}",
            s.name,
            s.p50_ms.map_or("-".to_owned(), |v| format!("{v:.0}")),
            s.p95_ms.map_or("-".to_owned(), |v| format!("{v:.0}")),
            s.target_ms
                .map_or(String::new(), |t| format!(", target {t:.0} ms"))
        );
        c.draw_series([Text::new(label, (max * 0.005, y + 1.0), ("sans-serif", 15))])
            .map_err(|e| err(&e))?;
        if let Some(t) = s.target_ms {
            c.draw_series([PathElement::new(
                vec![(t, y + 0.05), (t, y + 0.75)],
                RED.stroke_width(3),
            )])
            .map_err(|e| err(&e))?;
        }
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_the_chart() {
        let v = [10.0, 20.0, 30.0, 40.0, 100.0];
        assert_eq!(percentile(&v, 0.5), Some(30.0));
        assert_eq!(percentile(&v, 0.95), Some(100.0));
        assert_eq!(percentile(&[], 0.5), None);
        let stages: Vec<Stage> = STAGES
            .iter()
            .map(|(name, _, _, target)| Stage {
                name: (*name).to_owned(),
                samples: 2,
                p50_ms: Some(120.0),
                p95_ms: Some(300.0),
                target_ms: *target,
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("bench.png");
        chart(&stages, &png).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000);
        if let Ok(keep) = std::env::var("VOICEHOST_KEEP_CHART") {
            std::fs::copy(&png, keep).unwrap();
        }
    }
}
