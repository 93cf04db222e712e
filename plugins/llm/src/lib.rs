//! The voicehost llm service (port 5005): streamed replies with a history per dialog.
//!
//! Backends (`[llm] backend`):
//! - `llama` (default): llama.cpp embedded through `llama-cpp-2`, on the GGUF that the
//!   Modelfile's `FROM` names (Qwen2.5-Coder-0.5B-Instruct Q8_0 by default), with its chat
//!   template, context and sampling from the Modelfile. CUDA: the `cuda` feature and `gpu_layers`.
//! - `ollama`: an Ollama server's chat API with `keep_alive`; NOT_SERVING with the
//!   fix when the server or the model is missing.
//! - `openai`: any OpenAI-compatible server's streamed chat completions (llama.cpp's
//!   `llama-server`, vLLM, LM Studio): `openai_url`, `openai_model`, an API key from the
//!   environment variable `openai_api_key_env` names. Latency is the server's; the plugin
//!   adds one local HTTP hop. NOT_SERVING with the fix when the server, the model or the key is wrong.
//!
//! A server on another machine (`ollama_url`, `openai_url`) is refused unless
//! `allow_remote = true`: the conversation stays on this one by default.
//!
//! One short generation warms the model at start; SERVING only after it.

pub mod config;
pub mod engine;
pub mod llama;
pub mod modelfile;
pub mod ollama;
pub mod openai;
mod remote;
mod service;
pub mod sse;

use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use config::{Backend, Settings};
pub use modelfile::Modelfile;
pub use service::with_context;
use voicehost_plugin_runtime::keys::{Key, Problem};
use voicehost_plugin_runtime::{
    GrpcServer, HealthHandle, HealthReport, Plugin, PluginConfig, PluginContext, PluginError,
    PluginMeta, export_plugin,
};
use voicehost_proto::llm::v1::llm_service_server::LlmServiceServer;

use crate::engine::{Event, Job, Message};

/// The llm plugin.
#[derive(Debug)]
pub struct LlmPlugin {
    server: GrpcServer,
}

/// Starts the engine thread for `settings`; returns its job queue once the model is
/// loaded (or why not) and a description for the log.
pub fn start_engine(
    settings: &Settings,
    modelfile: &Modelfile,
) -> Result<(mpsc::Sender<Job>, String), String> {
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<String, String>>();
    let spawn = match settings.backend {
        Backend::Llama => {
            let llama = llama::LlamaSettings {
                model: modelfile.from_path(),
                threads: settings.threads,
                speech_gate: settings.speech_gate_dir.clone(),
                gpu_layers: settings.gpu_layers,
                template: modelfile.template.clone(),
                params: modelfile.params.clone(),
            };
            std::thread::Builder::new()
                .name("vh-llm-llama".to_owned())
                .spawn(move || llama::run(llama, jobs_rx, ready_tx))
        }
        Backend::Ollama => {
            let ollama = ollama::OllamaSettings {
                url: settings.ollama_url.clone(),
                model: settings.ollama_model.clone(),
                keep_alive_s: settings.keep_alive_s,
                params: modelfile.params.clone(),
            };
            std::thread::Builder::new()
                .name("vh-llm-ollama".to_owned())
                .spawn(move || ollama::run(ollama, jobs_rx, ready_tx))
        }
        Backend::OpenAi => {
            let openai = openai::OpenAiSettings {
                url: settings.openai_url.clone(),
                model: settings.openai_model.clone(),
                api_key: settings.openai_api_key.clone(),
                api_key_env: settings.openai_api_key_env.clone(),
                connect_timeout: settings.openai_connect_timeout,
                first_token_timeout: settings.openai_first_token_timeout,
                params: modelfile.params.clone(),
            };
            std::thread::Builder::new()
                .name("vh-llm-openai".to_owned())
                .spawn(move || openai::run(openai, jobs_rx, ready_tx))
        }
    };
    spawn.map_err(|e| format!("cannot start the engine thread: {e}"))?;
    let description = ready_rx
        .recv()
        .map_err(|_| "the engine thread ended while loading".to_owned())??;
    Ok((jobs_tx, description))
}

/// The system prompt and the Modelfile's example messages.
pub fn preamble(modelfile: &Modelfile) -> Vec<Message> {
    let mut out = Vec::new();
    if let Some(system) = modelfile.system.as_ref().filter(|s| !s.trim().is_empty()) {
        out.push(Message::new("system", system.clone()));
    }
    for (role, text) in &modelfile.messages {
        let role = match role.as_str() {
            "system" => "system",
            "assistant" => "assistant",
            _ => "user",
        };
        out.push(Message::new(role, text.clone()));
    }
    out
}

/// One short generation so the first real request finds the model warm.
fn warm_up(jobs: &mpsc::Sender<Job>, preamble: &[Message]) -> Result<u64, String> {
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let mut messages = preamble.to_vec();
    messages.push(Message::new("user", "Hello"));
    jobs.send(Job {
        messages,
        keep: preamble.len(),
        max_tokens: 4,
        prefill_only: false,
        out: tx,
    })
    .map_err(|_| "the engine thread ended".to_owned())?;
    while let Some(event) = rx.blocking_recv() {
        match event {
            Event::Text(_) => {}
            Event::Done { .. } => return Ok(started.elapsed().as_millis() as u64),
            Event::Rejected(e) | Event::Failed(e) => return Err(format!("warm-up failed: {e}")),
        }
    }
    Err("warm-up ended without an answer".to_owned())
}

fn load(
    settings: Settings,
    modelfile: Modelfile,
    health: HealthHandle,
    jobs_slot: std::sync::Arc<std::sync::OnceLock<mpsc::Sender<Job>>>,
) {
    let started = Instant::now();
    let result = start_engine(&settings, &modelfile).and_then(|(jobs, description)| {
        let warm_ms = warm_up(&jobs, &preamble(&modelfile))?;
        Ok((jobs, description, warm_ms))
    });
    match result {
        Ok((jobs, description, warm_ms)) => {
            let _ = jobs_slot.set(jobs);
            tracing::info!(
                event = "llm_ready",
                model = %description,
                warmup_ms = warm_ms,
                ms = started.elapsed().as_millis() as u64,
                "Language model ready"
            );
            health.set_serving();
        }
        Err(e) => {
            tracing::error!(error = %e, "llm cannot serve");
            health.set_not_serving(e);
        }
    }
}

impl Plugin for LlmPlugin {
    fn config_keys() -> Option<Vec<Key>> {
        Some(config::KEYS.to_vec())
    }

    /// What depends on several keys (a server on another machine needs `allow_remote`),
    /// for `voicehost validate` at each key's line.
    fn check_config(config: &PluginConfig) -> Vec<Problem> {
        match Settings::parse(config) {
            Ok(settings) => settings.problems(),
            Err(e) => vec![Problem::new("", e.message.to_string())],
        }
    }

    fn meta() -> PluginMeta {
        PluginMeta {
            name: env!("CARGO_PKG_NAME"),
            kind: "llm",
            version: env!("CARGO_PKG_VERSION"),
            proto_package: "voicehost.llm.v1",
            features: &["llama.cpp", "ollama", "openai", "modelfile"],
        }
    }

    fn start(ctx: PluginContext) -> Result<Self, PluginError> {
        let mut settings = Settings::from_config(&ctx.config)?;
        if settings.yield_to_tts {
            settings.speech_gate_dir = Some(ctx.log_dir.clone());
        }
        let modelfile =
            Modelfile::load(&settings.modelfile).map_err(|e| PluginError::config(e.to_string()))?;
        // The engine's queue, set once the model is loaded and warm; until then requests
        // are refused as UNAVAILABLE (the host sends none before SERVING).
        let jobs_slot = std::sync::Arc::new(std::sync::OnceLock::new());
        let queue = std::sync::Arc::clone(&jobs_slot);
        let (preamble, num_predict, max_dialogs) = (
            preamble(&modelfile),
            modelfile.params.num_predict,
            settings.max_dialogs,
        );
        let server = GrpcServer::builder(&ctx)
            .descriptors(voicehost_proto::FILE_DESCRIPTOR_SET)
            .start(move |services, _health| {
                let svc = service::Llm::new(queue, preamble, num_predict, max_dialogs);
                services.add(LlmServiceServer::new(svc));
                Ok(())
            })?;
        let health = server.health().clone();
        std::thread::Builder::new()
            .name("vh-llm-load".to_owned())
            .spawn(move || load(settings, modelfile, health, jobs_slot))
            .map_err(|e| PluginError::internal(format!("cannot start the loader thread: {e}")))?;
        Ok(Self { server })
    }

    fn health(&self) -> HealthReport {
        self.server.report()
    }

    fn stop(&mut self, timeout: Duration) -> Result<(), PluginError> {
        self.server.stop(timeout)
    }
}

export_plugin!(LlmPlugin);
