//! The `[llm]` section.

use std::path::PathBuf;

use voicehost_plugin_runtime::{PluginConfig, PluginError};

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
            backend: c.parse_or("backend", Backend::Llama)?,
            modelfile: c.parse_or("modelfile", PathBuf::from("config/Modelfile"))?,
            threads: c.parse_or("threads", 2)?,
            gpu_layers: c.parse_or("gpu_layers", 0)?,
            ollama_url: c.parse_or("ollama_url", "http://127.0.0.1:11434".to_owned())?,
            ollama_model: c.parse_or("ollama_model", "llama3.1:8b-instruct-q4_K_M".to_owned())?,
            keep_alive_s: c.parse_or("keep_alive_s", 1800)?,
            max_dialogs: c.parse_or("max_dialogs", 64)?,
        };
        PluginConfig::check(
            (1..=64).contains(&s.threads),
            format!("[llm] threads = {} is out of range; use 1 to 64", s.threads),
        )?;
        PluginConfig::check(
            s.ollama_url.starts_with("http://") && s.ollama_url.len() > 7,
            format!(
                "[llm] ollama_url = {:?} is not an http:// URL (e.g. http://127.0.0.1:11434)",
                s.ollama_url
            ),
        )?;
        PluginConfig::check(
            (1..=10_000).contains(&s.max_dialogs),
            format!(
                "[llm] max_dialogs = {} is out of range; use 1 to 10000",
                s.max_dialogs
            ),
        )?;
        Ok(s)
    }
}
