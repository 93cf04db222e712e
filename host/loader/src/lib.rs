//! The voicehost plugin loader: what it takes to get a plugin library running and to keep
//! it running.
//!
//! - [`service`]: the service set (logger, tts, llm, stt, kwd, wyoming) with phase, port and upstream;
//!   [`slot`]: one slot's settings (library, port, isolation, section);
//! - [`plugin`]: loading and verifying a library (ABI version, type layouts, ELF
//!   completeness in [`elf`], kind, declared config keys, the plugin's own check of a
//!   section) and starting it in process;
//! - [`worker`]: `voicehost worker`, the process a plugin runs in by default, and the typed
//!   messages it exchanges with the host (a spec in, JSON lines of info, health and logs out);
//! - [`instance`]: a running plugin, in process or in a worker, with its health; checking a
//!   library in a short-lived worker.
//!
//! The orchestration is here too, built from plain [`settings`] (the `voicehost` crate's
//! config fills them in from the file):
//!
//! - [`host`]: the `Host` with its slots: verify, start, health gate, stop, what the admin
//!   API shows;
//! - [`phases`]: startup in phases with rollback and retries, guarded by the VRAM checks of
//!   [`gpu`];
//! - [`supervisor`]: the health watcher and restarts with backoff;
//! - [`swap`]: hot swap of a plugin library, by request or when its file changes.

pub mod elf;
pub mod gpu;
pub mod host;
pub mod instance;
pub mod phases;
pub mod plugin;
pub mod service;
pub mod settings;
pub mod slot;
pub mod supervisor;
pub mod swap;
pub mod worker;
