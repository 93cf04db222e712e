//! `voicehost worker`: runs one plugin in a child process (`isolation = process`).
//!
//! The host writes a [`WorkerSpec`] as one JSON line on the worker's stdin and keeps the
//! pipe open; the worker loads the library through the same ABI checks as the host, starts
//! the plugin and reports on stdout, one JSON [`WorkerMsg`] per line: its info, whether it
//! started, every health change and every log record. Closing stdin (or the host dying,
//! which closes it too) stops the plugin and ends the worker; the worker also asks the
//! kernel to kill it if the host goes away. A crash of the plugin's native code ends only
//! this process, which the host's supervisor sees and restarts.
//!
//! `voicehost worker --check` only loads and verifies a library and answers with its info;
//! given a [`CheckSpec`] on stdin it also runs the plugin's own check of that section. The
//! messages are in [`protocol`]'s types.

pub mod protocol;

use std::io::{BufRead, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use voicehost_plugin_api::HealthStatus;
use voicehost_plugin_api::abi::{LogRecord, LogSink};

use crate::plugin::{PluginLibrary, StartEnv};
use crate::slot::{Isolation, PluginSlot};

pub use protocol::{
    CheckSpec, Health, KeySpec, Level, LibInfo, Refusal, SectionProblem, WorkerMsg, WorkerSpec,
};

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
/// info (or why it was refused) and exits. Given a [`CheckSpec`] on stdin, it runs the
/// plugin's own check on that section too and adds what it found to the info.
pub fn check(library: &Path, service: &str) -> ExitCode {
    die_with_parent();
    let spec = match read_check_spec() {
        Ok(spec) => spec,
        Err(message) => {
            emit(&WorkerMsg::LoadFailed(Refusal::other(message)));
            return ExitCode::FAILURE;
        }
    };
    match load(library, service) {
        Ok(lib) => {
            let mut info = LibInfo::of(&lib);
            if let Some(spec) = spec {
                info.section_problems = section_problems(&lib, service, &spec.section);
            }
            emit(&WorkerMsg::Info(info));
            ExitCode::SUCCESS
        }
        Err(refusal) => {
            emit(&WorkerMsg::LoadFailed(refusal));
            ExitCode::FAILURE
        }
    }
}

/// The [`CheckSpec`] line on stdin, if the host wrote one (not from a terminal: a person
/// running `voicehost worker --check` by hand is not asked for JSON).
fn read_check_spec() -> Result<Option<CheckSpec>, String> {
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(None);
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the check spec on stdin: {e}"))?;
    if line.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&line)
        .map(Some)
        .map_err(|e| format!("bad check spec on stdin: {e}"))
}

/// The plugin's check of `section`: `None` when it has none. A check that fails (a panic
/// caught at the boundary) is a problem of the section as a whole: the config cannot be
/// shown to be good.
fn section_problems(
    lib: &PluginLibrary,
    service: &str,
    section: &[(String, String)],
) -> Option<Vec<SectionProblem>> {
    Some(match lib.check_config(service, section)? {
        Ok(problems) => problems.iter().map(SectionProblem::of).collect(),
        Err(e) => vec![SectionProblem {
            key: String::new(),
            message: format!(
                "{} could not check this section: {}",
                lib.info.name, e.message
            ),
        }],
    })
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
