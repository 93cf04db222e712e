//! What the orchestration reads of the configuration: the `[loader]` and `[system]` keys the
//! [`Host`](crate::host::Host), the startup phases, the supervisor and hot swap act on.
//! `voicehost`'s config builds a [`LoaderSettings`] from the file.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `[system] gpu`: whether the VRAM guard runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuMode {
    Auto,
    Required,
    Off,
}

/// `[loader] startup_mode`: whether the services of one phase start together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupMode {
    PhasedParallel,
    Sequential,
}

/// The settings of a [`Host`](crate::host::Host).
#[derive(Debug, Clone)]
pub struct LoaderSettings {
    /// `[loader] startup_mode`.
    pub startup_mode: StartupMode,
    /// `[loader] parallel_phase_timeout_ms`: phase 1 must serve within it.
    pub parallel_phase_timeout: Duration,
    /// `[loader] stagger_below_vram_mb`: phase 1 starts one by one below this much free
    /// VRAM (0: never).
    pub stagger_below_vram_mb: u64,
    /// `[loader] restart_backoff_ms`: the waits before each retry of a phase or restart of a
    /// service; as many restarts per minute at most.
    pub restart_backoff: Vec<Duration>,
    /// `[loader] health_interval_ms`: how often the supervisor checks each service.
    pub health_interval: Duration,
    /// `[loader] stop_timeout_ms`: how long a service may take to stop.
    pub stop_timeout: Duration,
    /// `[loader] watch_plugins`: a changed library file is hot swapped.
    pub watch_plugins: bool,
    /// `[loader] bind_addr`: the address plugins serve on.
    pub bind_addr: IpAddr,
    /// `[system] gpu`.
    pub gpu: GpuMode,
    /// `[system] min_vram_mb`: free VRAM needed before phase 1.
    pub min_vram_mb: u64,
    /// `[system] phase_vram_mb`: free VRAM needed before each later phase.
    pub phase_vram_mb: u64,
    /// `[system] log_dir`.
    pub log_dir: PathBuf,
    /// `[system] models_dir`: what plugins receive as their data directory.
    pub models_dir: PathBuf,
}
