//! The `[llm]` section.
//!
//! Checked by `voicehost validate` (each key's form by the host, the values together by
//! [`Settings::problems`], the plugin's `check_config`) and again at start, every problem
//! reported together. A server backend's URL must be on this machine (loopback) unless
//! `allow_remote = true`: the conversation is private by default. The API key is never
//! written in the config: `openai_api_key_env` names the environment variable that holds
//! it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use voicehost_plugin_runtime::keys::{Key, Kind, Problem};
use voicehost_plugin_runtime::{PluginConfig, PluginError};

/// The llm plugin's keys.
pub const KEYS: &[Key] = &[
    Key::new(
        "backend",
        Kind::Choice(&["llama", "ollama", "openai"]),
        "llama",
        "llama: embedded llama.cpp; ollama: an Ollama server; openai: an OpenAI-compatible server",
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
        "yield_to_tts",
        Kind::Bool,
        "true",
        "Embedded model: between two tokens, wait while tts synthesises speech (the speech gate), so that a reply's first words sound sooner on a shared CPU",
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
        "openai_url",
        Kind::Text { max_len: 256 },
        "http://127.0.0.1:8080/v1",
        "The OpenAI-compatible server's API base, before /chat/completions (backend = openai)",
    ),
    Key::new(
        "openai_model",
        Kind::Text { max_len: 256 },
        "",
        "The model asked for (backend = openai); empty: the one model the server lists",
    ),
    Key::new(
        "openai_api_key_env",
        Kind::Text { max_len: 128 },
        "",
        "Name of the environment variable holding the API key, never the key; empty: no key",
    ),
    Key::new(
        "allow_remote",
        Kind::Bool,
        "false",
        "Allow an ollama_url or openai_url on another machine: the conversation then leaves this one",
    ),
    Key::new(
        "openai_connect_timeout_ms",
        Kind::Int {
            min: 100,
            max: 600_000,
        },
        "5000",
        "Longest wait for the server to accept a connection (backend = openai)",
    ),
    Key::new(
        "openai_first_token_timeout_ms",
        Kind::Int {
            min: 1000,
            max: 3_600_000,
        },
        "120000",
        "Longest wait for a reply's first token, and then between two (backend = openai)",
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
    OpenAi,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "llama" => Ok(Backend::Llama),
            "ollama" => Ok(Backend::Ollama),
            "openai" => Ok(Backend::OpenAi),
            _ => Err(format!(
                "{s:?} is not a backend; use llama (embedded), ollama or openai"
            )),
        }
    }
}

/// An API key read from the environment; `Debug` does not show it.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<not shown>)")
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub backend: Backend,
    pub modelfile: PathBuf,
    pub threads: i32,
    /// `yield_to_tts`: the embedded model waits at the speech gate between tokens.
    pub yield_to_tts: bool,
    /// The directory of the speech gate (`voicehost_plugin_runtime::gate`): the log
    /// directory the plugin is started with, set at start when `yield_to_tts`; `None`
    /// (tools, benchmarks) never waits.
    pub speech_gate_dir: Option<PathBuf>,
    pub gpu_layers: u32,
    pub ollama_url: String,
    pub ollama_model: String,
    pub keep_alive_s: u64,
    /// The OpenAI-compatible API base, without a trailing `/`.
    pub openai_url: String,
    pub openai_model: String,
    /// The name of the key's variable (empty: no key).
    pub openai_api_key_env: String,
    /// The key, read at start when `backend = openai` and a variable is named.
    pub openai_api_key: Option<ApiKey>,
    pub allow_remote: bool,
    pub openai_connect_timeout: Duration,
    pub openai_first_token_timeout: Duration,
    /// Dialog histories kept (the least recently used goes first).
    pub max_dialogs: usize,
}

impl Settings {
    /// The settings of a checked section, the API key read from its variable, and every
    /// problem of the values together refused at once (`[llm] key: message`, one a line).
    pub fn from_config(c: &PluginConfig) -> Result<Self, PluginError> {
        let mut s = Settings::parse(c)?;
        let mut problems = s.problems();
        if problems.is_empty() && s.backend == Backend::OpenAi && !s.openai_api_key_env.is_empty() {
            match read_key(&s.openai_api_key_env) {
                Ok(key) => s.openai_api_key = Some(key),
                Err(message) => problems.push(Problem::new("openai_api_key_env", message)),
            }
        }
        c.refuse(&problems)?;
        Ok(s)
    }

    /// The embedded llama.cpp (`backend = llama`) on `modelfile` with `threads` CPU threads,
    /// every other key at its default: for tools and benchmarks that run the engine in
    /// their own process ([`crate::start_engine`]).
    pub fn embedded(modelfile: PathBuf, threads: i32) -> Result<Self, String> {
        let threads = threads.to_string();
        let modelfile = modelfile.display().to_string();
        let config = PluginConfig::new(
            "llm",
            [("modelfile", modelfile.as_str()), ("threads", &threads)]
                .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .with_keys(KEYS.to_vec());
        config
            .validate()
            .and_then(|()| Settings::from_config(&config))
            .map_err(|e| e.message.to_string())
    }

    /// The values of a section whose keys fit their kinds, as they are: nothing checked
    /// across keys, no API key read.
    pub fn parse(c: &PluginConfig) -> Result<Self, PluginError> {
        Ok(Settings {
            backend: c.value::<Backend>("backend")?,
            modelfile: c.value::<PathBuf>("modelfile")?,
            threads: c.value("threads")?,
            yield_to_tts: c.value("yield_to_tts")?,
            speech_gate_dir: None,
            gpu_layers: c.value("gpu_layers")?,
            ollama_url: c.value("ollama_url")?,
            ollama_model: c.value("ollama_model")?,
            keep_alive_s: c.value("keep_alive_s")?,
            openai_url: c
                .value::<String>("openai_url")?
                .trim_end_matches('/')
                .to_owned(),
            openai_model: c.value("openai_model")?,
            openai_api_key_env: c.value("openai_api_key_env")?,
            openai_api_key: None,
            allow_remote: c.value("allow_remote")?,
            openai_connect_timeout: Duration::from_millis(c.value("openai_connect_timeout_ms")?),
            openai_first_token_timeout: Duration::from_millis(
                c.value("openai_first_token_timeout_ms")?,
            ),
            max_dialogs: c.value("max_dialogs")?,
        })
    }

    /// What is wrong with the values together, each at its key: what `voicehost validate`
    /// reports with the key's file and line (the plugin's `check_config`), and what start
    /// refuses. The API key's variable is read at start only: validating may run in another
    /// environment.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (key, url, example) in [
            (
                "ollama_url",
                &self.ollama_url,
                "e.g. http://127.0.0.1:11434",
            ),
            (
                "openai_url",
                &self.openai_url,
                "e.g. http://127.0.0.1:8080/v1",
            ),
        ] {
            if let Some(message) = server_url_problem(url, self.allow_remote, example) {
                problems.push(Problem::new(key, message));
            }
        }
        if !self.openai_api_key_env.is_empty() && !is_variable_name(&self.openai_api_key_env) {
            // Not echoed: it may be the key itself, pasted in the wrong place.
            problems.push(Problem::new(
                "openai_api_key_env",
                "this is not an environment variable name (letters, digits and _, not \
                 starting with a digit): write the NAME of the variable that holds the API \
                 key (e.g. OPENAI_API_KEY), never the key itself",
            ));
        }
        problems
    }
}

/// Why `url` cannot be a server backend's URL (`ollama_url`, `openai_url`), if it cannot;
/// the message goes after the key and ends with `example`, a URL of the right form.
pub fn server_url_problem(url: &str, allow_remote: bool, example: &str) -> Option<String> {
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            return Some(format!(
                "{url:?} is not a URL ({e}); write the server's API base, {example}"
            ));
        }
    };
    if parsed.scheme() != "http" {
        return Some(format!(
            "{url:?}: only http:// is supported (this build has no TLS); {example}"
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Some(format!(
            "the URL holds a user name or password: remove it, and put an API key in an \
             environment variable named by openai_api_key_env ({example})"
        ));
    }
    let host = parsed.host_str().unwrap_or_default();
    if !allow_remote && !is_loopback(host) {
        return Some(format!(
            "{url:?} is on another machine ({host}), so what the user says would leave this \
             one; set allow_remote = true in [llm] to send text to another machine, or use a \
             server on this one ({example})"
        ));
    }
    None
}

/// `localhost`, 127.0.0.0/8 or ::1 (names other than `localhost` are not resolved).
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn is_variable_name(name: &str) -> bool {
    name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

fn read_key(var: &str) -> Result<ApiKey, String> {
    match std::env::var(var) {
        Ok(key) if !key.trim().is_empty() => Ok(ApiKey(key.trim().to_owned())),
        Ok(_) => Err(format!(
            "the variable {var} is empty; export {var}=<the API key> before starting \
             voicehost, or leave openai_api_key_env empty for a server without a key"
        )),
        Err(_) => Err(format!(
            "voicehost's environment has no {var} (or it is not UTF-8); export {var}=<the \
             API key> before starting voicehost, or leave openai_api_key_env empty for a \
             server without a key"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(entries: &[(&str, &str)]) -> Result<Settings, String> {
        let config = PluginConfig::new(
            "llm",
            entries
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .with_keys(KEYS.to_vec());
        config.validate().map_err(|e| e.message.to_string())?;
        Settings::from_config(&config).map_err(|e| e.message.to_string())
    }

    #[test]
    fn the_defaults_are_valid() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.backend, Backend::Llama);
        assert_eq!(s.openai_url, "http://127.0.0.1:8080/v1");
        assert!(!s.allow_remote);
        assert_eq!(s.openai_first_token_timeout, Duration::from_secs(120));
    }

    #[test]
    fn a_server_on_another_machine_needs_allow_remote() {
        for url in [
            "http://localhost:8080/v1/",
            "http://127.0.0.2:1234",
            "http://[::1]:8000/v1",
        ] {
            let s = settings(&[("openai_url", url)]).unwrap();
            assert!(!s.openai_url.ends_with('/'), "{}", s.openai_url);
        }
        for key in ["openai_url", "ollama_url"] {
            for url in ["http://192.168.1.20:8080/v1", "http://gpu-box:8000/v1"] {
                let err = settings(&[(key, url)]).unwrap_err();
                assert!(
                    err.contains(key)
                        && err.contains(
                            "set allow_remote = true in [llm] to send text to another machine"
                        ),
                    "{err}"
                );
                settings(&[(key, url), ("allow_remote", "true")]).unwrap();
            }
        }
    }

    #[test]
    fn a_bad_url_or_key_variable_is_refused_with_every_problem() {
        let err = settings(&[
            ("openai_url", "https://127.0.0.1/v1"),
            ("openai_api_key_env", "sk-abc123"),
            ("ollama_url", "localhost"),
        ])
        .unwrap_err();
        assert!(err.contains("only http://"), "{err}");
        assert!(err.contains("ollama_url"), "{err}");
        assert!(
            err.contains("never the key itself") && !err.contains("sk-abc123"),
            "{err}"
        );
        // Each at its key, for a file:line.
        let mut s = settings(&[]).unwrap();
        s.openai_url = "http://10.0.0.2/v1".to_owned();
        s.openai_api_key_env = "sk-abc".to_owned();
        let keys: Vec<String> = s.problems().into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["openai_url", "openai_api_key_env"]);
        let err = settings(&[("openai_url", "http://me:secret@127.0.0.1/v1")]).unwrap_err();
        assert!(
            err.contains("user name or password") && !err.contains("secret"),
            "{err}"
        );
    }

    #[test]
    fn a_named_key_variable_must_be_set_for_the_openai_backend() {
        let var = "VOICEHOST_TEST_UNSET_KEY_VARIABLE";
        let err = settings(&[("backend", "openai"), ("openai_api_key_env", var)]).unwrap_err();
        assert!(err.contains(&format!("export {var}=")), "{err}");
        // Another backend does not read it.
        settings(&[("openai_api_key_env", var)]).unwrap();
        let s = settings(&[("backend", "openai"), ("openai_api_key_env", "PATH")]).unwrap();
        assert!(!format!("{s:?}").contains(&std::env::var("PATH").unwrap()));
    }
}
