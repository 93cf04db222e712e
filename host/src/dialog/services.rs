//! What the dialog needs of each service, and its clients for them.
//!
//! - kwd: `Disable`/`Enable` (`switch_kwd`) and `Events` (wake words), in `watch.rs`;
//! - stt: `Start`, `Results` and `Stop`, in `listen.rs`;
//! - llm: `Complete` (the reply, and a prefill when a dialog starts), in `relay.rs`;
//! - tts: `Speak` (the acknowledgement in `session.rs`, the prompts in `faults.rs`, a
//!   skill's answer in `skill.rs`, the timers' alarm in `alarm.rs`), `SpeakStream` and
//!   `StopSpeaking` in `relay.rs`, `PlaybackEvents` in `watch.rs`;
//! - logger: `NewDialog` and `WriteDialog`, in `transcript.rs`.
//!
//! Each client is `None` when its service is not enabled.

use tonic::transport::Channel;
use voicehost_proto::llm::v1::llm_service_client::LlmServiceClient;
use voicehost_proto::logger::v1::logger_service_client::LoggerServiceClient;
use voicehost_proto::stt::v1::stt_service_client::SttServiceClient;
use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;

use crate::service::Service;

use super::session::Dialogs;

impl Dialogs {
    pub(super) fn tts(&self) -> Option<TtsServiceClient<Channel>> {
        self.host
            .channel(Service::Tts)
            .ok()
            .map(TtsServiceClient::new)
    }

    pub(super) fn stt(&self) -> Option<SttServiceClient<Channel>> {
        self.host
            .channel(Service::Stt)
            .ok()
            .map(SttServiceClient::new)
    }

    pub(super) fn llm(&self) -> Option<LlmServiceClient<Channel>> {
        self.host
            .channel(Service::Llm)
            .ok()
            .map(LlmServiceClient::new)
    }

    pub(super) fn logger(&self) -> Option<LoggerServiceClient<Channel>> {
        self.host
            .channel(Service::Logger)
            .ok()
            .map(LoggerServiceClient::new)
    }
}
