//! The plugin slots of a running host: verify, start (in the host or in a worker process),
//! health gate, stop, and what the admin API shows.
//!
//! Each slot keeps its library and running instance behind one async lock, so the startup
//! phases, the supervisor, hot swap and the admin API never race on a plugin.
//!
//! This module holds the [`Host`], its slots and accessors; `verify` checks a library before
//! it is used, `lifecycle` starts and stops services, `health` asks a plugin's
//! `grpc.health.v1` and `info` says what the admin API shows.

mod health;
mod info;
mod lifecycle;
mod verify;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::{Mutex, MutexGuard};
use tonic::transport::Channel;
use voicehost_plugin_api::abi::LogSink;
use voicehost_proto::kwd::v1::kwd_service_client::KwdServiceClient;
use voicehost_proto::kwd::v1::{DisableRequest, EnableRequest};
use voicehost_proto::loader::v1::{ServiceInfo, ServiceState};

use crate::instance::Running;
use crate::plugin::{LoadError, PluginLibrary, StartEnv};
use crate::service::Service;
use crate::settings::LoaderSettings;
use crate::slot::PluginSlot;
use crate::worker::LibInfo;

pub use health::{check_health, endpoint};
pub use info::{info_of, isolation_name};
pub use verify::{sha256_of, verify};

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
    #[error("unknown service {0:?}; valid services: logger, tts, llm, stt, kwd, wyoming")]
    Unknown(String),
    #[error("{0} is disabled in the config file; set enabled = true in its section")]
    Disabled(String),
    #[error("{0}")]
    Busy(String),
}

/// How the admin API answers a service error.
impl From<ServiceError> for tonic::Status {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Unknown(_) | ServiceError::Disabled(_) => {
                tonic::Status::invalid_argument(e.to_string())
            }
            ServiceError::Load(_) | ServiceError::Refused { .. } => {
                tonic::Status::failed_precondition(e.to_string())
            }
            ServiceError::Busy(_) => tonic::Status::unavailable(e.to_string()),
            ServiceError::Start { .. } | ServiceError::Health { .. } => {
                tonic::Status::unavailable(e.to_string())
            }
        }
    }
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
    settings: LoaderSettings,
    env: StartEnv,
    slots: Vec<Slot>,
    /// Where plugins' log records go.
    log: LogSink,
    shutting_down: AtomicBool,
    /// Set by the dialog manager while a dialog runs; hot swaps wait for it to clear.
    pub dialog_active: AtomicBool,
}

impl Host {
    /// A host for `slots` (in startup order); plugins' log records go to `log`.
    pub fn new(settings: LoaderSettings, slots: Vec<PluginSlot>, log: LogSink) -> Self {
        let env = StartEnv {
            bind_addr: settings.bind_addr.to_string(),
            log_dir: settings.log_dir.clone(),
            data_dir: settings.models_dir.clone(),
        };
        let slots = slots
            .into_iter()
            .map(|p| Slot {
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
                config: p,
            })
            .collect();
        Self {
            settings,
            env,
            slots,
            log,
            shutting_down: AtomicBool::new(false),
            dialog_active: AtomicBool::new(false),
        }
    }

    /// The `[loader]` and `[system]` settings the host was built with.
    pub fn settings(&self) -> &LoaderSettings {
        &self.settings
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
