//! gRPC contracts of the voicehost services.
//!
//! Each service has its own versioned package, `voicehost.<svc>.v1`; shared messages live in
//! `voicehost.common.v1`. The Rust code under `src/gen/` is generated from the `.proto` files
//! beside this crate and checked in; `tests/codegen.rs` fails when it drifts from them.
//!
//! [`FILE_DESCRIPTOR_SET`] holds every package's descriptors, for gRPC server reflection.

#![allow(missing_debug_implementations, clippy::all)]

/// Encoded `FileDescriptorSet` of all voicehost packages (for server reflection).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!("gen/voicehost_descriptor.bin");

pub mod common {
    pub mod v1 {
        include!("gen/voicehost.common.v1.rs");
    }
}
pub mod logger {
    pub mod v1 {
        include!("gen/voicehost.logger.v1.rs");
    }
}
pub mod loader {
    pub mod v1 {
        include!("gen/voicehost.loader.v1.rs");
    }
}
pub mod kwd {
    pub mod v1 {
        include!("gen/voicehost.kwd.v1.rs");
    }
}
pub mod stt {
    pub mod v1 {
        include!("gen/voicehost.stt.v1.rs");
    }
}
pub mod llm {
    pub mod v1 {
        include!("gen/voicehost.llm.v1.rs");
    }
}
pub mod tts {
    pub mod v1 {
        include!("gen/voicehost.tts.v1.rs");
    }
}
pub mod wyoming {
    pub mod v1 {
        include!("gen/voicehost.wyoming.v1.rs");
    }
}

/// An LLM reply chunk is spoken as a text chunk: the same fields, the same numbers.
impl From<llm::v1::LlmChunk> for common::v1::TextChunk {
    fn from(c: llm::v1::LlmChunk) -> Self {
        common::v1::TextChunk {
            text: c.text,
            eot: c.eot,
            dialog_id: c.dialog_id,
            turn: c.turn,
            index: c.index,
            finish_reason: c.finish_reason,
        }
    }
}
