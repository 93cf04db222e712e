//! Checking a library in a short-lived `voicehost worker --check`: loaded and verified
//! there, and given a section, the plugin's own check run on it, so that no plugin code
//! runs in the host (`voicehost validate`, config loading, verifying before a start).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::{voicehost_exe, worker_command};
use crate::worker::{CheckSpec, LibInfo, Refusal, WorkerMsg};

/// How long checking a library in a worker may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// What a checking worker answered on `stdout` before it exited with `status`.
fn check_answer(
    stdout: &[u8],
    library: &Path,
    status: std::process::ExitStatus,
) -> Result<LibInfo, Refusal> {
    for line in String::from_utf8_lossy(stdout).lines() {
        match serde_json::from_str::<WorkerMsg>(line) {
            Ok(WorkerMsg::Info(info)) => return Ok(info),
            Ok(WorkerMsg::LoadFailed(refusal)) => return Err(refusal),
            _ => {}
        }
    }
    Err(Refusal::other(format!(
        "the worker checking {} ended without an answer ({status})",
        library.display()
    )))
}

/// The [`CheckSpec`] line a checking worker reads on stdin: `section` to check, or an empty
/// line (load and verify only).
fn check_spec_line(section: Option<&[(String, String)]>) -> Result<String, Refusal> {
    let Some(section) = section else {
        return Ok("\n".to_owned());
    };
    let spec = CheckSpec {
        section: section.to_vec(),
    };
    serde_json::to_string(&spec)
        .map(|line| line + "\n")
        .map_err(|e| Refusal::other(format!("cannot write the check spec: {e}")))
}

/// Loads and verifies a library in a short-lived worker, keeping plugin code out of the
/// host: its info, or why it was refused. Given a `section` (what the plugin's start would
/// receive), the plugin's own check runs on it too: its problems are the info's
/// `section_problems`.
pub async fn check_in_worker(
    library: &Path,
    service: &str,
    section: Option<&[(String, String)]>,
) -> Result<LibInfo, Refusal> {
    let library_arg = library.to_string_lossy().into_owned();
    let mut cmd =
        worker_command(&["--check", &library_arg, "--service", service]).map_err(Refusal::other)?;
    let line = check_spec_line(section)?;
    let run = async {
        let mut child = cmd.spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            // A worker that could not start may not read it: its exit is the answer.
            let _ = stdin.write_all(line.as_bytes()).await;
        }
        child.wait_with_output().await
    };
    let out = tokio::time::timeout(CHECK_TIMEOUT, run)
        .await
        .map_err(|_| Refusal::other(format!("checking {} took over 30 s", library.display())))?
        .map_err(|e| Refusal::other(format!("cannot run the worker: {e}")))?;
    check_answer(&out.stdout, library, out.status)
}

/// [`check_in_worker`] for code without a runtime (`voicehost validate`, config loading).
pub fn check_in_worker_blocking(
    library: &Path,
    service: &str,
    section: Option<&[(String, String)]>,
) -> Result<LibInfo, Refusal> {
    use std::io::{Read, Write};
    let line = check_spec_line(section)?;
    let mut child = std::process::Command::new(voicehost_exe().map_err(Refusal::other)?)
        .arg("worker")
        .arg("--check")
        .arg(library)
        .args(["--service", service])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Refusal::other(format!("cannot run the worker: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // The worker reads it first thing; dropping `stdin` closes it. A worker that
        // could not start may not read it: its exit is the answer.
        let _ = stdin.write_all(line.as_bytes());
    }
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(out) = stdout.as_mut() {
            let _ = out.read_to_end(&mut bytes);
        }
        bytes
    });
    let deadline = std::time::Instant::now() + CHECK_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Refusal::other(format!(
                    "checking {} took over 30 s",
                    library.display()
                )));
            }
        }
    };
    check_answer(&reader.join().unwrap_or_default(), library, status)
}
