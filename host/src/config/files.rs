//! Checks against the file system, made by `Config::load` (not `Config::parse`): enabled
//! plugins' libraries and the model files their sections name must exist; each error says how
//! to get the file. Also where plugin libraries are looked for by default.

use std::path::{Path, PathBuf};

use super::{Config, ConfigError};

impl Config {
    /// Enabled plugins' libraries must exist; the error says how to build them.
    pub(super) fn check_libraries(&self) -> Vec<ConfigError> {
        self.plugins
            .iter()
            .filter(|p| p.enabled && !p.library.is_file())
            .map(|p| ConfigError {
                file: self.path.clone(),
                line: p.library_line,
                place: format!("[{}] library", p.service),
                message: format!(
                    "plugin library {} does not exist; build it with `cargo build --release -p {}` \
                     (or set [loader] plugin_dir / [{}] library to where it is)",
                    p.library.display(),
                    crate_name_of(&p.library),
                    p.service
                ),
            })
            .collect()
    }

    /// Enabled plugins' model files must exist; the error names the fetch command.
    pub fn check_model_files(&self) -> Vec<ConfigError> {
        let manifest = voicehost_models::manifest::Manifest::builtin().ok();
        self.model_files
            .iter()
            .filter(|m| !m.path.is_file())
            .map(|m| {
                let known = m
                    .path
                    .strip_prefix(&self.system.models_dir)
                    .ok()
                    .and_then(|rel| manifest.as_ref()?.file_by_path(rel.to_str()?))
                    .map(|(model, _)| model.name.clone());
                let what_to_do = match known {
                    Some(name) => format!("fetch it with `voicehost models fetch --only {name}`"),
                    None => format!(
                        "point [{}] {} at an existing file (`voicehost models list` shows the fetched ones)",
                        m.section, m.key
                    ),
                };
                ConfigError {
                    file: self.path.clone(),
                    line: m.line,
                    place: format!("[{}] {}", m.section, m.key),
                    message: format!("model file {} not found; {what_to_do}", m.path.display()),
                }
            })
            .collect()
    }
}

/// Directory of the running executable: where cargo puts the plugin libraries it builds.
pub fn default_plugin_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_owned))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `libvoicehost_plugin_logger.so` → `voicehost-plugin-logger`.
pub fn crate_name_of(library: &Path) -> String {
    let stem = library
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    stem.strip_prefix("lib").unwrap_or(&stem).replace('_', "-")
}
