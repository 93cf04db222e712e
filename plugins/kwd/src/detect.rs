//! `Detect`: wake words in audio a caller streams (e.g. the Wyoming server), apart from the
//! local listener.
//!
//! Each call borrows an [`Engine`] of its own from a [`Pool`]: engines are loaded when a
//! call first needs one (kwd's start does not wait for them), reset when reused, and at
//! most `max_detect_streams` are lent at once. A call's audio is scored on a blocking
//! thread as each message arrives, never kept; its detections go back on its own stream
//! only — never to `Events` — and Enable/Disable do not touch it.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};
use voicehost_proto::kwd::v1::{DetectRequest, Detection};

use crate::config::Settings;
use crate::detector::Detector;
use crate::engine::{CHUNK, Engine, ModelPaths, RATE, model_name};

/// Detections waiting for the client: a few per minute at most.
const OUT_CAPACITY: usize = 8;

/// Why a Detect call is refused or ends early.
#[derive(Debug, Clone, PartialEq)]
pub enum DetectError {
    /// Every one of the `max_detect_streams` engines is lent.
    Busy { max: usize },
    /// A bad request; the message names the value and what to send instead.
    InvalidArgument(String),
    /// The models cannot be loaded.
    Unavailable(String),
    /// Scoring failed.
    Internal(String),
}

impl From<DetectError> for Status {
    fn from(e: DetectError) -> Status {
        match e {
            DetectError::Busy { max } => Status::resource_exhausted(format!(
                "kwd already serves {max} Detect streams, as many as [kwd] max_detect_streams \
                 = {max} allows; close one, or raise max_detect_streams (up to 32)"
            )),
            DetectError::InvalidArgument(m) => Status::invalid_argument(m),
            DetectError::Unavailable(m) => Status::unavailable(m),
            DetectError::Internal(m) => Status::internal(m),
        }
    }
}

/// The engines Detect calls borrow, and the settings they detect with.
#[derive(Debug)]
pub struct Pool {
    paths: ModelPaths,
    thresholds: Vec<f32>,
    cooldown_ms: u64,
    /// Wake model names in engine order, e.g. `alexa_v0.1`.
    models: Vec<String>,
    max: usize,
    permits: Arc<Semaphore>,
    /// Engines loaded by earlier calls and not lent now.
    idle: Mutex<Vec<Engine>>,
}

impl Pool {
    /// A pool for `settings`; loads nothing yet.
    pub fn new(settings: &Settings) -> Pool {
        let max = settings.max_detect_streams.max(1);
        Pool {
            paths: settings.models.clone(),
            thresholds: settings.thresholds.clone(),
            cooldown_ms: settings.cooldown_ms,
            models: settings.models.wake.iter().map(|p| model_name(p)).collect(),
            max,
            permits: Arc::new(Semaphore::new(max)),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// A place for one more call, or [`DetectError::Busy`].
    fn permit(&self) -> Result<OwnedSemaphorePermit, DetectError> {
        Arc::clone(&self.permits)
            .try_acquire_owned()
            .map_err(|_| DetectError::Busy { max: self.max })
    }

    /// An engine with fresh state: an idle one reset, or a new one loaded (on the calling
    /// thread: a blocking one).
    fn lend(self: Arc<Self>, permit: OwnedSemaphorePermit) -> Result<Lease, DetectError> {
        let reused = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        // An engine that cannot be reset is dropped: a new one is loaded.
        let reused = reused.and_then(|mut engine| engine.reset().is_ok().then_some(engine));
        let engine = match reused {
            Some(engine) => engine,
            None => {
                let started = Instant::now();
                let engine = Engine::load(&self.paths).map_err(|e| {
                    DetectError::Unavailable(format!("cannot load the wake models for Detect: {e}"))
                })?;
                tracing::info!(
                    event = "kwd_detect_engine_loaded",
                    lent = self.max - self.permits.available_permits(),
                    ms = started.elapsed().as_millis() as u64,
                    "Wake word models loaded for Detect"
                );
                engine
            }
        };
        Ok(Lease {
            pool: self,
            engine: Some(engine),
            _permit: permit,
        })
    }
}

/// An engine lent to one call, and the call's permit; both go back when it is dropped.
#[derive(Debug)]
struct Lease {
    pool: Arc<Pool>,
    /// `None` after a failure: that engine is not lent again.
    engine: Option<Engine>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Back before the permit is released (fields drop after this), so the next call
        // finds it.
        if let Some(engine) = self.engine.take()
            && let Ok(mut idle) = self.pool.idle.lock()
        {
            idle.push(engine);
        }
    }
}

/// One call's detector and audio clock; runs on blocking threads.
#[derive(Debug)]
struct Call {
    lease: Lease,
    detector: Detector,
    /// Per model in engine order: whether this call listens for it.
    wanted: Vec<bool>,
    /// Samples scored so far.
    position: u64,
}

impl Call {
    /// Scores `pcm` (whole 16-bit samples); returns the detections it fires.
    fn feed(&mut self, pcm: &[u8]) -> Result<Vec<Detection>, DetectError> {
        let Some(engine) = self.lease.engine.as_mut() else {
            return Err(DetectError::Internal(
                "this Detect stream's engine failed earlier; open a new call".to_owned(),
            ));
        };
        let mut fired = Vec::new();
        // A chunk's worth at a time, so a long message needs no large copy.
        for piece in pcm.chunks(2 * CHUNK) {
            let samples: Vec<f32> = piece
                .chunks_exact(2)
                .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])))
                .collect();
            let scores = match engine.push(&samples) {
                Ok(scores) => scores,
                Err(e) => {
                    self.lease.engine = None;
                    return Err(DetectError::Internal(format!(
                        "wake word scoring failed: {e}"
                    )));
                }
            };
            let start = self.position;
            self.position += samples.len() as u64;
            for mut scored in scores {
                let at = start + scored.at as u64;
                for (score, wanted) in scored.scores.iter_mut().zip(&self.wanted) {
                    if !wanted {
                        *score = 0.0;
                    }
                }
                if let Some(hit) = self.detector.observe(at, &scored.scores) {
                    fired.push(Detection {
                        model: self.lease.pool.models[hit.model].clone(),
                        confidence: hit.score,
                        audio_ms: at * 1000 / u64::from(RATE),
                    });
                }
            }
        }
        Ok(fired)
    }
}

/// Starts a Detect call on `input`: refused at once with RESOURCE_EXHAUSTED when
/// `max_detect_streams` calls are running; otherwise the detections (or the error that
/// ended the call) come on the returned stream.
pub fn start(
    pool: Arc<Pool>,
    input: Streaming<DetectRequest>,
) -> Result<ReceiverStream<Result<Detection, Status>>, DetectError> {
    let permit = pool.permit()?;
    let (tx, rx) = mpsc::channel(OUT_CAPACITY);
    tokio::spawn(async move {
        let started = Instant::now();
        let mut summary = Summary::default();
        let result = run(pool, permit, input, &tx, &mut summary).await;
        tracing::debug!(
            audio_ms = summary.audio_ms,
            detections = summary.detections,
            ms = started.elapsed().as_millis() as u64,
            outcome = ?result,
            "Detect stream ended"
        );
        if let Err(e) = result {
            let _ = tx.send(Err(e.into())).await;
        }
    });
    Ok(ReceiverStream::new(rx))
}

/// What a call did, for the log.
#[derive(Debug, Default)]
struct Summary {
    audio_ms: u64,
    detections: u32,
}

async fn run(
    pool: Arc<Pool>,
    permit: OwnedSemaphorePermit,
    mut input: Streaming<DetectRequest>,
    tx: &mpsc::Sender<Result<Detection, Status>>,
    summary: &mut Summary,
) -> Result<(), DetectError> {
    let Some(mut message) = next(&mut input, tx).await else {
        return Ok(());
    };
    let wanted = resolve(&pool.models, &message.models).map_err(DetectError::InvalidArgument)?;
    check_pcm(&message.pcm_s16le, 1)?;
    tracing::debug!(models = ?message.models, "Detect stream opened");
    let lease = blocking(move || pool.lend(permit)).await??;
    let mut call = Call {
        detector: Detector::new(lease.pool.thresholds.clone(), lease.pool.cooldown_ms, RATE),
        lease,
        wanted,
        position: 0,
    };
    let mut index = 1u64;
    loop {
        if !message.pcm_s16le.is_empty() {
            let pcm = std::mem::take(&mut message.pcm_s16le);
            let (back, fired) = blocking(move || {
                let fired = call.feed(&pcm);
                (call, fired)
            })
            .await?;
            call = back;
            summary.audio_ms = call.position * 1000 / u64::from(RATE);
            for detection in fired? {
                summary.detections += 1;
                tracing::info!(
                    event = "kwd_detect_fired",
                    model = %detection.model,
                    confidence = format!("{:.3}", detection.confidence),
                    audio_ms = detection.audio_ms,
                    "Wake word in a Detect stream"
                );
                if tx.send(Ok(detection)).await.is_err() {
                    return Ok(()); // the client left
                }
            }
        }
        let Some(next) = next(&mut input, tx).await else {
            return Ok(());
        };
        index += 1;
        if !next.models.is_empty() {
            return Err(DetectError::InvalidArgument(format!(
                "DetectRequest.models {:?} in message {index}: name the models in the first \
                 message only",
                next.models
            )));
        }
        check_pcm(&next.pcm_s16le, index)?;
        message = next;
    }
}

/// The client's next message; `None` when it closed its stream or left (a broken stream's
/// status is passed back to it).
async fn next(
    input: &mut Streaming<DetectRequest>,
    tx: &mpsc::Sender<Result<Detection, Status>>,
) -> Option<DetectRequest> {
    tokio::select! {
        message = input.message() => match message {
            Ok(message) => message,
            Err(status) => {
                tracing::debug!(status = %status, "Detect input ended");
                let _ = tx.send(Err(status)).await;
                None
            }
        },
        () = tx.closed() => None,
    }
}

/// Runs `f` on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DetectError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DetectError::Internal(format!("the Detect worker failed: {e}")))
}

fn check_pcm(pcm: &[u8], index: u64) -> Result<(), DetectError> {
    if pcm.len().is_multiple_of(2) {
        Ok(())
    } else {
        Err(DetectError::InvalidArgument(format!(
            "DetectRequest.pcm_s16le in message {index} has {} bytes, an odd count; send whole \
             16-bit samples (2 bytes each, 16 kHz mono)",
            pcm.len()
        )))
    }
}

/// Per loaded model, whether one of `names` asks for it (every model when `names` is
/// empty). A name matches a model exactly, or ignoring case, `_` vs ` ` and a `_vX.Y`
/// suffix ("alexa" matches "alexa_v0.1"); one that matches none is the error.
pub fn resolve(loaded: &[String], names: &[String]) -> Result<Vec<bool>, String> {
    if names.is_empty() {
        return Ok(vec![true; loaded.len()]);
    }
    let mut wanted = vec![false; loaded.len()];
    for name in names {
        let exact = loaded.iter().position(|m| m == name);
        let matching: Vec<usize> = match exact {
            Some(i) => vec![i],
            None => {
                let key = match_key(name);
                (0..loaded.len())
                    .filter(|&i| !key.is_empty() && match_key(&loaded[i]) == key)
                    .collect()
            }
        };
        if matching.is_empty() {
            return Err(format!(
                "wake model {name:?} is not loaded; kwd has {} (a name matches ignoring case, \
                 '_' vs ' ' and a _vX.Y suffix); name one of them, or add the model to [kwd] \
                 wake_models",
                loaded.join(", ")
            ));
        }
        for i in matching {
            wanted[i] = true;
        }
    }
    Ok(wanted)
}

/// `name` lower-cased, spaces as `_`, without a `_vX.Y` version suffix.
fn match_key(name: &str) -> String {
    let name = name.trim().to_lowercase().replace(' ', "_");
    let versionless = name.rsplit_once("_v").and_then(|(base, version)| {
        let is_version = version.starts_with(|c: char| c.is_ascii_digit())
            && version.chars().all(|c| c.is_ascii_digit() || c == '.');
        is_version.then(|| base.to_owned())
    });
    versionless.unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded() -> Vec<String> {
        ["alexa_v0.1", "hey_jarvis_v0.1"]
            .map(str::to_owned)
            .to_vec()
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn no_names_listen_for_every_model() {
        assert_eq!(resolve(&loaded(), &[]), Ok(vec![true, true]));
    }

    #[test]
    fn names_match_as_wyoming_clients_send_them() {
        for name in [
            "alexa_v0.1",
            "alexa",
            "Alexa",
            " ALEXA ",
            "alexa_v0.2",
            "Alexa_V0.1",
        ] {
            assert_eq!(
                resolve(&loaded(), &names(&[name])),
                Ok(vec![true, false]),
                "{name}"
            );
        }
        for name in ["hey jarvis", "Hey_Jarvis", "hey jarvis_v0.1"] {
            assert_eq!(
                resolve(&loaded(), &names(&[name])),
                Ok(vec![false, true]),
                "{name}"
            );
        }
        assert_eq!(
            resolve(&loaded(), &names(&["alexa", "hey jarvis", "alexa"])),
            Ok(vec![true, true])
        );
    }

    #[test]
    fn an_unknown_name_is_named_with_the_loaded_ones() {
        for bad in ["jarvis", "", "alexa_vx", "alexa_v"] {
            let err = resolve(&loaded(), &names(&["alexa", bad])).unwrap_err();
            assert!(
                err.contains(&format!("{bad:?} is not loaded"))
                    && err.contains("alexa_v0.1, hey_jarvis_v0.1"),
                "{err}"
            );
        }
    }

    #[test]
    fn the_version_suffix_is_only_a_trailing_number() {
        assert_eq!(match_key("alexa_v0.1"), "alexa");
        assert_eq!(match_key("hey_jarvis_v2"), "hey_jarvis");
        assert_eq!(match_key("my_voice_model"), "my_voice_model");
        assert_eq!(match_key("alexa_v0.1_custom"), "alexa_v0.1_custom");
    }

    #[test]
    fn an_odd_byte_count_is_named() {
        assert_eq!(check_pcm(&[0; 640], 1), Ok(()));
        let err = check_pcm(&[0; 641], 3).unwrap_err();
        assert!(
            matches!(&err, DetectError::InvalidArgument(m) if m.contains("message 3 has 641 bytes")),
            "{err:?}"
        );
    }

    #[test]
    fn busy_names_the_key() {
        let status = Status::from(DetectError::Busy { max: 4 });
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(
            status.message().contains("max_detect_streams"),
            "{status:?}"
        );
    }
}
