//! What the loader needs to know of one slot: which service, which library, where it runs
//! and the section its plugin receives. `voicehost`'s config builds it from the file.

use std::path::PathBuf;
use std::time::Duration;

use crate::service::Service;

/// A plugin slot (`logger`, `tts`, `llm`, `stt`, `kwd`) and its section.
#[derive(Debug, Clone)]
pub struct PluginSlot {
    /// Which slot (its phase, default port and section name come with it).
    pub service: Service,
    pub enabled: bool,
    pub library: PathBuf,
    /// Line of the `library` key (0 when the default is used), for error messages.
    pub library_line: usize,
    pub port: u16,
    pub start_timeout: Duration,
    pub isolation: Isolation,
    /// The section as written, in file order, then what the host adds (upstream addresses,
    /// `audio_device_probe`, `cache_phrases`): what the plugin receives.
    pub section: Vec<(String, String)>,
    /// Config file lines of the written entries, in the same order (the host's additions
    /// come after them and have none).
    pub lines: Vec<usize>,
}

/// Where a plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// In a `voicehost worker` child process: a crash in model code cannot take the host
    /// down.
    Process,
    /// Loaded into the host process.
    InProcess,
}
