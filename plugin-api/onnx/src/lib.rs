//! ONNX Runtime for the plugins that run ONNX models (kwd, stt, tts).
//!
//! The runtime is the CPU build from the onnxruntime wheel, fetched into
//! `models/onnxruntime/` by `voicehost models fetch` and loaded at run time (`ort`'s
//! `load-dynamic`), once per process. Every error names the file and the fix.

use std::path::Path;
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};

/// The ONNX Runtime environment of this process, loading `library` on first use.
/// `name` labels the environment in ONNX Runtime's own logs.
pub fn environment(library: &Path, name: &str) -> Result<&'static Environment, String> {
    static ENV: OnceLock<Environment> = OnceLock::new();
    if let Some(env) = ENV.get() {
        return Ok(env);
    }
    if !library.is_file() {
        return Err(format!(
            "ONNX Runtime library {} not found; fetch it with `voicehost models fetch --only onnxruntime`",
            library.display()
        ));
    }
    let env = ort::init_from(library)
        .map_err(|e| format!("cannot load {}: {e}", library.display()))?
        .with_name(name)
        .build()
        .map_err(|e| format!("ONNX Runtime: {e}"))?;
    Ok(ENV.get_or_init(|| env))
}

/// Checks that the model file `model` exists; `fetch` names the `voicehost models fetch
/// --only` entry that provides it.
pub fn require_model(model: &Path, fetch: &str) -> Result<(), String> {
    if model.is_file() {
        Ok(())
    } else {
        Err(format!(
            "{} not found; fetch it with `voicehost models fetch --only {fetch}`",
            model.display()
        ))
    }
}

/// A session builder on `library`'s runtime with `threads` intra-op threads, no inter-op
/// parallelism and every graph optimisation. The pool's threads wait for work without
/// spinning: on two cores shared with Whisper and the llm a spinning thread only takes a
/// core from them.
pub fn builder(library: &Path, name: &str, threads: usize) -> Result<SessionBuilder, String> {
    let env = environment(library, name)?;
    Session::builder(env)
        .and_then(|b| b.with_intra_threads(threads).map_err(Into::into))
        .and_then(|b| b.with_intra_op_spinning(threads == 1).map_err(Into::into))
        .and_then(|b| b.with_inter_threads(1).map_err(Into::into))
        .and_then(|b| {
            b.with_optimization_level(GraphOptimizationLevel::All)
                .map_err(Into::into)
        })
        .map_err(|e| format!("ONNX Runtime session options: {e}"))
}

/// Loads `model` (which `voicehost models fetch --only fetch` provides) into a session with
/// `threads` intra-op threads.
pub fn session(
    library: &Path,
    name: &str,
    model: &Path,
    fetch: &str,
    threads: usize,
) -> Result<Session, String> {
    require_model(model, fetch)?;
    builder(library, name, threads)?
        .commit_from_file(model)
        .map_err(|e| format!("{}: {e}", model.display()))
}
