//! The voicehost Wyoming server: wake word, speech to text and text to speech for Home
//! Assistant (and any Wyoming client) over the Wyoming protocol, bridged onto the running
//! kwd, stt and tts services through their gRPC APIs.
//!
//! - `describe` → `info`: the programs the bridged services offer (Whisper's model and
//!   languages, the tts voices, the wake models), with attributions and licences.
//! - `transcribe` + audio → `transcript` (also as `transcript-start`/`-chunk`/`-stop`):
//!   the client's audio (any rate, 16-bit, any channel count) as 16 kHz mono to stt's
//!   `Transcribe`.
//! - `synthesize` → audio; `synthesize-start`/`-chunk`/`-stop` speak sentence by sentence as
//!   the text streams in (tts's `Synthesize`; nothing is played on this machine).
//! - `detect` + audio → `detection` / `not-detected` (kwd's `Detect`: a detector of its own,
//!   which never wakes the local assistant).
//!
//! The server listens on `[wyoming] bind`:`wyoming_port` (loopback unless the user chose
//! otherwise), advertises itself by mDNS when bound beyond loopback, and serves
//! `voicehost.wyoming.v1` and health on its slot's loopback gRPC port. It stays SERVING
//! while a bridged service restarts; requests meanwhile get an `error` event.

mod audio;
mod config;
mod frame;
mod info;
mod server;
mod session;
mod upstream;
mod zeroconf;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use voicehost_plugin_runtime::keys::Key;
use voicehost_plugin_runtime::{
    ErrorKind, GrpcServer, HealthReport, Plugin, PluginContext, PluginError, PluginMeta,
    export_plugin,
};
use voicehost_proto::wyoming::v1::wyoming_service_server::{WyomingService, WyomingServiceServer};
use voicehost_proto::wyoming::v1::{GetStatusRequest, WyomingStatus};

/// The Wyoming plugin.
#[derive(Debug)]
pub struct WyomingPlugin {
    server: GrpcServer,
    _advert: Option<zeroconf::Advert>,
}

/// `voicehost.wyoming.v1`: the server's state.
#[derive(Debug)]
struct Status {
    shared: Arc<server::Shared>,
    address: String,
    zeroconf_name: String,
}

#[tonic::async_trait]
impl WyomingService for Status {
    async fn get_status(
        &self,
        _: tonic::Request<GetStatusRequest>,
    ) -> Result<tonic::Response<WyomingStatus>, tonic::Status> {
        let programs = self.shared.programs().await;
        Ok(tonic::Response::new(WyomingStatus {
            address: self.address.clone(),
            connections_open: self.shared.open.load(Ordering::Relaxed) as u32,
            connections_served: self.shared.served.load(Ordering::Relaxed),
            asr: programs.asr.is_some(),
            tts: programs.tts.is_some(),
            wake: programs.wake.is_some(),
            zeroconf_name: self.zeroconf_name.clone(),
        }))
    }
}

impl Plugin for WyomingPlugin {
    fn config_keys() -> Option<Vec<Key>> {
        Some(config::KEYS.to_vec())
    }

    fn meta() -> PluginMeta {
        PluginMeta {
            name: env!("CARGO_PKG_NAME"),
            kind: "wyoming",
            version: env!("CARGO_PKG_VERSION"),
            proto_package: "voicehost.wyoming.v1",
            features: &["wyoming_asr", "wyoming_tts", "wyoming_wake", "zeroconf"],
        }
    }

    fn start(ctx: PluginContext) -> Result<Self, PluginError> {
        let settings = config::Settings::from_config(&ctx.config)?;
        // Bound here, so a port in use fails the start with its holder named.
        let address = std::net::SocketAddr::new(settings.bind, settings.wyoming_port);
        let listener = std::net::TcpListener::bind(address).map_err(|e| {
            let holder = voicehost_plugin_runtime::net::port_holder(settings.wyoming_port)
                .map(|(pid, name)| format!(" (held by {name}, pid {pid})"))
                .unwrap_or_default();
            PluginError::new(
                ErrorKind::Bind,
                format!(
                    "[wyoming] cannot listen on {address}{holder}: {e}; pick another \
                     wyoming_port or stop what holds it"
                ),
            )
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| PluginError::new(ErrorKind::Bind, format!("{address}: {e}")))?;
        let advert = if settings.zeroconf && !settings.bind.is_loopback() {
            let name = zeroconf::instance_name(&settings.zeroconf_name);
            match zeroconf::advertise(&name, settings.bind, settings.wyoming_port) {
                Ok(advert) => {
                    tracing::info!(event = "wyoming_zeroconf", name = %name, "Advertised as {}", zeroconf::SERVICE_TYPE);
                    Some((advert, name))
                }
                Err(e) => {
                    tracing::warn!(event = "wyoming_zeroconf_failed", error = %e, "Not advertised by mDNS; add the server by host and port");
                    None
                }
            }
        } else {
            None
        };
        let zeroconf_name = advert.as_ref().map(|(_, n)| n.clone()).unwrap_or_default();
        let server = GrpcServer::builder(&ctx)
            .descriptors(voicehost_proto::FILE_DESCRIPTOR_SET)
            .start(move |services, health| {
                // Inside the plugin's runtime: the channels and the listener need it.
                let upstreams = upstream::Upstreams::new(&settings).map_err(PluginError::config)?;
                let shared = Arc::new(server::Shared::new(settings, upstreams));
                let listener = tokio::net::TcpListener::from_std(listener)
                    .map_err(|e| PluginError::new(ErrorKind::Bind, format!("{address}: {e}")))?;
                tokio::spawn(server::keep_fresh(Arc::clone(&shared)));
                tokio::spawn(server::accept(listener, Arc::clone(&shared)));
                services.add(WyomingServiceServer::new(Status {
                    shared,
                    address: address.to_string(),
                    zeroconf_name,
                }));
                tracing::info!(event = "wyoming_listening", %address, "Wyoming server listening");
                health.set_serving();
                Ok(())
            })?;
        Ok(Self {
            server,
            _advert: advert.map(|(a, _)| a),
        })
    }

    fn health(&self) -> HealthReport {
        self.server.report()
    }

    fn stop(&mut self, timeout: Duration) -> Result<(), PluginError> {
        self._advert = None;
        self.server.stop(timeout)
    }
}

export_plugin!(WyomingPlugin);
