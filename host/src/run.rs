//! `voicehost run`: verify every plugin, start them in order, serve until a signal or an
//! admin `Shutdown`, then stop everything (the logger last, after app.log is flushed).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use voicehost_plugin_api::abi::LogLevel;
use voicehost_proto::logger::v1::logger_service_client::LoggerServiceClient;

use crate::admin;
use crate::applog;
use crate::config::Config;
use crate::dialog::{self, DialogManager};
use crate::gpu;
use crate::host::{Host, ServiceError};
use crate::phases;
use crate::service::{self, Service};
use crate::skills::Timers;
use crate::supervisor;
use crate::swap;

/// Why `run` ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "cannot create the log directory {dir}: {error}; fix [system] log_dir or its permissions"
    )]
    LogDir { dir: String, error: std::io::Error },
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("admin API: {0}")]
    Admin(String),
    #[error("cannot install the signal handler: {0}")]
    Signal(std::io::Error),
    #[error("FATAL: {0}")]
    Fatal(String),
}

/// Runs the host until SIGINT/SIGTERM or an admin `Shutdown` (or, with a `script`, until
/// the script has played and the assistant is idle again).
pub async fn run(config: Config, script: Option<String>) -> Result<(), RunError> {
    let logger_target = applog::init(LogLevel::Info);
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        config = %config.path.display(),
        "Host starting"
    );
    std::fs::create_dir_all(&config.system.log_dir).map_err(|error| RunError::LogDir {
        dir: config.system.log_dir.display().to_string(),
        error,
    })?;

    reset_spoken_wav(&config);
    let settings = config.loader_settings();
    let admin_port = config.loader.admin_port;
    let Config {
        dialog: dialog_cfg,
        plugins,
        ..
    } = config;
    let host = Arc::new(Host::new(settings, plugins, applog::PLUGIN_LOG_SINK));
    let (shutdown_tx, mut shutdown_rx) = watch::channel(false);
    let mut signals = Signals::new().map_err(RunError::Signal)?;

    let probe = gpu::probe_from_env();
    let result = async {
        host.verify_all().await?;
        let admin = admin::serve(host.clone(), admin_port, shutdown_tx.clone())
            .map_err(|e| RunError::Admin(e.message.to_string()))?;
        let logger_ready = || {
            if let Ok(channel) = host.channel(Service::Logger)
                && host.enabled().contains(&Service::Logger)
            {
                logger_target.send_replace(Some(LoggerServiceClient::new(channel)));
            }
        };
        tokio::select! {
            started = phases::start_all(&host, probe.as_ref(), logger_ready) => {
                started.map_err(RunError::Fatal)?;
            }
            () = signals.recv() => {
                tracing::info!("Interrupted during startup");
                return Ok(admin);
            }
            _ = shutdown_rx.wait_for(|stop| *stop) => return Ok(admin),
        }
        let supervisor = supervisor::spawn(host.clone());
        let watcher = swap::watch(host.clone());
        let greeting = dialog_cfg.warmup_greeting.clone();
        let followup = dialog_cfg.followup;
        let dialogs = DialogManager::spawn(host.clone(), dialog_cfg).await;
        dialog::warmup(&host, &greeting).await;
        tracing::info!(event = "host_ready", services = %service::join(&host.enabled(), ","), "All services serving");
        let script = script.map(|input| {
            tokio::spawn(play_script(
                host.clone(),
                dialogs.timers(),
                input,
                followup,
                shutdown_tx.clone(),
            ))
        });
        tokio::select! {
            () = signals.recv() => tracing::info!(event = "signal_received", "Shutting down"),
            _ = shutdown_rx.wait_for(|stop| *stop) => {}
        }
        host.begin_shutdown();
        if let Some(script) = script {
            script.abort();
        }
        dialogs.stop();
        supervisor.abort();
        watcher.abort();
        Ok(admin)
    }
    .await;

    let flush_target = logger_target.clone();
    host.stop_all(async move {
        applog::flush(Duration::from_secs(2)).await;
        flush_target.send_replace(None);
    })
    .await;
    match result {
        Ok(mut admin) => {
            let _ = tokio::task::spawn_blocking(move || admin.stop(Duration::from_secs(2))).await;
            tracing::info!("Host stopped");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The WAV file tts writes what it says to (output = wav:PATH, or auto's fallback) starts
/// empty on each run, like app.log; a tts restarted during the run appends to it.
fn reset_spoken_wav(config: &Config) {
    let Some(tts) = config
        .plugins
        .iter()
        .find(|p| p.service == Service::Tts && p.enabled)
    else {
        return;
    };
    let output = tts
        .section
        .iter()
        .rev()
        .find(|(k, _)| k == "output")
        .map_or("auto", |(_, v)| v.as_str());
    let path = match output.strip_prefix("wav:") {
        Some(path) => std::path::PathBuf::from(path),
        None if output == "auto" => config.system.log_dir.join("tts-output.wav"),
        None => return,
    };
    if let Err(e) = std::fs::remove_file(&path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "Cannot reset the spoken WAV file");
    }
}

/// `--input`: switches stt's capture to `input` once the assistant is ready, and shuts the
/// host down when a finite input has played and no dialog ran (and no timer ran or rang)
/// for the `followup` window.
async fn play_script(
    host: Arc<Host>,
    timers: Arc<Timers>,
    input: String,
    followup: Duration,
    shutdown: watch::Sender<bool>,
) {
    use voicehost_proto::stt::v1::SetInputRequest;
    use voicehost_proto::stt::v1::stt_service_client::SttServiceClient;

    let Ok(channel) = host.channel(Service::Stt) else {
        return;
    };
    // kwd listens again only after the greeting's echo has died away.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let opened = SttServiceClient::new(channel)
        .set_input(SetInputRequest {
            input: input.clone(),
        })
        .await;
    let duration = match opened {
        Ok(r) => {
            let r = r.into_inner();
            tracing::info!(event = "script_started", input = %r.description, duration_ms = r.duration_ms, "Playing the input script");
            Duration::from_millis(u64::from(r.duration_ms))
        }
        Err(status) => {
            tracing::error!(event = "script_failed", input = %input, error = %status.message(), "The input script cannot be played");
            eprintln!("voicehost: --input {input}: {}", status.message());
            let _ = shutdown.send(true);
            return;
        }
    };
    if duration.is_zero() {
        return; // a device or a looped file: runs until stopped
    }
    tokio::time::sleep(duration).await;
    let quiet_for = followup + Duration::from_secs(1);
    let mut quiet_since = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if host.dialog_active.load(std::sync::atomic::Ordering::SeqCst) || !timers.is_idle() {
            quiet_since = std::time::Instant::now();
        } else if quiet_since.elapsed() >= quiet_for {
            break;
        }
    }
    tracing::info!(
        event = "script_done",
        "The input script has played; shutting down"
    );
    let _ = shutdown.send(true);
}

/// SIGINT and SIGTERM.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
