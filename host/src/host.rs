//! The plugin slots of a running host: load, start, health gate, stop.
//!
//! Each slot keeps its library and running instance behind one async lock, so the admin
//! API and the startup sequence never race on a plugin.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use voicehost_plugin_api::HealthStatus;
use voicehost_proto::loader::v1::{ServiceInfo, ServiceState};

use crate::config::{Config, PluginSlot};
use crate::plugin::{LoadError, PluginInstance, PluginLibrary, StartEnv};

/// Why a service could not be brought up.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{service} failed to start: {reason}")]
    Start { service: String, reason: String },
    #[error("{service} is not serving: {reason}")]
    Health { service: String, reason: String },
    #[error("unknown service {0:?}; valid services: logger, tts, llm, stt, kwd")]
    Unknown(String),
    #[error("{0} is disabled in the config file; set enabled = true in its section")]
    Disabled(String),
}

#[derive(Debug, Default)]
struct SlotState {
    library: Option<PluginLibrary>,
    instance: Option<PluginInstance>,
    state: Option<ServiceState>,
    last_error: String,
    restarts: u32,
}

#[derive(Debug)]
struct Slot {
    config: PluginSlot,
    state: Mutex<SlotState>,
}

/// The host's services.
#[derive(Debug)]
pub struct Host {
    config: Config,
    env: StartEnv,
    slots: Vec<Slot>,
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
                state: Mutex::new(SlotState::default()),
            })
            .collect();
        Self { config, env, slots }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Names of the enabled services, in startup order.
    pub fn enabled(&self) -> Vec<&'static str> {
        self.slots
            .iter()
            .filter(|s| s.config.enabled)
            .map(|s| s.config.name)
            .collect()
    }

    fn slot(&self, name: &str) -> Result<&Slot, ServiceError> {
        self.slots
            .iter()
            .find(|s| s.config.name == name)
            .ok_or_else(|| ServiceError::Unknown(name.to_owned()))
    }

    /// Loads and verifies the library of every enabled service, before anything starts.
    pub async fn verify_all(&self) -> Result<(), ServiceError> {
        for slot in self.slots.iter().filter(|s| s.config.enabled) {
            let library = load(&slot.config).await?;
            tracing::info!(
                service = slot.config.name,
                plugin = %library.info.name,
                version = %library.info.version,
                abi = %library.info.abi_version,
                path = %library.path.display(),
                "Plugin verified"
            );
            slot.state.lock().await.library = Some(library);
        }
        Ok(())
    }

    /// Starts `name` and waits until it is SERVING over `grpc.health.v1`.
    pub async fn start(&self, name: &str) -> Result<(), ServiceError> {
        let slot = self.slot(name)?;
        if !slot.config.enabled {
            return Err(ServiceError::Disabled(name.to_owned()));
        }
        let mut state = slot.state.lock().await;
        if state.instance.is_some() {
            return Ok(());
        }
        let result = self.start_locked(slot, &mut state).await;
        if let Err(e) = &result {
            state.state = Some(ServiceState::Failed);
            state.last_error = e.to_string();
            tracing::error!(service = name, error = %e, "Service failed");
        }
        result
    }

    async fn start_locked(&self, slot: &Slot, state: &mut SlotState) -> Result<(), ServiceError> {
        let name = slot.config.name;
        let library = match state.library.clone() {
            Some(library) => library,
            None => load(&slot.config).await?,
        };
        state.state = Some(ServiceState::Starting);
        let started = Instant::now();
        let (cfg, env, lib) = (slot.config.clone(), self.env.clone(), library.clone());
        let instance = tokio::task::spawn_blocking(move || lib.start(&cfg, &env))
            .await
            .map_err(|e| ServiceError::Start {
                service: name.to_owned(),
                reason: e.to_string(),
            })?
            .map_err(|e| ServiceError::Start {
                service: name.to_owned(),
                reason: e.to_string(),
            })?;
        state.library = Some(library);
        let port = slot.config.port;
        let gate = wait_serving(
            &self.env.bind_addr,
            port,
            &instance,
            slot.config.start_timeout,
        )
        .await;
        state.instance = Some(instance);
        if let Err(reason) = gate {
            self.stop_locked(slot, state).await;
            return Err(ServiceError::Health {
                service: name.to_owned(),
                reason,
            });
        }
        state.state = Some(ServiceState::Serving);
        state.last_error.clear();
        tracing::info!(
            service = name,
            port,
            ms = started.elapsed().as_millis() as u64,
            "Service serving"
        );
        Ok(())
    }

    /// Stops `name` if it runs.
    pub async fn stop(&self, name: &str) -> Result<(), ServiceError> {
        let slot = self.slot(name)?;
        let mut state = slot.state.lock().await;
        self.stop_locked(slot, &mut state).await;
        Ok(())
    }

    async fn stop_locked(&self, slot: &Slot, state: &mut SlotState) {
        let Some(mut instance) = state.instance.take() else {
            return;
        };
        let name = slot.config.name;
        let timeout = self.config.loader.stop_timeout;
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || instance.stop(timeout)).await;
        state.state = Some(ServiceState::Stopped);
        match result {
            Ok(Ok(())) => tracing::info!(
                service = name,
                ms = started.elapsed().as_millis() as u64,
                "Service stopped"
            ),
            Ok(Err(e)) => {
                state.last_error = e.message.to_string();
                tracing::warn!(service = name, error = %e.message, "Service stop failed");
            }
            Err(e) => tracing::warn!(service = name, error = %e, "Service stop failed"),
        }
    }

    /// Stops every running service in reverse startup order; runs `before_last` (the app log
    /// flush) and then stops the phase-0 service, the logger, last.
    pub async fn stop_all(&self, before_last: impl std::future::Future<Output = ()>) {
        for slot in self.slots.iter().rev().filter(|s| s.config.phase > 0) {
            let mut state = slot.state.lock().await;
            self.stop_locked(slot, &mut state).await;
        }
        before_last.await;
        for slot in self.slots.iter().filter(|s| s.config.phase == 0) {
            let mut state = slot.state.lock().await;
            self.stop_locked(slot, &mut state).await;
        }
    }

    /// A gRPC channel to `name`'s port (connects lazily).
    pub fn channel(&self, name: &str) -> Result<Channel, ServiceError> {
        let slot = self.slot(name)?;
        Ok(endpoint(&self.env.bind_addr, slot.config.port).connect_lazy())
    }

    /// State of every service, for the admin API.
    pub async fn list(&self) -> Vec<ServiceInfo> {
        let mut out = Vec::new();
        for slot in &self.slots {
            out.push(self.info_of(slot).await);
        }
        out
    }

    /// State of one service.
    pub async fn info(&self, name: &str) -> Result<ServiceInfo, ServiceError> {
        Ok(self.info_of(self.slot(name)?).await)
    }

    async fn info_of(&self, slot: &Slot) -> ServiceInfo {
        let state = slot.state.lock().await;
        let status = match (&state.instance, state.state) {
            _ if !slot.config.enabled => ServiceState::Disabled,
            (Some(instance), _) => match instance.health().status {
                HealthStatus::Serving => ServiceState::Serving,
                HealthStatus::Starting => ServiceState::Starting,
                HealthStatus::NotServing => ServiceState::NotServing,
                HealthStatus::Stopped => ServiceState::Stopped,
            },
            (None, Some(s)) => s,
            (None, None) => ServiceState::Stopped,
        };
        let (version, proto_package, features) =
            state.library.as_ref().map_or_else(Default::default, |l| {
                (
                    l.info.version.to_string(),
                    l.info.proto_package.to_string(),
                    l.info.features.iter().map(|f| f.to_string()).collect(),
                )
            });
        ServiceInfo {
            name: slot.config.name.to_owned(),
            state: status as i32,
            phase: u32::from(slot.config.phase),
            version,
            library_path: slot.config.library.display().to_string(),
            library_sha256: String::new(),
            isolation: voicehost_proto::loader::v1::Isolation::InProcess as i32,
            port: u32::from(slot.config.port),
            restarts: state.restarts,
            last_error: state.last_error.clone(),
            pid: if state.instance.is_some() {
                std::process::id()
            } else {
                0
            },
            proto_package,
            features,
        }
    }
}

async fn load(slot: &PluginSlot) -> Result<PluginLibrary, ServiceError> {
    let path = slot.library.clone();
    let library = tokio::task::spawn_blocking(move || PluginLibrary::load(&path))
        .await
        .map_err(|e| ServiceError::Start {
            service: slot.name.to_owned(),
            reason: e.to_string(),
        })??;
    library.check_kind(slot.name)?;
    Ok(library)
}

fn endpoint(bind_addr: &str, port: u16) -> Endpoint {
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

/// Polls `grpc.health.v1.Health/Check` on the plugin's port until SERVING. A plugin that
/// reports NOT_SERVING through the ABI fails at once with its reason.
async fn wait_serving(
    bind_addr: &str,
    port: u16,
    instance: &PluginInstance,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut client = HealthClient::new(endpoint(bind_addr, port).connect_lazy());
    let mut last;
    loop {
        let report = instance.health();
        if report.status == HealthStatus::NotServing {
            return Err(format!("reported NOT_SERVING: {}", report.detail));
        }
        match client
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
        {
            Ok(resp) if resp.get_ref().status == ServingStatus::Serving as i32 => return Ok(()),
            Ok(resp) => last = format!("health status {:?}", resp.get_ref().status()),
            Err(status) => last = format!("health check failed: {}", status.message()),
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "not SERVING within {} ms on port {port} ({last}; plugin says {:?} {})",
                timeout.as_millis(),
                report.status,
                report.detail
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
