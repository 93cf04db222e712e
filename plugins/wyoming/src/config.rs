//! The `[wyoming]` section.

use std::net::IpAddr;

use voicehost_plugin_runtime::keys::{Key, Kind};
use voicehost_plugin_runtime::{PluginConfig, PluginError};

use crate::frame::{Limits, MAX_HEADER_BYTES};

/// The Wyoming server's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address the Wyoming server listens on: loopback unless the user chose a LAN address.
    pub bind: IpAddr,
    pub wyoming_port: u16,
    /// Advertise `_wyoming._tcp` by mDNS (only when `bind` is not loopback).
    pub zeroconf: bool,
    /// The advertised instance name; empty: `voicehost-<host name>`.
    pub zeroconf_name: String,
    pub max_connections: usize,
    pub limits: Limits,
    /// Longest audio one `transcribe` takes, ms.
    pub max_audio_ms: u64,
    /// A connection that sends no event for this long is closed, ms.
    pub idle_timeout_ms: u64,
    /// `host:port` of the services it bridges; empty: that part is not served.
    pub kwd: String,
    pub stt: String,
    pub tts: String,
}

/// The Wyoming plugin's keys.
pub const KEYS: &[Key] = &[
    Key::new(
        "bind",
        Kind::Ip,
        "127.0.0.1",
        "Address the Wyoming server listens on (0.0.0.0 or a LAN address exposes it)",
    ),
    Key::new(
        "wyoming_port",
        Kind::Port,
        "10700",
        "TCP port of the Wyoming server (the slot's `port` is its loopback gRPC port)",
    ),
    Key::new(
        "zeroconf",
        Kind::Bool,
        "true",
        "Advertise _wyoming._tcp by mDNS when bound beyond loopback",
    ),
    Key::new(
        "zeroconf_name",
        Kind::Text { max_len: 63 },
        "",
        "mDNS instance name; empty: voicehost-<host name>",
    ),
    Key::new(
        "max_connections",
        Kind::Int { min: 1, max: 256 },
        "16",
        "Connections served at once; more are refused with an error event",
    ),
    Key::new(
        "max_payload_bytes",
        Kind::Int {
            min: 4096,
            max: 16 * 1024 * 1024,
        },
        "1048576",
        "Largest data segment or payload of one event",
    ),
    Key::new(
        "max_audio_ms",
        Kind::Int {
            min: 1000,
            max: 300_000,
        },
        "30000",
        "Longest audio one transcribe takes",
    ),
    Key::new(
        "idle_timeout_ms",
        Kind::Int {
            min: 1000,
            max: 3_600_000,
        },
        "30000",
        "A connection that sends nothing for this long is closed",
    ),
    Key::new(
        "kwd_address",
        Kind::Text { max_len: 64 },
        "",
        "host:port of kwd (the host fills in the [kwd] port); empty: no wake word",
    ),
    Key::new(
        "stt_address",
        Kind::Text { max_len: 64 },
        "",
        "host:port of stt (the host fills in the [stt] port); empty: no speech to text",
    ),
    Key::new(
        "tts_address",
        Kind::Text { max_len: 64 },
        "",
        "host:port of tts (the host fills in the [tts] port); empty: no text to speech",
    ),
];

impl Settings {
    pub fn from_config(c: &PluginConfig) -> Result<Self, PluginError> {
        let int = |key: &str| c.value::<u64>(key);
        let address = |key: &str| -> Result<String, PluginError> {
            let value: String = c.value(key)?;
            let value = value.trim().to_owned();
            if !value.is_empty() && value.parse::<std::net::SocketAddr>().is_err() {
                return Err(PluginError::config(format!(
                    "[wyoming] {key} = {value:?} is not host:port; leave it empty (the host \
                     fills it in) or write e.g. 127.0.0.1:5004"
                )));
            }
            Ok(value)
        };
        Ok(Settings {
            bind: c.value("bind")?,
            wyoming_port: c.value("wyoming_port")?,
            zeroconf: c.value("zeroconf")?,
            zeroconf_name: c.value("zeroconf_name")?,
            max_connections: int("max_connections")? as usize,
            limits: Limits {
                header_bytes: MAX_HEADER_BYTES,
                payload_bytes: int("max_payload_bytes")? as usize,
            },
            max_audio_ms: int("max_audio_ms")?,
            idle_timeout_ms: int("idle_timeout_ms")?,
            kwd: address("kwd_address")?,
            stt: address("stt_address")?,
            tts: address("tts_address")?,
        })
    }
}
