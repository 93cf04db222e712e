//! The voicehost host: loads the assistant's services as plugins through the stable ABI
//! (`voicehost-plugin-api`), starts them, gates on their gRPC health, serves the admin API
//! and stops them cleanly.
//!
//! `main.rs` only parses the command line; everything else lives here. Loading and
//! verifying libraries, running them in process or in a worker, and the service set are
//! the loader crate's (`voicehost-loader`), re-exported here at their old paths.

pub mod admin;
pub mod applog;
pub mod bench;
pub mod cli;
pub mod config;
pub mod ctl;
pub mod dialog;
pub mod gpu;
pub mod host;
pub mod phases;
pub mod plugin_info;
pub mod run;
pub mod supervisor;
pub mod swap;

pub use voicehost_loader::{elf, instance, plugin, service, worker};

/// Exit code for an invalid config file (EX_USAGE).
pub const EXIT_CONFIG: u8 = 64;
