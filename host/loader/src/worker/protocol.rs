//! The typed messages between the host and a `voicehost worker` (serde, one JSON line
//! each): what the host writes on the worker's stdin ([`WorkerSpec`] to run a plugin,
//! [`CheckSpec`] to check a section) and what the worker answers on stdout ([`WorkerMsg`]).
//! Fields are only added, with a default, so that either side reads the other's older
//! lines.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use voicehost_plugin_api::HealthStatus;
use voicehost_plugin_api::abi::LogLevel;
use voicehost_plugin_api::schema::{ConfigKey, KeyKind, KeyProblem};

use crate::plugin::{LoadError, PluginLibrary};
use crate::service::Service;

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
    /// What the plugin's own check found wrong with the section a checking worker was
    /// given ([`CheckSpec`]); `None` when it was given none or the plugin has no check
    /// (built before voicehost-plugin-api had it).
    #[serde(default)]
    pub section_problems: Option<Vec<SectionProblem>>,
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
            section_problems: None,
        }
    }
}

/// What the host gives a checking worker (`voicehost worker --check`) on stdin, as one JSON
/// line: the section to run the plugin's own check on, as its start would receive it.
/// Without it (stdin empty or a terminal) the worker only loads and verifies the library.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckSpec {
    pub section: Vec<(String, String)>,
}

/// One problem the plugin's check found (the ABI's `KeyProblem`, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SectionProblem {
    /// The key it belongs to; empty for the section as a whole.
    pub key: String,
    /// What is wrong and what to do, without the section and key.
    pub message: String,
}

impl SectionProblem {
    pub fn of(problem: &KeyProblem) -> SectionProblem {
        SectionProblem {
            key: problem.key.to_string(),
            message: problem.message.to_string(),
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

    pub(crate) fn of(error: &LoadError) -> Refusal {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_answer_without_section_problems_still_reads() {
        // What a worker wrote before section checks: no `section_problems`.
        let old = r#"{"t":"info","name":"p","kind":"llm","version":"0.1.0","abi_version":"1.0.0","proto_package":"voicehost.llm.v1","features":[],"config_keys":null}"#;
        let Ok(WorkerMsg::Info(info)) = serde_json::from_str::<WorkerMsg>(old) else {
            panic!("not an info message: {old}");
        };
        assert_eq!(info.section_problems, None);

        let mut info = info;
        info.section_problems = Some(vec![SectionProblem::of(&KeyProblem::new(
            "openai_url",
            "on another machine",
        ))]);
        let line = serde_json::to_string(&WorkerMsg::Info(info.clone())).unwrap();
        let Ok(WorkerMsg::Info(back)) = serde_json::from_str::<WorkerMsg>(&line) else {
            panic!("not an info message: {line}");
        };
        assert_eq!(back, info);
        let spec = CheckSpec {
            section: vec![("allow_remote".to_owned(), "true".to_owned())],
        };
        let line = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<CheckSpec>(&line).unwrap(), spec);
    }
}
