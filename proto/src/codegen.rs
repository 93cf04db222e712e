//! Regenerates `src/gen/` from the `.proto` files. Used by the drift test
//! (`tests/codegen.rs`); run `VOICEHOST_UPDATE_PROTO=1 cargo test -p voicehost-proto` after
//! editing a `.proto` file.
//!
//! This file is included by the test, not compiled into the library.

use std::io;
use std::path::{Path, PathBuf};

/// The `.proto` files, relative to the crate root.
pub const PROTOS: &[&str] = &[
    "voicehost/common/v1/common.proto",
    "voicehost/logger/v1/logger.proto",
    "voicehost/loader/v1/loader.proto",
    "voicehost/kwd/v1/kwd.proto",
    "voicehost/stt/v1/stt.proto",
    "voicehost/llm/v1/llm.proto",
    "voicehost/tts/v1/tts.proto",
    "voicehost/wyoming/v1/wyoming.proto",
];

pub const DESCRIPTOR_FILE: &str = "voicehost_descriptor.bin";

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Generates Rust code and the encoded descriptor set into `out`.
pub fn generate(out: &Path) -> io::Result<()> {
    let root = crate_dir();
    let protos: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    let protoc = protoc_bin_vendored::protoc_bin_path()
        .map_err(|e| io::Error::other(format!("vendored protoc not found: {e}")))?;
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .emit_rerun_if_changed(false)
        .out_dir(out)
        .file_descriptor_set_path(out.join(DESCRIPTOR_FILE))
        .compile_with_config(config, &protos, &[root])
}
