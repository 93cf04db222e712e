//! `voicehost.kwd.v1.KwdService`.

use std::sync::Arc;

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use voicehost_plugin_runtime::stream::{Lag, Step, forward};
use voicehost_proto::kwd::v1::kwd_service_server::KwdService;
use voicehost_proto::kwd::v1::{
    DetectRequest, Detection, DisableRequest, EnableRequest, EventsRequest, GetStateRequest,
    KwdEvent, KwdState,
};

use crate::detect::{self, Pool};
use crate::listen::Shared;

#[derive(Debug, Clone)]
pub struct Kwd {
    pub shared: Arc<Shared>,
    /// The engines of Detect calls, or why there are none (an invalid `[kwd]` section).
    pub detect: Result<Arc<Pool>, String>,
}

/// A Disable/Enable reason: 1 to 64 letters, digits, `_` or `-`.
fn check_reason(reason: &str) -> Result<(), Status> {
    voicehost_plugin_runtime::check_id("reason", reason, ", e.g. \"dialog\"")
}

#[tonic::async_trait]
impl KwdService for Kwd {
    type EventsStream = ReceiverStream<Result<KwdEvent, Status>>;

    async fn events(
        &self,
        _: Request<EventsRequest>,
    ) -> Result<Response<Self::EventsStream>, Status> {
        // Detections are a few per minute: a subscriber never lags 32 behind, and if it
        // did, the missed ones are stale anyway.
        let events = self.shared.events.subscribe();
        Ok(Response::new(forward(events, 32, Lag::Skip, Step::Send)))
    }

    async fn enable(&self, req: Request<EnableRequest>) -> Result<Response<KwdState>, Status> {
        let reason = req.into_inner().reason;
        if !reason.is_empty() {
            check_reason(&reason)?;
        }
        let armed = self.shared.enable(&reason);
        tracing::info!(
            event = "kwd_enabled",
            reason = %reason,
            armed,
            "Wake word detection {}",
            if armed { "armed" } else { "still disabled" }
        );
        Ok(Response::new(self.shared.state()))
    }

    async fn disable(&self, req: Request<DisableRequest>) -> Result<Response<KwdState>, Status> {
        let reason = req.into_inner().reason;
        check_reason(&reason)?;
        self.shared.disable(&reason);
        tracing::info!(event = "kwd_disabled", reason = %reason, "Wake word detection disabled");
        Ok(Response::new(self.shared.state()))
    }

    async fn get_state(&self, _: Request<GetStateRequest>) -> Result<Response<KwdState>, Status> {
        Ok(Response::new(self.shared.state()))
    }

    type DetectStream = ReceiverStream<Result<Detection, Status>>;

    async fn detect(
        &self,
        req: Request<Streaming<DetectRequest>>,
    ) -> Result<Response<Self::DetectStream>, Status> {
        let pool = self.detect.clone().map_err(Status::failed_precondition)?;
        Ok(Response::new(detect::start(pool, req.into_inner())?))
    }
}
