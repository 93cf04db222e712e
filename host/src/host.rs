//! The plugin slots of a running host: verify, start (in the host or in a worker process),
//! health gate, stop, and what the admin API shows.
//!
//! Each slot keeps its library and running instance behind one async lock, so the startup
//! phases, the supervisor, hot swap and the admin API never race on a plugin.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Mutex, MutexGuard};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use voicehost_plugin_api::HealthStatus;
use voicehost_proto::kwd::v1::kwd_service_client::KwdServiceClient;
use voicehost_proto::kwd::v1::{DisableRequest, EnableRequest};
use voicehost_proto::loader::v1::{Isolation as ProtoIsolation, ServiceInfo, ServiceState};

use crate::config::{Config, Isolation, PluginSlot};
use crate::instance::{Running, WorkerProc, check_in_worker};
use crate::plugin::{LoadError, PluginLibrary, StartEnv};
use crate::service::Service;
use crate::worker::LibInfo;

/// Why a service could not be brought up.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("refusing plugin {path}: {reason}")]
    Refused { path: String, reason: String },
    #[error("{service} failed to start: {reason}")]
    Start { service: String, reason: String },
    #[error("{service} is not serving: {reason}")]
    Health { service: String, reason: String },
    #[error("unknown service {0:?}; valid services: logger, tts, llm, stt, kwd")]
    Unknown(String),
    #[error("{0} is disabled in the config file; set enabled = true in its section")]
    Disabled(String),
    #[error("{0}")]
    Busy(String),
}

/// One service's mutable state.
#[derive(Debug)]
pub struct SlotState {
    /// The library in use (hot swap may replace the configured one).
    pub library_path: PathBuf,
    /// Verified library, for in-process plugins.
    pub library: Option<PluginLibrary>,
    pub info: Option<LibInfo>,
    pub sha256: String,
    pub running: Option<Running>,
    pub state: ServiceState,
    pub last_error: String,
    pub restarts: u32,
    /// When the recent automatic restarts happened (for the per-minute cap).
    pub recent_restarts: VecDeque<Instant>,
    /// When the running instance started serving.
    pub serving_since: Option<Instant>,
}

#[derive(Debug)]
pub struct Slot {
    pub config: PluginSlot,
    pub state: Mutex<SlotState>,
}

/// The host's services.
#[derive(Debug)]
pub struct Host {
    config: Config,
    env: StartEnv,
    slots: Vec<Slot>,
    shutting_down: AtomicBool,
    /// Set by the dialog manager while a dialog runs; hot swaps wait for it to clear.
    pub dialog_active: AtomicBool,
}

impl Host {
    pub fn new(config: Config) -> Self {
        let env = StartEnv {
            bind_addr: config.loader.bind_addr.to_string(),
            log_dir: config.system.log_dir.clone(),
            data_dir: config.system.models_dir.clone(),
        };
        let slots = config
            .plugins
            .iter()
            .map(|p| Slot {
                config: p.clone(),
                state: Mutex::new(SlotState {
                    library_path: p.library.clone(),
                    library: None,
                    info: None,
                    sha256: String::new(),
                    running: None,
                    state: if p.enabled {
                        ServiceState::Stopped
                    } else {
                        ServiceState::Disabled
                    },
                    last_error: String::new(),
                    restarts: 0,
                    recent_restarts: VecDeque::new(),
                    serving_since: None,
                }),
            })
            .collect();
        Self {
            config,
            env,
            slots,
            shutting_down: AtomicBool::new(false),
            dialog_active: AtomicBool::new(false),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn env(&self) -> &StartEnv {
        &self.env
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// The enabled services, in startup order.
    pub fn enabled(&self) -> Vec<Service> {
        self.slots
            .iter()
            .filter(|s| s.config.enabled)
            .map(|s| s.config.service)
            .collect()
    }

    pub fn slot(&self, service: Service) -> Result<&Slot, ServiceError> {
        self.slots
            .iter()
            .find(|s| s.config.service == service)
            .ok_or_else(|| ServiceError::Unknown(service.name().to_owned()))
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Loads and verifies the library of every enabled service, before anything starts.
    pub async fn verify_all(&self) -> Result<(), ServiceError> {
        for slot in self.slots.iter().filter(|s| s.config.enabled) {
            let mut state = slot.state.lock().await;
            let path = state.library_path.clone();
            let (library, info) = verify(&slot.config, &path).await?;
            tracing::info!(
                service = slot.config.service.name(),
                plugin = %info.name,
                version = %info.version,
                abi = %info.abi_version,
                isolation = isolation_name(slot.config.isolation),
                path = %path.display(),
                "Plugin verified"
            );
            state.sha256 = sha256_of(&path).await;
            state.library = library;
            state.info = Some(info);
        }
        Ok(())
    }

    /// Starts `service` and waits until it is SERVING over `grpc.health.v1`.
    pub async fn start(&self, service: Service) -> Result<(), ServiceError> {
        let slot = self.slot(service)?;
        if !slot.config.enabled {
            return Err(ServiceError::Disabled(service.name().to_owned()));
        }
        let mut state = slot.state.lock().await;
        if state.running.is_some() {
            return Ok(());
        }
        self.start_locked(slot, &mut state).await
    }

    /// Starts the slot's current library; on failure the slot is FAILED with the reason.
    pub async fn start_locked(
        &self,
        slot: &Slot,
        state: &mut SlotState,
    ) -> Result<(), ServiceError> {
        let result = self.try_start(slot, state).await;
        if let Err(e) = &result {
            state.state = ServiceState::Failed;
            state.last_error = e.to_string();
            tracing::error!(service = slot.config.service.name(), error = %e, "Service failed");
        }
        result
    }

    async fn try_start(&self, slot: &Slot, state: &mut SlotState) -> Result<(), ServiceError> {
        let name = slot.config.service.name();
        let path = state.library_path.clone();
        state.state = ServiceState::Starting;
        let started = Instant::now();
        tracing::info!(
            service = name,
            phase = slot.config.service.phase(),
            isolation = isolation_name(slot.config.isolation),
            "Service starting"
        );
        let start_error = |reason: String| ServiceError::Start {
            service: name.to_owned(),
            reason,
        };
        let mut running = match slot.config.isolation {
            Isolation::InProcess => {
                let library = match state.library.clone() {
                    Some(library) => library,
                    None => verify(&slot.config, &path)
                        .await?
                        .0
                        .ok_or_else(|| start_error("library not loaded".to_owned()))?,
                };
                let running = Running::start_in_process(&library, &slot.config, &self.env)
                    .await
                    .map_err(start_error)?;
                state.info = Some(LibInfo::of(&library));
                state.library = Some(library);
                running
            }
            Isolation::Process => {
                let (proc, info) = WorkerProc::spawn(
                    &slot.config,
                    &path,
                    &self.env,
                    self.config.loader.stop_timeout,
                )
                .await
                .map_err(start_error)?;
                state.info = Some(info);
                Running::Worker(proc)
            }
        };
        let port = slot.config.port;
        let gate = wait_serving(
            &self.env.bind_addr,
            port,
            &mut running,
            slot.config.start_timeout,
        )
        .await;
        state.running = Some(running);
        if let Err(reason) = gate {
            self.stop_locked(slot, state).await;
            return Err(ServiceError::Health {
                service: name.to_owned(),
                reason,
            });
        }
        state.state = ServiceState::Serving;
        state.serving_since = Some(Instant::now());
        state.last_error.clear();
        tracing::info!(
            service = name,
            port,
            pid = state.running.as_ref().map_or(0, Running::pid),
            ms = started.elapsed().as_millis() as u64,
            "Service serving"
        );
        Ok(())
    }

    /// Stops `service` if it runs; the supervisor leaves a stopped service alone.
    pub async fn stop(&self, service: Service) -> Result<(), ServiceError> {
        let slot = self.slot(service)?;
        let mut state = slot.state.lock().await;
        self.stop_locked(slot, &mut state).await;
        Ok(())
    }

    pub async fn stop_locked(&self, slot: &Slot, state: &mut SlotState) {
        let Some(running) = state.running.take() else {
            return;
        };
        let name = slot.config.service.name();
        let started = Instant::now();
        let result = running.stop(self.config.loader.stop_timeout).await;
        if state.state != ServiceState::Failed {
            state.state = ServiceState::Stopped;
        }
        match result {
            Ok(()) => tracing::info!(
                service = name,
                ms = started.elapsed().as_millis() as u64,
                "Service stopped"
            ),
            Err(e) => {
                state.last_error = e.clone();
                tracing::warn!(service = name, error = %e, "Service stop failed");
            }
        }
    }

    /// Stops every running service in reverse startup order (kwd, stt, llm, tts); runs
    /// `before_last` (the app log flush) and then stops the logger last.
    pub async fn stop_all(&self, before_last: impl std::future::Future<Output = ()>) {
        self.begin_shutdown();
        for slot in self
            .slots
            .iter()
            .rev()
            .filter(|s| s.config.service.phase() > 0)
        {
            let mut state = slot.state.lock().await;
            self.stop_locked(slot, &mut state).await;
        }
        before_last.await;
        for slot in self.slots.iter().filter(|s| s.config.service.phase() == 0) {
            let mut state = slot.state.lock().await;
            self.stop_locked(slot, &mut state).await;
        }
    }

    /// A gRPC channel to `service`'s port (connects lazily).
    pub fn channel(&self, service: Service) -> Result<Channel, ServiceError> {
        let slot = self.slot(service)?;
        Ok(endpoint(&self.env.bind_addr, slot.config.port).connect_lazy())
    }

    /// kwd `Enable` (`on`) or `Disable` with `reason`. Reasons nest in kwd: each holder
    /// (dialog, playback, supervisor) lifts only its own.
    pub async fn switch_kwd(&self, on: bool, reason: &str) -> Result<(), tonic::Status> {
        let channel = self
            .channel(Service::Kwd)
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let mut kwd = KwdServiceClient::new(channel);
        let reason = reason.to_owned();
        if on {
            kwd.enable(EnableRequest { reason }).await.map(drop)
        } else {
            kwd.disable(DisableRequest { reason }).await.map(drop)
        }
    }

    /// State of every service, for the admin API.
    pub async fn list(&self) -> Vec<ServiceInfo> {
        let mut out = Vec::new();
        for slot in &self.slots {
            let state = slot.state.lock().await;
            out.push(info_of(slot, &state));
        }
        out
    }

    /// State of one service.
    pub async fn info(&self, service: Service) -> Result<ServiceInfo, ServiceError> {
        let slot = self.slot(service)?;
        let state = slot.state.lock().await;
        Ok(info_of(slot, &state))
    }

    /// Locks `service`'s slot.
    pub async fn lock(
        &self,
        service: Service,
    ) -> Result<(&Slot, MutexGuard<'_, SlotState>), ServiceError> {
        let slot = self.slot(service)?;
        Ok((slot, slot.state.lock().await))
    }
}

/// What `ListServices` shows for one slot.
pub fn info_of(slot: &Slot, state: &SlotState) -> ServiceInfo {
    let status = match (&state.running, state.state) {
        _ if !slot.config.enabled => ServiceState::Disabled,
        (Some(running), ServiceState::Serving) => match running.health().status {
            HealthStatus::Serving => ServiceState::Serving,
            HealthStatus::Starting => ServiceState::Starting,
            HealthStatus::NotServing => ServiceState::NotServing,
            HealthStatus::Stopped => ServiceState::Stopped,
        },
        (_, s) => s,
    };
    let info = state.info.clone().unwrap_or_default();
    ServiceInfo {
        name: slot.config.service.name().to_owned(),
        state: status as i32,
        phase: u32::from(slot.config.service.phase()),
        version: info.version,
        library_path: state.library_path.display().to_string(),
        library_sha256: state.sha256.clone(),
        isolation: match slot.config.isolation {
            Isolation::Process => ProtoIsolation::Process,
            Isolation::InProcess => ProtoIsolation::InProcess,
        } as i32,
        port: u32::from(slot.config.port),
        restarts: state.restarts,
        last_error: state.last_error.clone(),
        pid: state.running.as_ref().map_or(0, Running::pid),
        proto_package: info.proto_package,
        features: info.features,
    }
}

pub fn isolation_name(isolation: Isolation) -> &'static str {
    match isolation {
        Isolation::Process => "process",
        Isolation::InProcess => "in_process",
    }
}

/// Verifies `path` for `slot`: in-process by loading it here, process isolation in a
/// short-lived worker (no plugin code enters the host).
pub async fn verify(
    slot: &PluginSlot,
    path: &Path,
) -> Result<(Option<PluginLibrary>, LibInfo), ServiceError> {
    match slot.isolation {
        Isolation::InProcess => {
            let owned = path.to_owned();
            let library = tokio::task::spawn_blocking(move || PluginLibrary::load(&owned))
                .await
                .map_err(|e| ServiceError::Start {
                    service: slot.service.name().to_owned(),
                    reason: e.to_string(),
                })??;
            library.check_kind(slot.service.name())?;
            let info = LibInfo::of(&library);
            Ok((Some(library), info))
        }
        Isolation::Process => {
            if !path.is_file() {
                return Err(LoadError::Open {
                    path: path.to_owned(),
                    reason: "no such file; build it first (cargo build --release) or fix the `library` key"
                        .to_owned(),
                }
                .into());
            }
            // Refused here with the reason, before a worker maps a file cut short.
            crate::elf::check_complete(path).map_err(|reason| LoadError::Open {
                path: path.to_owned(),
                reason,
            })?;
            let info = check_in_worker(path, slot.service.name())
                .await
                .map_err(|reason| ServiceError::Refused {
                    path: path.display().to_string(),
                    reason: reason
                        .strip_prefix(&format!("refusing plugin {}: ", path.display()))
                        .unwrap_or(&reason)
                        .to_owned(),
                })?;
            Ok((None, info))
        }
    }
}

/// Hex sha256 of a library file ("" if unreadable).
pub async fn sha256_of(path: &Path) -> String {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        voicehost_models::sha256_file(&path, |_| {})
            .map(|(_, h)| h)
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default()
}

pub fn endpoint(bind_addr: &str, port: u16) -> Endpoint {
    let host = if bind_addr.contains(':') {
        format!("[{bind_addr}]")
    } else {
        bind_addr.to_owned()
    };
    // The address is a validated IP, so the URI is always well-formed.
    Endpoint::from_shared(format!("http://{host}:{port}"))
        .unwrap_or_else(|_| Endpoint::from_static("http://127.0.0.1:1"))
        .connect_timeout(Duration::from_millis(500))
}

/// One `grpc.health.v1.Health/Check` on `port`: Ok when SERVING, else why not.
pub async fn check_health(
    client: &mut HealthClient<Channel>,
    timeout: Duration,
) -> Result<(), String> {
    let call = client.check(HealthCheckRequest {
        service: String::new(),
    });
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(resp)) if resp.get_ref().status == ServingStatus::Serving as i32 => Ok(()),
        Ok(Ok(resp)) => Err(format!("health status {:?}", resp.get_ref().status())),
        Ok(Err(status)) => Err(format!("health check failed: {}", status.message())),
        Err(_) => Err(format!(
            "health check got no answer within {} ms",
            timeout.as_millis()
        )),
    }
}

/// Polls `grpc.health.v1.Health/Check` on the plugin's port until SERVING. A plugin that
/// reports NOT_SERVING itself, or whose worker ends, fails at once with the reason.
async fn wait_serving(
    bind_addr: &str,
    port: u16,
    running: &mut Running,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut client = HealthClient::new(endpoint(bind_addr, port).connect_lazy());
    loop {
        if let Some(why) = running.exited() {
            return Err(format!("its worker process {why}"));
        }
        let report = running.health();
        if report.status == HealthStatus::NotServing {
            return Err(format!("reported NOT_SERVING: {}", report.detail));
        }
        let last = match check_health(&mut client, Duration::from_secs(1)).await {
            Ok(()) => return Ok(()),
            Err(why) => why,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "not SERVING within {} ms on port {port} ({last}; plugin says {:?} {})",
                timeout.as_millis(),
                report.status,
                report.detail
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
