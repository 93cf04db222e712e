//! The voicehost host: loads the assistant's services as plugins through the stable ABI
//! (`voicehost-plugin-api`), starts them, gates on their gRPC health, serves the admin API
//! and stops them cleanly.
//!
//! `main.rs` only parses the command line; everything else lives here. Loading and
//! verifying libraries, running them in process or in a worker, the service set, and the
//! orchestration (the `Host` with its slots, startup phases, VRAM guard, supervisor and
//! hot swap) are the loader crate's (`voicehost-loader`), re-exported here at their old
//! paths; this crate builds the loader's settings from its config and adds the dialog,
//! the admin API, the app log and the command line. `voicehost bench` is the bench crate's
//! (`voicehost-bench`), which runs this crate's `Config` in process (`bench_host.rs`).

pub mod admin;
pub mod applog;
mod bench_host;
pub mod cli;
pub mod config;
pub mod ctl;
pub mod dialog;
pub mod plugin_info;
pub mod run;
pub mod skills;

pub use voicehost_loader::{
    elf, gpu, host, instance, phases, plugin, service, supervisor, swap, worker,
};

/// Exit code for an invalid config file (EX_USAGE).
pub const EXIT_CONFIG: u8 = 64;
