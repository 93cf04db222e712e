//! `voicehost worker`: runs one plugin in a child process (`isolation = process`).
//!
//! The host writes a [`WorkerSpec`] as one JSON line on the worker's stdin and keeps the
//! pipe open; the worker loads the library through the same ABI checks as the host, starts
//! the plugin and reports on stdout, one JSON [`WorkerMsg`] per line: its info, whether it
//! started, every health change and every log record. Closing stdin (or the host dying,
//! which closes it too) stops the plugin and ends the worker; the worker also asks the
//! kernel to kill it if the host goes away. A crash of the plugin's native code ends only
//! this process, which the host's supervisor sees and restarts.

use std::io::{BufRead, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use voicehost_plugin_api::HealthStatus;
use voicehost_plugin_api::abi::{LogLevel, LogRecord, LogSink};
use voicehost_plugin_api::schema::{ConfigKey, KeyKind};

use crate::plugin::{LoadError, PluginLibrary, StartEnv};
use crate::service::Service;
use crate::slot::{Isolation, PluginSlot};

/// What the host tells a worker to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub service: Service,
    pub library: PathBuf,
    pub port: u16,
    pub bind_addr: String,
    pub log_dir: PathBuf,
    pub data_dir: PathBuf,
    pub start_timeout_ms: u64,
    pub stop_timeout_ms: u64,
    pub section: Vec<(String, String)>,
}

/// The plugin's self-description, as the host shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LibInfo {
    pub name: String,
    pub kind: String,
    pub version: String,
    pub abi_version: String,
    pub proto_package: String,
    pub features: Vec<String>,
    /// The keys its config section takes; `None` when it declares none.
    #[serde(default)]
    pub config_keys: Option<Vec<KeySpec>>,
}

impl LibInfo {
    pub fn of(library: &PluginLibrary) -> LibInfo {
        let i = &library.info;
        LibInfo {
            name: i.name.to_string(),
            kind: i.kind.to_string(),
            version: i.version.to_string(),
            abi_version: i.abi_version.to_string(),
            proto_package: i.proto_package.to_string(),
            features: i.features.iter().map(|f| f.to_string()).collect(),
            config_keys: library
                .config_schema
                .as_ref()
                .map(|s| s.keys.iter().map(KeySpec::of).collect()),
        }
    }
}

/// A declared config key as the worker reports it (the ABI's `ConfigKey`, as JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeySpec {
    pub name: String,
    /// `KeyKind::name()`: int, float, choice, model_file, …
    pub kind: String,
    pub min: f64,
    pub max: f64,
    pub choices: Vec<String>,
    pub default: String,
    pub doc: String,
}

impl KeySpec {
    pub fn of(key: &ConfigKey) -> KeySpec {
        KeySpec {
            name: key.name.to_string(),
            kind: key.kind.name().to_owned(),
            min: key.min,
            max: key.max,
            choices: key.choices.iter().map(|c| c.to_string()).collect(),
            default: key.default.to_string(),
            doc: key.doc.to_string(),
        }
    }

    /// Back to the ABI type, to check values with; `None` for a kind this host does not
    /// know (a newer plugin's): such a key's values are not checked.
    pub fn to_abi(&self) -> Option<ConfigKey> {
        Some(ConfigKey {
            name: self.name.as_str().into(),
            kind: KeyKind::from_name(&self.kind)?,
            min: self.min,
            max: self.max,
            choices: self.choices.iter().map(|c| c.as_str().into()).collect(),
            default: self.default.as_str().into(),
            doc: self.doc.as_str().into(),
        })
    }
}

/// One line a worker writes on stdout (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum WorkerMsg {
    Info(LibInfo),
    LoadFailed(Refusal),
    Started,
    StartFailed {
        error: String,
    },
    Health {
        status: Health,
        detail: String,
    },
    Log {
        level: Level,
        svc: String,
        message: String,
        fields: Vec<(String, String)>,
    },
    Stopped {
        error: Option<String>,
    },
}

/// Why a worker could not load or verify a library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The loader's whole message, naming the file.
    pub message: String,
    /// Why, without the file (for output that names it already).
    pub reason: String,
}

impl Refusal {
    /// Not the loader's refusal: the worker could not run or answer (`message` = `reason`).
    pub fn other(message: String) -> Refusal {
        Refusal {
            reason: message.clone(),
            message,
        }
    }

    fn of(error: &LoadError) -> Refusal {
        Refusal {
            message: error.to_string(),
            reason: error.reason(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A plugin's health as a worker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Starting,
    Serving,
    NotServing,
    Stopped,
}

impl From<HealthStatus> for Health {
    fn from(s: HealthStatus) -> Health {
        match s {
            HealthStatus::Starting => Health::Starting,
            HealthStatus::Serving => Health::Serving,
            HealthStatus::NotServing => Health::NotServing,
            HealthStatus::Stopped => Health::Stopped,
        }
    }
}

impl From<Health> for HealthStatus {
    fn from(h: Health) -> HealthStatus {
        match h {
            Health::Starting => HealthStatus::Starting,
            Health::Serving => HealthStatus::Serving,
            Health::NotServing => HealthStatus::NotServing,
            Health::Stopped => HealthStatus::Stopped,
        }
    }
}

/// A log record's level as a worker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl From<LogLevel> for Level {
    fn from(l: LogLevel) -> Level {
        match l {
            LogLevel::Trace => Level::Trace,
            LogLevel::Debug => Level::Debug,
            LogLevel::Info => Level::Info,
            LogLevel::Warn => Level::Warn,
            LogLevel::Error => Level::Error,
        }
    }
}

impl From<Level> for LogLevel {
    fn from(l: Level) -> LogLevel {
        match l {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        }
    }
}

static STDOUT: Mutex<()> = Mutex::new(());

/// Writes one message line; a closed stdout (host gone) is ignored.
fn emit(msg: &WorkerMsg) {
    let Ok(line) = serde_json::to_string(msg) else {
        return;
    };
    let _guard = STDOUT.lock();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

extern "C" fn worker_log(record: LogRecord<'_>) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        emit(&WorkerMsg::Log {
            level: record.level.into(),
            svc: record.service.to_string(),
            message: record.message.to_string(),
            fields: record
                .fields
                .iter()
                .map(|kv| (kv.0.to_string(), kv.1.to_string()))
                .collect(),
        });
    }));
}

/// The log sink plugins get inside a worker: records go to the host as JSON lines.
pub const WORKER_LOG_SINK: LogSink = LogSink(worker_log);

/// Dies with the host: the kernel sends SIGKILL when the parent exits.
fn die_with_parent() {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and has no memory effects.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
}

fn load(library: &Path, service: &str) -> Result<PluginLibrary, Refusal> {
    let lib = PluginLibrary::load(library).map_err(|e| Refusal::of(&e))?;
    lib.check_kind(service).map_err(|e| Refusal::of(&e))?;
    Ok(lib)
}

/// `voicehost worker --check LIB --service NAME`: loads and verifies a library, prints its
/// info (or why it was refused) and exits.
pub fn check(library: &Path, service: &str) -> ExitCode {
    die_with_parent();
    match load(library, service) {
        Ok(lib) => {
            emit(&WorkerMsg::Info(LibInfo::of(&lib)));
            ExitCode::SUCCESS
        }
        Err(refusal) => {
            emit(&WorkerMsg::LoadFailed(refusal));
            ExitCode::FAILURE
        }
    }
}

/// Prints each distinct panic message once: a plugin whose `health()` panics would
/// otherwise print the same report every time the worker polls it.
fn quiet_repeated_panics() {
    let last = Mutex::new(String::new());
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info.to_string();
        if let Ok(mut last) = last.lock() {
            if *last == text {
                return;
            }
            last.clone_from(&text);
        }
        default(info);
    }));
}

/// `voicehost worker`: runs the plugin described on stdin until stdin closes.
pub fn run() -> ExitCode {
    die_with_parent();
    quiet_repeated_panics();
    let stdin = std::io::stdin();
    let mut first = String::new();
    if stdin.lock().read_line(&mut first).is_err() || first.trim().is_empty() {
        eprintln!(
            "voicehost worker: expected a worker spec on stdin; it is started by `voicehost run`"
        );
        return ExitCode::from(2);
    }
    let spec: WorkerSpec = match serde_json::from_str(&first) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("voicehost worker: bad worker spec: {e}");
            return ExitCode::from(2);
        }
    };
    let lib = match load(&spec.library, spec.service.name()) {
        Ok(lib) => lib,
        Err(refusal) => {
            emit(&WorkerMsg::LoadFailed(refusal));
            return ExitCode::FAILURE;
        }
    };
    emit(&WorkerMsg::Info(LibInfo::of(&lib)));

    let slot = PluginSlot {
        service: spec.service,
        enabled: true,
        library: spec.library.clone(),
        library_line: 0,
        port: spec.port,
        start_timeout: Duration::from_millis(spec.start_timeout_ms),
        isolation: Isolation::Process,
        section: spec.section.clone(),
        lines: Vec::new(),
    };
    let env = StartEnv {
        bind_addr: spec.bind_addr.clone(),
        log_dir: spec.log_dir.clone(),
        data_dir: spec.data_dir.clone(),
    };
    let instance = match lib.start(&slot, &env, WORKER_LOG_SINK) {
        Ok(instance) => Arc::new(Mutex::new(instance)),
        Err(e) => {
            emit(&WorkerMsg::StartFailed {
                error: e.to_string(),
            });
            return ExitCode::FAILURE;
        }
    };
    // Health first, so the host's start gate sees a plugin that is NOT_SERVING from the
    // start; then every change (the host also checks gRPC health on the port).
    let report = |i: &Arc<Mutex<crate::plugin::PluginInstance>>| {
        i.lock().ok().map(|i| {
            let r = i.health();
            (r.status, r.detail.to_string())
        })
    };
    let mut last = report(&instance);
    if let Some((status, detail)) = &last {
        emit(&WorkerMsg::Health {
            status: (*status).into(),
            detail: detail.clone(),
        });
    }
    emit(&WorkerMsg::Started);
    let watched = Arc::clone(&instance);
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let report = match watched.lock() {
                Ok(i) => i.health(),
                Err(_) => return,
            };
            let now = (report.status, report.detail.to_string());
            if last.as_ref() != Some(&now) {
                emit(&WorkerMsg::Health {
                    status: now.0.into(),
                    detail: now.1.clone(),
                });
                if now.0 == HealthStatus::Stopped {
                    return;
                }
                last = Some(now);
            }
        }
    });

    // Block until the host closes stdin.
    let mut sink = String::new();
    while matches!(stdin.lock().read_line(&mut sink), Ok(n) if n > 0) {
        sink.clear();
    }
    let error = match instance.lock() {
        Ok(mut i) => i
            .stop(Duration::from_millis(spec.stop_timeout_ms))
            .err()
            .map(|e| e.message.to_string()),
        Err(_) => Some("plugin state poisoned".to_owned()),
    };
    emit(&WorkerMsg::Stopped { error });
    ExitCode::SUCCESS
}
