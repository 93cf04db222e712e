//! The voicehost host: loads the assistant's services as plugins through the stable ABI
//! (`voicehost-plugin-api`), starts them, gates on their gRPC health, serves the admin API
//! and stops them cleanly.
//!
//! `main.rs` only parses the command line; everything else lives here.

pub mod admin;
pub mod applog;
pub mod bench;
pub mod cli;
pub mod config;
pub mod ctl;
pub mod dialog;
mod elf;
pub mod gpu;
pub mod host;
pub mod instance;
pub mod phases;
pub mod plugin;
pub mod plugin_info;
pub mod run;
pub mod service;
pub mod supervisor;
pub mod swap;
pub mod worker;

/// Exit code for an invalid config file (EX_USAGE).
pub const EXIT_CONFIG: u8 = 64;
