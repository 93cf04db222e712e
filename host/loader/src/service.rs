//! The services the host knows: one slot each, with its startup phase, default port and
//! what it depends on. Every other module names a service through [`Service`]; the names
//! below are the only place the strings are written.

use std::fmt;
use std::str::FromStr;

/// A plugin slot of the host.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// Dialog log and transcript (`voicehost.logger.v1`).
    Logger,
    /// Text to speech and playback (`voicehost.tts.v1`).
    Tts,
    /// The language model (`voicehost.llm.v1`).
    Llm,
    /// Capture, echo cancellation, VAD and speech to text (`voicehost.stt.v1`).
    Stt,
    /// Wake word, listening to stt's audio (`voicehost.kwd.v1`).
    Kwd,
    /// The Wyoming server for Home Assistant, bridging onto kwd, stt and tts
    /// (`voicehost.wyoming.v1`).
    Wyoming,
}

impl Service {
    /// Every service, in startup order.
    pub const ALL: [Service; 6] = [
        Service::Logger,
        Service::Tts,
        Service::Llm,
        Service::Stt,
        Service::Kwd,
        Service::Wyoming,
    ];

    /// The services the local dialog needs (all but the Wyoming server).
    pub const DIALOG: [Service; 5] = [
        Service::Logger,
        Service::Tts,
        Service::Llm,
        Service::Stt,
        Service::Kwd,
    ];

    /// The slot's name: its config section, its `voicehost ctl` argument, its log tag.
    pub const fn name(self) -> &'static str {
        match self {
            Service::Logger => "logger",
            Service::Tts => "tts",
            Service::Llm => "llm",
            Service::Stt => "stt",
            Service::Kwd => "kwd",
            Service::Wyoming => "wyoming",
        }
    }

    /// Startup phase: 0 logger, 1 tts and llm (in parallel), 2 stt, 3 kwd, 4 the Wyoming
    /// server. A phase starts when the one before serves (and GPU memory allows).
    pub const fn phase(self) -> u8 {
        match self {
            Service::Logger => 0,
            Service::Tts | Service::Llm => 1,
            Service::Stt => 2,
            Service::Kwd => 3,
            Service::Wyoming => 4,
        }
    }

    /// The port its gRPC server listens on unless the config says otherwise.
    pub const fn default_port(self) -> u16 {
        match self {
            Service::Logger => 5001,
            Service::Kwd => 5003,
            Service::Stt => 5004,
            Service::Llm => 5005,
            Service::Tts => 5006,
            Service::Wyoming => 5007,
        }
    }

    /// The gRPC package the host speaks to the plugin in this slot.
    pub const fn proto_package(self) -> &'static str {
        match self {
            Service::Logger => "voicehost.logger.v1",
            Service::Tts => "voicehost.tts.v1",
            Service::Llm => "voicehost.llm.v1",
            Service::Stt => "voicehost.stt.v1",
            Service::Kwd => "voicehost.kwd.v1",
            Service::Wyoming => "voicehost.wyoming.v1",
        }
    }

    /// The built-in plugin's library file (in `[loader] plugin_dir`).
    pub const fn default_library(self) -> &'static str {
        match self {
            Service::Logger => "libvoicehost_plugin_logger.so",
            Service::Tts => "libvoicehost_plugin_tts.so",
            Service::Llm => "libvoicehost_plugin_llm.so",
            Service::Stt => "libvoicehost_plugin_stt.so",
            Service::Kwd => "libvoicehost_plugin_kwd.so",
            Service::Wyoming => "libvoicehost_plugin_wyoming.so",
        }
    }

    /// The service this one streams from, and the key of its section that holds that
    /// address (filled in from the upstream slot's port unless the section sets it): kwd
    /// listens to stt's audio, stt's echo canceller to what tts plays.
    pub const fn upstream(self) -> Option<(Service, &'static str)> {
        match self {
            Service::Kwd => Some((Service::Stt, "audio_source")),
            Service::Stt => Some((Service::Tts, "render_reference")),
            _ => None,
        }
    }

    /// The services this one calls, each with the key of its section that holds the
    /// address: filled in from that slot's port when the slot is enabled, left empty (that
    /// part not served) when it is not, unless the section sets it. The Wyoming server
    /// bridges onto kwd, stt and tts.
    pub const fn bridges(self) -> &'static [(Service, &'static str)] {
        match self {
            Service::Wyoming => &[
                (Service::Kwd, "kwd_address"),
                (Service::Stt, "stt_address"),
                (Service::Tts, "tts_address"),
            ],
            _ => &[],
        }
    }

    /// Whether it plays or records audio (it takes `[loader] audio_device_probe`).
    pub const fn uses_audio_device(self) -> bool {
        matches!(self, Service::Tts | Service::Stt)
    }
}

/// `services` as `a<sep>b<sep>c`, for logs and messages.
pub fn join(services: &[Service], sep: &str) -> String {
    let names: Vec<&str> = services.iter().map(|s| s.name()).collect();
    names.join(sep)
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of the host's services.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a service: use logger, tts, llm, stt, kwd or wyoming")]
pub struct UnknownService(pub String);

impl FromStr for Service {
    type Err = UnknownService;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Service::ALL
            .into_iter()
            .find(|svc| svc.name() == s)
            .ok_or_else(|| UnknownService(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_phases_follow_startup_order() {
        for svc in Service::ALL {
            assert_eq!(svc.name().parse::<Service>(), Ok(svc));
            assert_eq!(svc.proto_package(), format!("voicehost.{svc}.v1"));
            assert_eq!(
                svc.default_library(),
                format!("libvoicehost_plugin_{svc}.so")
            );
        }
        let phases: Vec<u8> = Service::ALL.iter().map(|s| s.phase()).collect();
        assert!(phases.windows(2).all(|w| w[0] <= w[1]), "{phases:?}");
        let err = "speaker".parse::<Service>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"speaker\" is not a service: use logger, tts, llm, stt, kwd or wyoming"
        );
    }

    #[test]
    fn upstreams_start_earlier() {
        for svc in Service::ALL {
            if let Some((up, _)) = svc.upstream() {
                assert!(up.phase() < svc.phase(), "{svc} streams from {up}");
            }
            for (up, _) in svc.bridges() {
                assert!(up.phase() < svc.phase(), "{svc} calls {up}");
            }
        }
    }
}
