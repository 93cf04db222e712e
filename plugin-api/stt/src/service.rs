//! `voicehost.stt.v1.SttService`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use voicehost_plugin_runtime::stream::{Lag, Step, forward};
use voicehost_proto::common::v1::{AudioFrame, DialogRef};
use voicehost_proto::stt::v1::stt_service_server::SttService;
use voicehost_proto::stt::v1::{
    AudioFramesRequest, GetInfoRequest, SetInputRequest, SetInputResponse, StartRequest,
    StartResponse, StopRequest, StopResponse, SttInfo, SttResult, TranscribeRequest,
    TranscribeResponse,
};

use super::capture::RATE;
use super::shared::Shared;
use super::transcribe::Transcribe;

#[derive(Debug, Clone)]
pub struct Stt {
    pub shared: Arc<Shared>,
    /// `Transcribe` and `GetInfo`.
    pub transcribe: Transcribe,
}

/// The longest barge-in minimum a Start may ask for, ms.
const MAX_BARGE_IN_MS: u32 = 2000;

fn check_dialog(id: &str) -> Result<(), Status> {
    voicehost_plugin_runtime::check_id("dialog_id", id, " (as NewDialog returns)")
}

#[tonic::async_trait]
impl SttService for Stt {
    async fn start(&self, req: Request<StartRequest>) -> Result<Response<StartResponse>, Status> {
        let StartRequest {
            dialog_id: dialog,
            barge_in_min_ms,
        } = req.into_inner();
        check_dialog(&dialog)?;
        if barge_in_min_ms > MAX_BARGE_IN_MS {
            return Err(Status::invalid_argument(format!(
                "barge_in_min_ms = {barge_in_min_ms} is too long; use 0 (no barge-in) to {MAX_BARGE_IN_MS}"
            )));
        }
        let mut active = self
            .shared
            .dialog
            .lock()
            .map_err(|_| Status::internal("dialog state poisoned"))?;
        if let Some(current) = active.as_ref() {
            return Err(Status::failed_precondition(format!(
                "already listening for dialog {current:?}; Stop it before starting {dialog:?}"
            )));
        }
        *active = Some(dialog.clone());
        self.shared
            .barge_in_ms
            .store(barge_in_min_ms, Ordering::Relaxed);
        tracing::info!(event = "stt_started", dialog = %dialog, barge_in_min_ms, "Listening");
        Ok(Response::new(StartResponse {}))
    }

    async fn stop(&self, req: Request<StopRequest>) -> Result<Response<StopResponse>, Status> {
        let dialog = req.into_inner().dialog_id;
        let mut active = self
            .shared
            .dialog
            .lock()
            .map_err(|_| Status::internal("dialog state poisoned"))?;
        match active.as_ref() {
            None => Err(Status::failed_precondition(
                "not listening: Stop without a Start",
            )),
            Some(current) if !dialog.is_empty() && *current != dialog => {
                Err(Status::invalid_argument(format!(
                    "dialog_id {dialog:?} is not the active dialog {current:?}"
                )))
            }
            Some(_) => {
                tracing::info!(event = "stt_stopped", dialog = ?active, "Stopped listening");
                *active = None;
                self.shared.barge_in_ms.store(0, Ordering::Relaxed);
                Ok(Response::new(StopResponse {}))
            }
        }
    }

    type ResultsStream = ReceiverStream<Result<SttResult, Status>>;

    async fn results(
        &self,
        req: Request<DialogRef>,
    ) -> Result<Response<Self::ResultsStream>, Status> {
        let dialog = req.into_inner().dialog_id;
        check_dialog(&dialog)?;
        if self.shared.active_dialog().as_deref() != Some(dialog.as_str()) {
            return Err(Status::invalid_argument(format!(
                "dialog_id {dialog:?} is not being listened to; call Start with it first"
            )));
        }
        let results = self.shared.results.subscribe();
        let shared = Arc::clone(&self.shared);
        Ok(Response::new(forward(results, 16, Lag::Skip, move |r| {
            let ours = r.dialog_id == dialog;
            // A result of the dialog still goes out when it was stopped meanwhile.
            let stopped = shared.active_dialog().as_deref() != Some(dialog.as_str());
            match (ours, stopped) {
                (true, false) => Step::Send(r),
                (true, true) => Step::Last(r),
                (false, false) => Step::Skip,
                (false, true) => Step::End,
            }
        })))
    }

    type AudioFramesStream = ReceiverStream<Result<AudioFrame, Status>>;

    async fn audio_frames(
        &self,
        req: Request<AudioFramesRequest>,
    ) -> Result<Response<Self::AudioFramesStream>, Status> {
        let frame_ms = match req.into_inner().frame_ms {
            0 => 10,
            ms if ms % 10 == 0 && (10..=1000).contains(&ms) => ms,
            ms => {
                return Err(Status::invalid_argument(format!(
                    "frame_ms = {ms} is invalid: use a multiple of 10 from 10 to 1000 (0 means 10)"
                )));
            }
        };
        let per_message = (frame_ms / 10) as usize;
        let frames = self.shared.frames.subscribe();
        let mut batch: Option<AudioFrame> = None;
        let mut in_batch = 0;
        // A subscriber that cannot keep up is dropped; capture never waits.
        Ok(Response::new(forward(
            frames,
            64,
            Lag::Drop,
            move |f: AudioFrame| {
                // A batch holds consecutive frames only: a gap starts a new one.
                let contiguous = batch
                    .as_ref()
                    .is_some_and(|b| b.seq + in_batch as u64 == f.seq);
                match &mut batch {
                    Some(b) if contiguous => {
                        b.pcm_s16le.extend_from_slice(&f.pcm_s16le);
                        in_batch += 1;
                    }
                    _ => {
                        batch = Some(f);
                        in_batch = 1;
                    }
                }
                match batch.take_if(|_| in_batch >= per_message) {
                    Some(b) => Step::Send(b),
                    None => Step::Skip,
                }
            },
        )))
    }

    async fn set_input(
        &self,
        req: Request<SetInputRequest>,
    ) -> Result<Response<SetInputResponse>, Status> {
        let input = req.into_inner().input;
        if input.len() > 4096 || input.contains(char::is_control) {
            return Err(Status::invalid_argument(
                "input must be one line of at most 4096 bytes: device, device:NAME, wav:PATH, \
                 wav:PATH:loop, auto or null",
            ));
        }
        let spec = voicehost_audio::InputSpec::parse(&input)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let pacing = self.shared.pacing;
        let source =
            tokio::task::spawn_blocking(move || voicehost_audio::open_input(&spec, RATE, pacing))
                .await
                .map_err(|e| Status::internal(format!("opening the input failed: {e}")))?
                .map_err(|e| {
                    Status::failed_precondition(format!("{e}; the current input is kept"))
                })?;
        let response = SetInputResponse {
            description: source.describe(),
            duration_ms: source
                .duration()
                .map_or(0, |d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX)),
        };
        *self
            .shared
            .next_input
            .lock()
            .map_err(|_| Status::internal("input state poisoned"))? = Some(source);
        tracing::info!(event = "input_set", input = %response.description, duration_ms = response.duration_ms, "Input opened");
        Ok(Response::new(response))
    }

    async fn transcribe(
        &self,
        req: Request<TranscribeRequest>,
    ) -> Result<Response<TranscribeResponse>, Status> {
        let response = self.transcribe.run(&self.shared, req.into_inner()).await?;
        Ok(Response::new(response))
    }

    async fn get_info(&self, _req: Request<GetInfoRequest>) -> Result<Response<SttInfo>, Status> {
        Ok(Response::new(self.transcribe.info()))
    }
}
