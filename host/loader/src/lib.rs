//! The voicehost plugin loader: what it takes to get a plugin library running and to keep
//! talking to it.
//!
//! - [`service`]: the service set (logger, tts, llm, stt, kwd) with phase, port and upstream;
//!   [`slot`]: one slot's settings (library, port, isolation, section);
//! - [`plugin`]: loading and verifying a library (ABI version, type layouts, ELF
//!   completeness in [`elf`], kind, declared config keys) and starting it in process;
//! - [`worker`]: `voicehost worker`, the process a plugin runs in by default, and the typed
//!   messages it exchanges with the host (a spec in, JSON lines of info, health and logs out);
//! - [`instance`]: a running plugin, in process or in a worker, with its health; checking a
//!   library in a short-lived worker.
//!
//! The orchestration — the `Host` with its slots, startup phases, supervisor and hot swap —
//! is in the `voicehost` crate, which owns the configuration it is built from.

pub mod elf;
pub mod instance;
pub mod plugin;
pub mod service;
pub mod slot;
pub mod worker;
