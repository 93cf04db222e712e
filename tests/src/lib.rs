//! Harness for the end-to-end tests: runs the real `voicehost` binary on a generated
//! config with free ports and a private log directory, and talks to it over gRPC.
//!
//! The binary and plugin libraries come from the workspace's target directory, so run
//! `cargo build --workspace` before `cargo test` (the README's test command does).

#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod applog;
/// The whole assistant end to end, driven as a user would: the dialog tests' harness.
pub mod assistant;
mod audio;
mod keys;
mod net;
mod out_of_tree;
mod paths;
mod peers;
mod setup;
mod transcripts;

pub use applog::{AppLine, app_events, read, wait_app_events, wait_for_text};
pub use audio::{
    espeak, espeak_with, read_wav_16k, resample_16k, scene, speech_with, streaming_first_audio_ms,
    trim_silence, tts_speech, tts_speech_in, white_noise, write_wav_16k,
};
pub use keys::{kwd_keys, kwd_micro_keys, piper_keys, stt_keys, tts_keys};
pub use net::{channel, free_port, listen_addrs, service_info, serving, workers_on_port};
pub use out_of_tree::{build_out_of_tree, build_project, dependency_tree};
pub use paths::{artefact, model, optional_model, plugin_info_json, target_dir, workspace_root};
pub use peers::{
    LLAMA_SERVER_PACKAGE, WakeReference, cache_dir, llama_server, openwakeword_reference,
    peer_python,
};
pub use setup::{HostProc, Setup};
pub use transcripts::{WHISPER_THREADS, word_error_rate, words};
