//! Harness for the end-to-end tests: runs the real `voicehost` binary on a generated
//! config with free ports and a private log directory, and talks to it over gRPC.
//!
//! The binary and plugin libraries come from the workspace's target directory, so run
//! `cargo build --workspace` before `cargo test` (the README's test command does).

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

use std::fmt::Write as _;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use voicehost_proto::loader::v1::loader_service_client::LoaderServiceClient;
use voicehost_proto::loader::v1::{ListServicesRequest, ServiceInfo};

mod audio;
mod peers;

pub use audio::{
    espeak, read_wav_16k, resample_16k, scene, trim_silence, tts_speech, white_noise, write_wav_16k,
};
pub use peers::{WakeReference, openwakeword_reference, peer_python};

/// Threads for the tests' own Whisper transcriptions: one. whisper.cpp's thread pool spins
/// at its barriers, so two threads on a busy 2-core machine took minutes for one clip
/// (one thread: seconds).
pub const WHISPER_THREADS: usize = 1;

/// `target/debug` (or whichever profile built the tests).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_owned()
}

/// Path of a workspace-built artefact, with a clear failure if it is missing.
pub fn artefact(name: &str) -> PathBuf {
    let path = target_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        path.display()
    );
    path
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A lazily connecting gRPC channel to 127.0.0.1:`port`.
pub fn channel(port: u16) -> Channel {
    Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy()
}

/// A config file plus the directory it lives in.
#[derive(Debug)]
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub admin_port: u16,
    pub logger_port: u16,
    sections: String,
    system: String,
    loader: String,
    env: Vec<(String, String)>,
}

impl Setup {
    /// The real logger on a free port; add more sections with [`Setup::section`].
    pub fn new() -> Self {
        let logger_port = free_port();
        let mut setup = Self {
            dir: tempfile::tempdir().unwrap(),
            admin_port: free_port(),
            logger_port,
            sections: String::new(),
            system: String::new(),
            loader: String::new(),
            env: Vec::new(),
        };
        setup.section("logger", &[("port", &logger_port.to_string())]);
        setup
    }

    /// Appends `[name]` with `keys`, where `overrides` replace keys of the same name (or
    /// are added).
    pub fn section_with(
        &mut self,
        name: &str,
        mut keys: Vec<(String, String)>,
        overrides: &[(&str, &str)],
    ) -> &mut Self {
        for (k, v) in overrides {
            keys.retain(|(key, _)| key != k);
            keys.push(((*k).to_owned(), (*v).to_owned()));
        }
        let refs: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.section(name, &refs)
    }

    /// Adds `key = value` to `[system]`.
    pub fn system(&mut self, key: &str, value: &str) -> &mut Self {
        writeln!(self.system, "{key} = {value}").unwrap();
        self
    }

    /// Adds `key = value` to `[loader]`.
    pub fn loader(&mut self, key: &str, value: &str) -> &mut Self {
        writeln!(self.loader, "{key} = {value}").unwrap();
        self
    }

    /// Sets an environment variable for the host process.
    pub fn env(&mut self, key: &str, value: &str) -> &mut Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Appends `[name]` with `keys`.
    pub fn section(&mut self, name: &str, keys: &[(&str, &str)]) -> &mut Self {
        writeln!(self.sections, "[{name}]").unwrap();
        for (k, v) in keys {
            writeln!(self.sections, "{k} = {v}").unwrap();
        }
        self
    }

    /// Adds the misbehaving fixture in the `[tts]` slot with `mode`; returns its port.
    pub fn fixture(&mut self, mode: &str, extra: &[(&str, &str)]) -> u16 {
        let port = free_port();
        let port_s = port.to_string();
        let mut keys: Vec<(&str, &str)> = vec![
            ("library", "libvoicehost_fixture_misbehave.so"),
            ("port", &port_s),
            ("x_fixture_mode", mode),
        ];
        keys.extend_from_slice(extra);
        self.section("tts", &keys);
        port
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    /// Writes the config file and returns its path.
    pub fn write(&self) -> PathBuf {
        let text = format!(
            "[system]\nlog_dir = {}\n{}[loader]\nplugin_dir = {}\nadmin_port = {}\nstop_timeout_ms = 2000\n{}{}",
            self.log_dir().display(),
            self.system,
            target_dir().display(),
            self.admin_port,
            self.loader,
            self.sections
        );
        let path = self.dir.path().join("config.txt");
        fs::write(&path, text).unwrap();
        path
    }

    /// Starts `voicehost run` on this config.
    pub fn spawn(&self) -> HostProc {
        self.spawn_command("run")
    }

    /// Starts `voicehost SUBCOMMAND --config <this config>`, output to files in the dir.
    fn spawn_command(&self, subcommand: &str) -> HostProc {
        let config = self.write();
        let out = self.dir.path().join(format!("{subcommand}.err"));
        let child = Command::new(artefact("voicehost"))
            .args([subcommand, "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(fs::File::create(self.dir.path().join(format!("{subcommand}.out"))).unwrap())
            .stderr(fs::File::create(&out).unwrap())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .spawn()
            .unwrap();
        HostProc { child, out }
    }

    /// Runs `voicehost SUBCOMMAND --config <this config>` to completion (at most `timeout`).
    pub fn run_to_exit(&self, subcommand: &str, timeout: Duration) -> (ExitStatus, String) {
        let mut host = self.spawn_command(subcommand);
        let status = host.wait_exit(timeout).unwrap_or_else(|| {
            host.kill();
            panic!(
                "voicehost {subcommand} did not exit within {timeout:?}; output:\n{}",
                host.output()
            )
        });
        (status, host.output())
    }
}

impl Default for Setup {
    fn default() -> Self {
        Self::new()
    }
}

/// A running `voicehost` process; killed if still running when dropped.
#[derive(Debug)]
pub struct HostProc {
    pub child: Child,
    out: PathBuf,
}

impl HostProc {
    /// Everything the host printed on stderr so far.
    pub fn output(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits until the output contains `needle`; panics with the output on timeout or exit.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.output().contains(needle) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "voicehost exited ({status}) before printing {needle:?}:\n{}",
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} within {timeout:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Waits for `host_ready`.
    pub fn wait_ready(&mut self) {
        self.wait_for("host_ready", Duration::from_secs(20));
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        self.wait_exit(Duration::from_secs(15)).unwrap_or_else(|| {
            self.kill();
            panic!("voicehost did not exit on SIGTERM:\n{}", self.output())
        })
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for HostProc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// Local addresses of TCP sockets in LISTEN state on `port`, as the kernel's hex
/// (`0100007F` is 127.0.0.1).
pub fn listen_addrs(port: u16) -> Vec<String> {
    voicehost_plugin_runtime::net::listening_sockets(port)
        .into_iter()
        .map(|s| s.addr_hex)
        .collect()
}

/// Whether `grpc.health.v1.Health/Check` (overall, or for `service`) on `port` says SERVING.
pub async fn serving(port: u16, service: &str) -> bool {
    let mut health = HealthClient::new(channel(port));
    health
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .is_ok_and(|r| r.get_ref().status() == ServingStatus::Serving)
}

/// One service's entry from the admin API's `ListServices`.
pub async fn service_info(admin_port: u16, name: &str) -> ServiceInfo {
    let mut admin = LoaderServiceClient::new(channel(admin_port));
    let services = admin
        .list_services(ListServicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .services;
    services
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("ListServices has no {name}"))
}

/// Reads a whole file (empty if absent).
pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// The events of an app.log: (event name, svc, fields, timestamp as RFC 3339 text).
pub fn app_events(path: &Path) -> Vec<AppLine> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| AppLine {
            ts: v["ts"].as_str().unwrap_or_default().to_owned(),
            svc: v["svc"].as_str().unwrap_or_default().to_owned(),
            level: v["level"].as_str().unwrap_or_default().to_owned(),
            event: v["event"].as_str().unwrap_or_default().to_owned(),
            fields: v["fields"].clone(),
        })
        .collect()
}

/// The app.log events once every name in `needed` is among them (app.log is written
/// asynchronously by the logger; at most `timeout`).
pub fn wait_app_events(path: &Path, needed: &[&str], timeout: Duration) -> Vec<AppLine> {
    let deadline = Instant::now() + timeout;
    loop {
        let events = app_events(path);
        let missing: Vec<&&str> = needed
            .iter()
            .filter(|n| !events.iter().any(|e| e.event == **n))
            .collect();
        if missing.is_empty() {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "{} has no {missing:?} after {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One app.log line.
#[derive(Debug, Clone)]
pub struct AppLine {
    pub ts: String,
    pub svc: String,
    pub level: String,
    pub event: String,
    pub fields: serde_json::Value,
}

impl AppLine {
    /// A field as text ("" if absent).
    pub fn field(&self, key: &str) -> &str {
        self.fields[key].as_str().unwrap_or_default()
    }
}

/// Processes whose command line holds `voicehost`, `worker` and `--port <port>`.
pub fn workers_on_port(port: u16) -> Vec<u32> {
    let needle = "worker\0--service";
    let port_arg = format!("--port\0{port}\0");
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    let c = String::from_utf8_lossy(&c);
                    c.contains(needle) && c.contains(&port_arg)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Builds the cargo project `project` (a path below the workspace root, a project of its
/// own, outside the workspace) and returns its `library` (`--locked` builds with its
/// committed Cargo.lock unchanged).
///
/// It builds into the workspace's own target directory with the workspace's dev profile,
/// so every dependency the workspace compiled already (same version, same features) is
/// reused instead of compiled again; only the project's own crates are linted by nobody
/// (the workspace's clippy wrapper is not passed on).
pub fn build_out_of_tree(project: &str, library: &str, locked: bool) -> PathBuf {
    let target = target_dir().parent().unwrap().to_owned();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.arg("build");
    if locked {
        build.arg("--locked");
    }
    // The workspace's [profile.dev] (Cargo.toml), which a project of its own does not see.
    for setting in [
        "profile.dev.debug=\"line-tables-only\"",
        "profile.dev.package.\"*\".opt-level=1",
        "profile.dev.package.\"*\".debug=false",
    ] {
        build.args(["--config", setting]);
    }
    let out = build
        .arg("--manifest-path")
        .arg(workspace_root().join(project).join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building {project} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let library = target.join("debug").join(library);
    assert!(library.is_file(), "{} was not built", library.display());
    library
}

/// The packages an out-of-tree `project` compiles (normal and build dependencies, each
/// once), as `cargo tree` names them: `name vX.Y.Z`.
pub fn dependency_tree(project: &str) -> Vec<String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--edges",
            "normal,build",
            "--prefix",
            "none",
            "--manifest-path",
        ])
        .arg(workspace_root().join(project).join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree of {project} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut packages: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some(format!("{} {}", words.next()?, words.next()?))
        })
        .collect();
    packages.sort();
    packages.dedup();
    packages
}

/// The workspace root (the directory holding `models/` and `config/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A file under the workspace's `models/`, with a clear failure if it was not fetched.
pub fn model(relative: &str) -> PathBuf {
    let path = workspace_root().join("models").join(relative);
    assert!(
        path.is_file(),
        "{} is missing: run `voicehost models fetch` (the README's set-up commands do)",
        path.display()
    );
    path
}

/// Lower case, letters, digits and apostrophes only, split into words.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Word error rate of `hypothesis` against `reference`, after [`words`].
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let (r, h) = (words(reference), words(hypothesis));
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut row = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let sub = prev[j] + usize::from(rw != hw);
            row[j + 1] = sub.min(prev[j + 1] + 1).min(row[j] + 1);
        }
        prev = row;
    }
    prev[h.len()] as f64 / r.len().max(1) as f64
}

/// Waits until the file at `path` contains `needle` (at most `timeout`); returns the text.
pub fn wait_for_text(path: &Path, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} has no {needle:?} after {timeout:?}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `[tts]` keys for the real tts plugin with the fetched models, writing to `out` (a WAV).
pub fn tts_keys(port: u16, out: &Path) -> Vec<(String, String)> {
    vec![
        ("port".into(), port.to_string()),
        ("start_timeout_ms".into(), "60000".into()),
        (
            "model".into(),
            model("kokoro/kokoro-v1.0.int8.onnx").display().to_string(),
        ),
        (
            "vocab".into(),
            model("kokoro/vocab.json").display().to_string(),
        ),
        (
            "voices_dir".into(),
            model("kokoro/voices/af_heart.bin")
                .parent()
                .unwrap()
                .display()
                .to_string(),
        ),
        (
            "onnxruntime_library".into(),
            model("onnxruntime/libonnxruntime.so").display().to_string(),
        ),
        ("output".into(), format!("wav:{}", out.display())),
        ("cache_phrases".into(), "Yes?".into()),
    ]
}

/// `[stt]` keys for the real stt plugin with the fetched models, reading `input` (a WAV
/// file, in real time). No tts runs beside it: AEC3 works without a far end.
pub fn stt_keys(port: u16, input: &Path) -> Vec<(String, String)> {
    vec![
        ("port".into(), port.to_string()),
        ("start_timeout_ms".into(), "60000".into()),
        ("input".into(), format!("wav:{}", input.display())),
        (
            "whisper_model".into(),
            model("ggml-tiny.en.bin").display().to_string(),
        ),
        (
            "vad_model".into(),
            model("openwakeword/silero_vad.onnx").display().to_string(),
        ),
        (
            "onnxruntime_library".into(),
            model("onnxruntime/libonnxruntime.so").display().to_string(),
        ),
        (
            "render_reference".into(),
            format!("127.0.0.1:{}", free_port()),
        ),
    ]
}

/// `[kwd]` keys for the real kwd plugin with the fetched models (alexa).
pub fn kwd_keys(port: u16) -> Vec<(String, String)> {
    let oww = |name: &str| {
        model(&format!("openwakeword/{name}.onnx"))
            .display()
            .to_string()
    };
    vec![
        ("port".into(), port.to_string()),
        ("start_timeout_ms".into(), "30000".into()),
        ("wake_models".into(), oww("alexa_v0.1")),
        ("melspectrogram_model".into(), oww("melspectrogram")),
        ("embedding_model".into(), oww("embedding_model")),
        (
            "onnxruntime_library".into(),
            model("onnxruntime/libonnxruntime.so").display().to_string(),
        ),
    ]
}
