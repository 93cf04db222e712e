//! A running plugin, in the host process or in a `voicehost worker` child: one interface
//! for the supervisor, the admin API and hot swap. Checking a library in a short-lived
//! worker, before anything runs, is [`check_in_worker`].

mod check;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use abi_stable::std_types::{RSlice, RStr, Tuple2};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;
use voicehost_plugin_api::HealthStatus;
use voicehost_plugin_api::abi::{LogLevel, LogRecord, LogSink};

use crate::plugin::{PluginInstance, PluginLibrary, StartEnv};
use crate::slot::PluginSlot;
use crate::worker::{LibInfo, Refusal, WorkerMsg, WorkerSpec};

pub use check::{check_in_worker, check_in_worker_blocking};

/// Health as the plugin itself reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub status: HealthStatus,
    pub detail: String,
}

/// A started plugin.
#[derive(Debug)]
pub enum Running {
    InProcess(PluginInstance),
    Worker(WorkerProc),
}

impl Running {
    /// Starts `slot` in the host from an already verified library.
    pub async fn start_in_process(
        library: &PluginLibrary,
        slot: &PluginSlot,
        env: &StartEnv,
        log: LogSink,
    ) -> Result<Running, String> {
        let (lib, slot, env) = (library.clone(), slot.clone(), env.clone());
        tokio::task::spawn_blocking(move || lib.start(&slot, &env, log))
            .await
            .map_err(|e| e.to_string())?
            .map(Running::InProcess)
            .map_err(|e| e.to_string())
    }

    pub fn health(&self) -> Health {
        match self {
            Running::InProcess(i) => {
                let r = i.health();
                Health {
                    status: r.status,
                    detail: r.detail.to_string(),
                }
            }
            Running::Worker(w) => w.health(),
        }
    }

    /// The process the plugin runs in.
    pub fn pid(&self) -> u32 {
        match self {
            Running::InProcess(_) => std::process::id(),
            Running::Worker(w) => w.pid,
        }
    }

    /// `Some(reason)` once a worker process has ended on its own.
    pub fn exited(&mut self) -> Option<String> {
        match self {
            Running::InProcess(_) => None,
            Running::Worker(w) => w.exited(),
        }
    }

    /// Stops the plugin, waiting at most `timeout` (a worker is then killed).
    pub async fn stop(self, timeout: Duration) -> Result<(), String> {
        match self {
            Running::InProcess(mut i) => tokio::task::spawn_blocking(move || i.stop(timeout))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.message.to_string()),
            Running::Worker(w) => w.stop(timeout).await,
        }
    }
}

/// A `voicehost worker` child process running one plugin.
#[derive(Debug)]
pub struct WorkerProc {
    child: Child,
    stdin: Option<ChildStdin>,
    pub pid: u32,
    health: Arc<Mutex<Health>>,
}

/// What the worker said about its start.
enum Outcome {
    Started,
    Failed(String),
}

/// The executable a worker runs: this one (`voicehost worker …`).
fn voicehost_exe() -> Result<PathBuf, String> {
    std::env::current_exe()
        .map_err(|e| format!("cannot find the voicehost executable for the worker: {e}"))
}

fn worker_command(args: &[&str]) -> Result<Command, String> {
    let mut cmd = Command::new(voicehost_exe()?);
    cmd.arg("worker")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        // Its own process group: a Ctrl-C on the terminal reaches the host only, which
        // then stops the workers in order.
        .process_group(0)
        .kill_on_drop(true);
    Ok(cmd)
}

impl WorkerProc {
    /// Spawns a worker for `slot` with `library` and waits until the plugin's `start`
    /// returned (at most the slot's start timeout). Returns the plugin's info too.
    pub async fn spawn(
        slot: &PluginSlot,
        library: &Path,
        env: &StartEnv,
        stop_timeout: Duration,
        log: LogSink,
    ) -> Result<(WorkerProc, LibInfo), String> {
        let port = slot.port.to_string();
        let mut cmd = worker_command(&["--service", slot.service.name(), "--port", &port])?;
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start a worker process: {e}"))?;
        let pid = child.id().unwrap_or(0);
        let spec = WorkerSpec {
            service: slot.service,
            library: PathBuf::from(library),
            port: slot.port,
            bind_addr: env.bind_addr.clone(),
            log_dir: env.log_dir.clone(),
            data_dir: env.data_dir.clone(),
            start_timeout_ms: slot.start_timeout.as_millis() as u64,
            stop_timeout_ms: stop_timeout.as_millis() as u64,
            section: slot.section.clone(),
        };
        let mut stdin = child.stdin.take().ok_or("worker has no stdin")?;
        let line = serde_json::to_string(&spec).map_err(|e| e.to_string())? + "\n";
        stdin
            .write_all(line.as_bytes())
            .await
            .map_err(|e| format!("cannot talk to the worker: {e}"))?;
        let stdout = child.stdout.take().ok_or("worker has no stdout")?;

        let health = Arc::new(Mutex::new(Health {
            status: HealthStatus::Starting,
            detail: String::new(),
        }));
        let (info_tx, info_rx) = oneshot::channel();
        let (outcome_tx, outcome_rx) = oneshot::channel();
        tokio::spawn(read_worker(
            stdout,
            log,
            slot.service.name().to_owned(),
            Arc::clone(&health),
            info_tx,
            outcome_tx,
        ));

        let mut proc = WorkerProc {
            child,
            stdin: Some(stdin),
            pid,
            health,
        };
        // Loading a big library can take a moment before start's own timeout begins.
        let wait = slot.start_timeout + Duration::from_secs(5);
        let outcome = tokio::time::timeout(wait, outcome_rx).await;
        // The worker reports its info before its start outcome, on the same ordered stream.
        let mut info_rx = info_rx;
        let info = info_rx.try_recv().ok();
        match outcome {
            Ok(Ok(Outcome::Started)) => Ok((proc, info.unwrap_or_default())),
            Ok(Ok(Outcome::Failed(error))) => {
                proc.kill().await;
                Err(error)
            }
            Ok(Err(_)) => {
                let why = proc
                    .exited()
                    .unwrap_or_else(|| "closed its output".to_owned());
                proc.kill().await;
                Err(format!(
                    "the worker process {why} before the plugin started"
                ))
            }
            Err(_) => {
                proc.kill().await;
                Err(format!(
                    "start did not finish within {} ms; the worker was killed",
                    slot.start_timeout.as_millis()
                ))
            }
        }
    }

    pub fn health(&self) -> Health {
        self.health.lock().map(|h| h.clone()).unwrap_or(Health {
            status: HealthStatus::NotServing,
            detail: "health state poisoned".to_owned(),
        })
    }

    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(describe_exit(status)),
            Ok(None) => None,
            Err(e) => Some(format!("cannot be waited for: {e}")),
        }
    }

    async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Closes the worker's stdin (it stops the plugin and exits); kills it after `timeout`.
    pub async fn stop(mut self, timeout: Duration) -> Result<(), String> {
        drop(self.stdin.take());
        let grace = timeout + Duration::from_millis(500);
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(format!("the worker {}", describe_exit(status))),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => {
                self.kill().await;
                Err(format!(
                    "the worker did not stop within {} ms and was killed",
                    grace.as_millis()
                ))
            }
        }
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        _ => "ended".to_owned(),
    }
}

/// Turns the worker's stdout lines into health updates, log events and the start outcome.
async fn read_worker(
    stdout: tokio::process::ChildStdout,
    log: LogSink,
    service: String,
    health: Arc<Mutex<Health>>,
    info_tx: oneshot::Sender<LibInfo>,
    outcome_tx: oneshot::Sender<Outcome>,
) {
    let mut info_tx = Some(info_tx);
    let mut outcome_tx = Some(outcome_tx);
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let msg = match serde_json::from_str::<WorkerMsg>(&line) {
            Ok(msg) => msg,
            Err(_) => {
                // A plugin that prints to stdout: keep the text, as a log line.
                let fields = [
                    ("event".to_owned(), "stdout".to_owned()),
                    ("msg".to_owned(), line),
                ];
                forward_log(log, &service, LogLevel::Info, "", &fields);
                continue;
            }
        };
        match msg {
            WorkerMsg::Info(info) => {
                if let Some(tx) = info_tx.take() {
                    let _ = tx.send(info);
                }
            }
            WorkerMsg::Started => {
                if let Some(tx) = outcome_tx.take() {
                    let _ = tx.send(Outcome::Started);
                }
            }
            WorkerMsg::LoadFailed(Refusal { message: error, .. })
            | WorkerMsg::StartFailed { error } => {
                if let Some(tx) = outcome_tx.take() {
                    let _ = tx.send(Outcome::Failed(error));
                }
            }
            WorkerMsg::Health { status, detail } => {
                if let Ok(mut h) = health.lock() {
                    *h = Health {
                        status: status.into(),
                        detail,
                    };
                }
            }
            WorkerMsg::Log {
                level,
                svc,
                message,
                fields,
            } => forward_log(log, &svc, level.into(), &message, &fields),
            WorkerMsg::Stopped { error } => {
                if let Some(error) = error {
                    tracing::warn!(service = %service, error = %error, "Worker stop reported an error");
                }
            }
        }
    }
    if let Ok(mut h) = health.lock() {
        *h = Health {
            status: HealthStatus::NotServing,
            detail: "the worker process ended".to_owned(),
        };
    }
}

/// Hands a worker's log record to the host's sink, as an in-process plugin's would arrive.
fn forward_log(
    log: LogSink,
    svc: &str,
    level: LogLevel,
    message: &str,
    fields: &[(String, String)],
) {
    let pairs: Vec<Tuple2<RStr<'_>, RStr<'_>>> = fields
        .iter()
        .map(|(k, v)| Tuple2(RStr::from(k.as_str()), RStr::from(v.as_str())))
        .collect();
    (log.0)(LogRecord {
        level,
        service: svc.into(),
        target: "".into(),
        message: message.into(),
        fields: RSlice::from_slice(&pairs),
    });
}
