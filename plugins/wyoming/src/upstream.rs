//! The services the Wyoming server bridges onto: kwd, stt and tts, over their gRPC APIs
//! on loopback. Channels connect lazily and reconnect by themselves, so a service that
//! restarts is used again as soon as it serves.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use voicehost_proto::kwd::v1::GetStateRequest;
use voicehost_proto::kwd::v1::kwd_service_client::KwdServiceClient;
use voicehost_proto::stt::v1::GetInfoRequest;
use voicehost_proto::stt::v1::stt_service_client::SttServiceClient;
use voicehost_proto::tts::v1::ListVoicesRequest;
use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;

use crate::config::Settings;
use crate::info::{Asr, Programs, Tts, Voice, Wake};

/// Largest message the services may send back (synthesised audio of a long clause).
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Channels to the bridged services; `None` where the section names no address.
#[derive(Debug, Clone, Default)]
pub struct Upstreams {
    pub kwd: Option<Channel>,
    pub stt: Option<Channel>,
    pub tts: Option<Channel>,
}

fn lazy(addr: &str) -> Result<Option<Channel>, String> {
    if addr.is_empty() {
        return Ok(None);
    }
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("{addr} is not an address: {e}"))?
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true);
    Ok(Some(endpoint.connect_lazy()))
}

impl Upstreams {
    pub fn new(settings: &Settings) -> Result<Upstreams, String> {
        Ok(Upstreams {
            kwd: lazy(&settings.kwd)?,
            stt: lazy(&settings.stt)?,
            tts: lazy(&settings.tts)?,
        })
    }

    pub fn kwd(&self) -> Option<KwdServiceClient<Channel>> {
        self.kwd
            .clone()
            .map(|c| KwdServiceClient::new(c).max_decoding_message_size(MAX_MESSAGE_BYTES))
    }

    pub fn stt(&self) -> Option<SttServiceClient<Channel>> {
        self.stt.clone().map(|c| {
            SttServiceClient::new(c)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES)
        })
    }

    pub fn tts(&self) -> Option<TtsServiceClient<Channel>> {
        self.tts
            .clone()
            .map(|c| TtsServiceClient::new(c).max_decoding_message_size(MAX_MESSAGE_BYTES))
    }

    /// What each bridged service offers now. A service that does not answer is left out
    /// (with why); the caller asks again later.
    pub async fn programs(&self) -> (Programs, Vec<String>) {
        let mut programs = Programs::default();
        let mut missing = Vec::new();
        if let Some(mut stt) = self.stt() {
            match stt.get_info(GetInfoRequest {}).await {
                Ok(r) => {
                    let r = r.into_inner();
                    programs.asr = Some(Asr {
                        engine: r.engine,
                        engine_version: r.engine_version,
                        model: r.model,
                        languages: r.languages,
                    });
                }
                Err(e) => missing.push(format!("stt: {}", e.message())),
            }
        }
        if let Some(mut tts) = self.tts() {
            match tts.list_voices(ListVoicesRequest {}).await {
                Ok(r) if r.get_ref().voices.is_empty() => {
                    missing.push("tts: no voice yet".to_owned());
                }
                Ok(r) => {
                    let r = r.into_inner();
                    programs.tts = Some(Tts {
                        engine: r.engine,
                        engine_version: r.engine_version,
                        voices: r
                            .voices
                            .into_iter()
                            .map(|v| Voice {
                                name: v.name,
                                languages: v.languages,
                                description: v.description,
                            })
                            .collect(),
                        default_voice: r.default_voice,
                        sample_rate: r.sample_rate,
                    });
                }
                Err(e) => missing.push(format!("tts: {}", e.message())),
            }
        }
        if let Some(mut kwd) = self.kwd() {
            match kwd.get_state(GetStateRequest {}).await {
                // Models load after kwd starts serving: none yet is asked again soon.
                Ok(r) if r.get_ref().models.is_empty() => {
                    missing.push("kwd: no wake model loaded yet".to_owned());
                }
                Ok(r) => {
                    let r = r.into_inner();
                    programs.wake = Some(Wake {
                        models: r.models,
                        engine: r.engine,
                    });
                }
                Err(e) => missing.push(format!("kwd: {}", e.message())),
            }
        }
        (programs, missing)
    }
}
