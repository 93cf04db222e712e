//! `voicehost.tts.v1.TtsService`, served by the SDK for every [`Synthesizer`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Instant;

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use voicehost_plugin_runtime::stream::{Lag, Step, forward};
use voicehost_proto::common::v1::{AudioFrame, DialogRef, TextChunk};
use voicehost_proto::tts::v1::tts_service_server::TtsService;
use voicehost_proto::tts::v1::{
    ListVoicesRequest, ListVoicesResponse, PlaybackEvent, PlaybackEventKind,
    RenderReferenceRequest, SpeakRequest, SpeakResponse, StopSpeakingResponse, SynthesizeRequest,
    SynthesizedAudio, Wait,
};

use super::Synthesizer;
use super::config::Settings;
use super::playback::{Chunk, Player};
use super::synth::{Job, SpeakJob};
use super::text::{ClauseBuffer, sanitize, sentences, validate};

/// Longest piece of text synthesised in one go (characters).
pub const MAX_PIECE_CHARS: usize = 300;

/// What exists once the engine is loaded.
#[derive(Debug)]
pub struct Ready {
    /// The engine's sample rate.
    pub sample_rate: u32,
    pub player: Player,
    pub jobs: Mutex<mpsc::Sender<Job>>,
    pub cache: HashMap<String, Vec<f32>>,
}

/// Shared by the RPC handlers and the loading thread.
pub struct Inner<S: Synthesizer> {
    pub settings: Settings,
    pub engine: S::Config,
    pub default_voice: String,
    pub ready: OnceLock<Ready>,
    next_id: AtomicU64,
}

impl<S: Synthesizer> std::fmt::Debug for Inner<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("settings", &self.settings)
            .field("default_voice", &self.default_voice)
            .field("ready", &self.ready.get().is_some())
            .finish_non_exhaustive()
    }
}

impl<S: Synthesizer> Inner<S> {
    pub fn new(settings: Settings, engine: S::Config) -> Self {
        let default_voice = S::default_voice(&engine);
        Inner {
            settings,
            engine,
            default_voice,
            ready: OnceLock::new(),
            next_id: AtomicU64::new(1),
        }
    }
}

pub struct Tts<S: Synthesizer> {
    pub inner: Arc<Inner<S>>,
}

// Not derived: a derive would require `S: Clone`.
impl<S: Synthesizer> Clone for Tts<S> {
    fn clone(&self) -> Self {
        Tts {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S: Synthesizer> std::fmt::Debug for Tts<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tts").field("inner", &self.inner).finish()
    }
}

#[allow(clippy::result_large_err)]
fn check_dialog(id: &str) -> Result<(), Status> {
    if id.is_empty() {
        return Ok(());
    }
    voicehost_plugin_runtime::check_id("dialog_id", id, " (as NewDialog returns)")
}

impl<S: Synthesizer> Tts<S> {
    #[allow(clippy::result_large_err)]
    pub(crate) fn ready(&self) -> Result<&Ready, Status> {
        self.inner.ready.get().ok_or_else(|| {
            Status::unavailable("tts is still loading its model; retry when it reports SERVING")
        })
    }

    /// The voice to use: the configured one when empty; one the engine refuses is an
    /// INVALID_ARGUMENT with the engine's reason.
    #[allow(clippy::result_large_err)]
    pub(crate) fn voice(&self, requested: &str) -> Result<String, Status> {
        if requested.is_empty() || requested == self.inner.default_voice {
            return Ok(self.inner.default_voice.clone());
        }
        S::check_voice(&self.inner.engine, requested)
            .map_err(|why| Status::invalid_argument(format!("voice {requested:?}: {why}")))?;
        Ok(requested.to_owned())
    }

    #[allow(clippy::result_large_err)]
    fn send(&self, ready: &Ready, job: Job) -> Result<(), Status> {
        ready
            .jobs
            .lock()
            .map_err(|_| Status::internal("synthesis queue poisoned"))?
            .send(job)
            .map_err(|_| Status::unavailable("the synthesis thread has stopped; restart tts"))
    }

    /// Logs the time from `since` to the first audio of `utterance`.
    fn log_first_audio(ready: &Ready, utterance: u64, since: Instant, what: &'static str) {
        let mut events = ready.player.events.subscribe();
        tokio::spawn(async move {
            while let Ok(e) = events.recv().await {
                if e.utterance_id == utterance && e.kind == PlaybackEventKind::Started as i32 {
                    tracing::info!(
                        event = "tts_first_audio",
                        utterance,
                        after = what,
                        ms = since.elapsed().as_millis() as u64,
                        "First audio"
                    );
                    return;
                }
                if e.utterance_id == utterance && e.kind == PlaybackEventKind::Interrupted as i32 {
                    return;
                }
            }
        });
    }
}

#[tonic::async_trait]
impl<S: Synthesizer> TtsService for Tts<S> {
    async fn speak(&self, req: Request<SpeakRequest>) -> Result<Response<SpeakResponse>, Status> {
        let req = req.into_inner();
        validate(&req.text, self.inner.settings.max_text_bytes)
            .map_err(Status::invalid_argument)?;
        check_dialog(&req.dialog_id)?;
        let voice = self.voice(&req.voice)?;
        let wait = match Wait::try_from(req.wait) {
            Ok(w) => w,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "wait = {} is unknown; use WAIT_QUEUED or WAIT_FINISHED",
                    req.wait
                )));
            }
        };
        let ready = self.ready()?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let done = ready.player.wait_end(id);
        ready.player.begin(id, &req.dialog_id);
        Self::log_first_audio(ready, id, Instant::now(), "speak");
        let text = req.text.trim();
        let mut audio_ms = 0;
        match ready
            .cache
            .get(text)
            .filter(|_| voice == self.inner.default_voice)
        {
            Some(pcm) => {
                audio_ms = ready.player.duration_ms(pcm.len() as u64);
                ready.player.push(Chunk {
                    utterance: id,
                    dialog: req.dialog_id.clone(),
                    pcm: pcm.clone(),
                    last: true,
                });
            }
            None => {
                let pieces = sentences(text, MAX_PIECE_CHARS);
                let n = pieces.len();
                for (i, piece) in pieces.into_iter().enumerate() {
                    self.send(
                        ready,
                        Job::Speak(SpeakJob {
                            utterance: id,
                            dialog: req.dialog_id.clone(),
                            text: piece,
                            voice: voice.clone(),
                            last: i + 1 == n,
                        }),
                    )?;
                }
            }
        }
        if wait != Wait::Finished {
            return Ok(Response::new(SpeakResponse {
                utterance_id: id,
                audio_ms,
                finished: false,
            }));
        }
        let (finished, samples) = done
            .await
            .map_err(|_| Status::internal("playback ended without a result"))?;
        Ok(Response::new(SpeakResponse {
            utterance_id: id,
            audio_ms: ready.player.duration_ms(samples),
            finished,
        }))
    }

    async fn speak_stream(
        &self,
        req: Request<Streaming<TextChunk>>,
    ) -> Result<Response<SpeakResponse>, Status> {
        let ready = self.ready()?;
        let mut stream = req.into_inner();
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let voice = self.inner.default_voice.clone();
        let mut clauses = ClauseBuffer::new(self.inner.settings.first_chunk_words);
        let mut dialog: Option<String> = None;
        let mut total_bytes = 0usize;
        let mut opened = false;
        let send = |dialog: &str, text: String, last: bool| {
            self.send(
                ready,
                Job::Speak(SpeakJob {
                    utterance: id,
                    dialog: dialog.to_owned(),
                    text,
                    voice: voice.clone(),
                    last,
                }),
            )
        };
        let end = |dialog: &str, rest: Option<String>| send(dialog, rest.unwrap_or_default(), true);
        loop {
            let chunk = match stream.message().await {
                Ok(Some(chunk)) => chunk,
                // The client went away (or finished without eot): speak what came.
                Ok(None) | Err(_) => {
                    end(dialog.as_deref().unwrap_or(""), clauses.flush())?;
                    break;
                }
            };
            let d = dialog
                .get_or_insert_with(|| chunk.dialog_id.clone())
                .clone();
            if !opened {
                ready.player.open(id, &d);
                opened = true;
            }
            if d != chunk.dialog_id {
                ready.player.stop(&d);
                return Err(Status::invalid_argument(format!(
                    "chunk {} has dialog_id {:?}, the stream started with {d:?}; one stream speaks one reply",
                    chunk.index, chunk.dialog_id
                )));
            }
            if let Err(e) = check_dialog(&chunk.dialog_id) {
                ready.player.stop(&d);
                return Err(e);
            }
            total_bytes += chunk.text.len();
            if total_bytes > self.inner.settings.max_text_bytes * 8 {
                ready.player.stop(&d);
                return Err(Status::invalid_argument(format!(
                    "the streamed reply passed {} bytes; refusing to speak more",
                    self.inner.settings.max_text_bytes * 8
                )));
            }
            if chunk.index == 0 || total_bytes == chunk.text.len() {
                Self::log_first_audio(ready, id, Instant::now(), "first_chunk");
            }
            for clause in clauses.push(&sanitize(&chunk.text)) {
                send(&d, clause, false)?;
            }
            if chunk.eot {
                end(&d, clauses.flush())?;
                break;
            }
        }
        Ok(Response::new(SpeakResponse {
            utterance_id: id,
            audio_ms: 0,
            finished: false,
        }))
    }

    type PlaybackEventsStream = ReceiverStream<Result<PlaybackEvent, Status>>;

    async fn playback_events(
        &self,
        req: Request<DialogRef>,
    ) -> Result<Response<Self::PlaybackEventsStream>, Status> {
        let dialog = req.into_inner().dialog_id;
        check_dialog(&dialog)?;
        let events = self.ready()?.player.events.subscribe();
        Ok(Response::new(forward(events, 256, Lag::Skip, move |e| {
            if dialog.is_empty() || e.dialog_id == dialog {
                Step::Send(e)
            } else {
                Step::Skip
            }
        })))
    }

    type RenderReferenceStream = ReceiverStream<Result<AudioFrame, Status>>;

    async fn render_reference(
        &self,
        _: Request<RenderReferenceRequest>,
    ) -> Result<Response<Self::RenderReferenceStream>, Status> {
        // A slow reader misses frames; `seq` shows the gap.
        let frames = self.ready()?.player.reference.subscribe();
        Ok(Response::new(forward(frames, 512, Lag::Skip, Step::Send)))
    }

    async fn stop_speaking(
        &self,
        req: Request<DialogRef>,
    ) -> Result<Response<StopSpeakingResponse>, Status> {
        let dialog = req.into_inner().dialog_id;
        check_dialog(&dialog)?;
        let dropped = self.ready()?.player.stop(&dialog);
        tracing::info!(event = "tts_stopped", dialog = %dialog, dropped, "Speech stopped");
        Ok(Response::new(StopSpeakingResponse { dropped }))
    }

    type SynthesizeStream = ReceiverStream<Result<SynthesizedAudio, Status>>;

    async fn synthesize(
        &self,
        req: Request<SynthesizeRequest>,
    ) -> Result<Response<Self::SynthesizeStream>, Status> {
        super::synthesize::synthesize(self, req.into_inner()).map(Response::new)
    }

    async fn list_voices(
        &self,
        _: Request<ListVoicesRequest>,
    ) -> Result<Response<ListVoicesResponse>, Status> {
        super::synthesize::list_voices(self)
            .await
            .map(Response::new)
    }
}
