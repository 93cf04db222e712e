//! The `[llm]` section.

use std::path::PathBuf;

use voicehost_plugin_runtime::keys::{Key, Kind};
use voicehost_plugin_runtime::{PluginConfig, PluginError};

/// The llm plugin's keys.
pub const KEYS: &[Key] = &[
    Key::new(
        "backend",
        Kind::Choice(&["llama", "ollama"]),
        "llama",
        "llama: the embedded llama.cpp; ollama: an Ollama server",
    ),
    Key::new(
        "modelfile",
        Kind::Path,
        "config/Modelfile",
        "Ollama-style Modelfile: model, system prompt, parameters",
    ),
    Key::new(
        "threads",
        Kind::Int { min: 1, max: 64 },
        "2",
        "CPU threads of the embedded model",
    ),
    Key::new(
        "gpu_layers",
        Kind::Int { min: 0, max: 1000 },
        "0",
        "Layers offloaded to the GPU (CUDA builds)",
    ),
    Key::new(
        "ollama_url",
        Kind::Text { max_len: 256 },
        "http://127.0.0.1:11434",
        "The Ollama server (backend = ollama)",
    ),
    Key::new(
        "ollama_model",
        Kind::Text { max_len: 256 },
        "llama3.1:8b-instruct-q4_K_M",
        "The Ollama model (backend = ollama)",
    ),
    Key::new(
        "keep_alive_s",
        Kind::Int {
            min: 0,
            max: 604_800,
        },
        "1800",
        "How long Ollama keeps the model loaded",
    ),
    Key::new(
        "max_dialogs",
        Kind::Int {
            min: 1,
            max: 10_000,
        },
        "64",
        "Dialog histories kept, least recently used dropped first",
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Llama,
    Ollama,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "llama" => Ok(Backend::Llama),
            "ollama" => Ok(Backend::Ollama),
            _ => Err(format!(
                "{s:?} is not a backend; use llama (embedded) or ollama"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub backend: Backend,
    pub modelfile: PathBuf,
    pub threads: i32,
    pub gpu_layers: u32,
    pub ollama_url: String,
    pub ollama_model: String,
    pub keep_alive_s: u64,
    /// Dialog histories kept (the least recently used goes first).
    pub max_dialogs: usize,
}

impl Settings {
    pub fn from_config(c: &PluginConfig) -> Result<Self, PluginError> {
        let s = Settings {
            backend: c.value::<Backend>("backend")?,
            modelfile: c.value::<PathBuf>("modelfile")?,
            threads: c.value("threads")?,
            gpu_layers: c.value("gpu_layers")?,
            ollama_url: c.value("ollama_url")?,
            ollama_model: c.value("ollama_model")?,
            keep_alive_s: c.value("keep_alive_s")?,
            max_dialogs: c.value("max_dialogs")?,
        };
        PluginConfig::check(
            s.ollama_url.starts_with("http://") && s.ollama_url.len() > 7,
            format!(
                "[llm] ollama_url = {:?} is not an http:// URL (e.g. http://127.0.0.1:11434)",
                s.ollama_url
            ),
        )?;
        Ok(s)
    }
}
