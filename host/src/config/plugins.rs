//! Plugin sections against what the plugin that will be loaded declares.
//!
//! The host owns only the keys every slot has; the rest of a section belongs to the plugin
//! in it, which declares its keys (kind, default, doc) through the ABI. `voicehost
//! validate` and `voicehost run` ask each enabled slot's library for them — in a worker
//! process, so no plugin code runs in the host — and report every key that is unknown to
//! it or ill-typed with the same `file:line: [section] key: message` errors as the host's
//! own keys. Undeclared `x_` keys pass (settings of another plugin swapped in later). A
//! library that declares nothing (built before voicehost-plugin-api 0.1.2) gets only `x_`
//! keys, as before.
//!
//! What depends on several keys the plugin checks itself: the same worker runs the
//! plugin's check on the section its start would receive, and each problem is reported at
//! its key's line (the section's header line when the key is not written). A library
//! without a check (built before the ABI had it) gets none.

use std::path::PathBuf;

use voicehost_plugin_api::schema::{ConfigKey, KeyKind};
use voicehost_plugin_runtime::keys::{self, EXTENSION_PREFIX};

use super::{Config, ConfigError, ModelFileRef, PluginSlot, schema};
use crate::service::Service;
use crate::worker::{LibInfo, SectionProblem};

/// What the library of one slot said about itself.
#[derive(Debug, Clone)]
pub struct Declared {
    pub service: Service,
    /// Its name, for messages.
    pub plugin: String,
    /// Its keys; `None` when it declares none.
    pub keys: Option<Vec<ConfigKey>>,
    /// What its own check of the section found (none when it has no check).
    pub problems: Vec<SectionProblem>,
}

impl Declared {
    /// From a worker's (or an in-process load's) report.
    pub fn of(service: Service, info: &LibInfo) -> Declared {
        Declared {
            service,
            plugin: info.name.clone(),
            keys: info
                .config_keys
                .as_ref()
                .map(|keys| keys.iter().filter_map(|k| k.to_abi()).collect()),
            problems: info.section_problems.clone().unwrap_or_default(),
        }
    }
}

impl Config {
    /// Asks every slot's library (that exists) for its keys and to check its section,
    /// each in a worker process; a library that cannot be checked is reported at its
    /// `library` line.
    pub fn declared_keys(&self) -> (Vec<Declared>, Vec<ConfigError>) {
        let (mut declared, mut errors) = (Vec::new(), Vec::new());
        // Disabled slots too: a typo there surfaces before the slot is turned on.
        for slot in self.plugins.iter().filter(|p| p.library.is_file()) {
            let checked = crate::instance::check_in_worker_blocking(
                &slot.library,
                slot.service.name(),
                Some(&slot.section),
            );
            match checked {
                Ok(info) => declared.push(Declared::of(slot.service, &info)),
                Err(why) => errors.push(self.error(
                    slot.library_line,
                    format!("[{}] library", slot.service),
                    // The loader's message names the file and says what to do.
                    why.message,
                )),
            }
        }
        (declared, errors)
    }

    /// Checks each slot's written keys against what its library declares, reports what
    /// the plugin's own check of the section found, and collects the model files those
    /// keys name (for [`Config::check_model_files`]).
    pub fn check_plugin_keys(&mut self, declared: &[Declared]) -> Vec<ConfigError> {
        let mut errors = Vec::new();
        let mut model_files = Vec::new();
        for d in declared {
            let Some(slot) = self.plugins.iter().find(|p| p.service == d.service) else {
                continue;
            };
            errors.extend(check_slot(self, slot, d));
            errors.extend(d.problems.iter().map(|p| self.section_problem(slot, p)));
            if let Some(keys) = d.keys.as_ref().filter(|_| slot.enabled) {
                model_files.extend(named_model_files(slot, keys));
            }
        }
        self.model_files = model_files;
        errors
    }

    /// `problem` of `slot`'s section at the line of its key, else of the section header.
    fn section_problem(&self, slot: &PluginSlot, problem: &SectionProblem) -> ConfigError {
        let section = slot.service.name();
        let header = self.section_lines.get(section).copied().unwrap_or(0);
        let written = slot
            .section
            .iter()
            .zip(&slot.lines)
            .find(|((key, _), _)| *key == problem.key)
            .map(|(_, line)| *line);
        let place = if problem.key.is_empty() {
            format!("[{section}]")
        } else {
            format!("[{section}] {}", problem.key)
        };
        self.error(written.unwrap_or(header), place, problem.message.clone())
    }

    fn error(&self, line: usize, place: String, message: String) -> ConfigError {
        ConfigError {
            file: self.path.clone(),
            line,
            place,
            message,
        }
    }
}

/// The written entries of `slot` that are the plugin's (not the slot keys the host owns).
fn plugin_entries(slot: &PluginSlot) -> impl Iterator<Item = (&str, &str, usize)> {
    slot.section
        .iter()
        .zip(&slot.lines)
        .filter(|((key, _), _)| !schema::PLUGIN_KEYS.contains(&key.as_str()))
        .map(|((key, value), line)| (key.as_str(), value.as_str(), *line))
}

fn check_slot(config: &Config, slot: &PluginSlot, d: &Declared) -> Vec<ConfigError> {
    let section = slot.service.name();
    let mut errors = Vec::new();
    for (key, value, line) in plugin_entries(slot) {
        let place = format!("[{section}] {key}");
        let declared = d
            .keys
            .as_ref()
            .and_then(|keys| keys.iter().find(|k| k.name.as_str() == key));
        let message = match (declared, &d.keys) {
            (Some(k), _) => match keys::check(k, value) {
                Ok(()) => continue,
                Err(why) => format!("invalid value {value:?}: {why}"),
            },
            (None, _) if key.starts_with(EXTENSION_PREFIX) => continue,
            (None, Some(keys)) => {
                let mut names: Vec<&str> = schema::PLUGIN_KEYS.to_vec();
                names.extend(keys.iter().map(|k| k.name.as_str()));
                format!(
                    "unknown key; valid keys in [{section}] for {}: {}",
                    d.plugin,
                    names.join(", ")
                )
            }
            (None, None) => format!(
                "unknown key: {} declares no config keys (built on voicehost-plugin-api 0.1.1 \
                 or older), so only {} and x_ keys reach it",
                d.plugin,
                schema::PLUGIN_KEYS.join(", ")
            ),
        };
        errors.push(config.error(line, place, message));
    }
    errors
}

/// The model files named by written keys of a model kind. Only written keys count, not
/// defaults: the files a plugin falls back to are its own business at start.
fn named_model_files(slot: &PluginSlot, keys: &[ConfigKey]) -> Vec<ModelFileRef> {
    let mut out = Vec::new();
    for (key, value, line) in plugin_entries(slot) {
        let Some(k) = keys.iter().find(|k| k.name.as_str() == key) else {
            continue;
        };
        if !matches!(k.kind, KeyKind::ModelFile | KeyKind::ModelFiles) {
            continue;
        }
        for path in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            out.push(ModelFileRef {
                section: slot.service.name().to_owned(),
                key: key.to_owned(),
                path: PathBuf::from(path),
                line,
            });
        }
    }
    out
}
