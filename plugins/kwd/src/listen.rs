//! The audio path: stt's AudioFrames stream → engine → detector → events.
//!
//! One thread with its own single-threaded runtime receives the frames and scores them
//! inline (about a millisecond per 80 ms chunk). When the stream ends (stt restarted,
//! swapped, stopped) the plugin reports NOT_SERVING and reconnects by itself; audio heard
//! before a gap never combines with audio after it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::broadcast;
use voicehost_audio::Resampler;
use voicehost_plugin_runtime::stream::{Follow, Resubscribe, dial};
use voicehost_plugin_runtime::{HealthHandle, now_us};
use voicehost_proto::common::v1::AudioFrame;
use voicehost_proto::kwd::v1::{KwdEvent, KwdState, WakeDetected, kwd_event};
use voicehost_proto::stt::v1::AudioFramesRequest;
use voicehost_proto::stt::v1::stt_service_client::SttServiceClient;

use crate::detector::Detector;
use crate::engine::{Engine, RATE};

/// Longest wait between reconnection attempts.
const MAX_RETRY: Duration = Duration::from_secs(1);

/// State shared by the listener and the RPC handlers.
#[derive(Debug)]
pub struct Shared {
    pub events: broadcast::Sender<KwdEvent>,
    /// Why detection is disabled; enabled when empty.
    disabled: Mutex<BTreeSet<String>>,
    /// Bumped when detection is re-armed, so the listener starts from fresh audio.
    armed_generation: AtomicU64,
    pub connected: AtomicBool,
    pub models: Mutex<Vec<String>>,
    /// The engine running them (`openwakeword`, `microwakeword`), once loaded.
    pub engine: Mutex<String>,
    pub stop: AtomicBool,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            events: broadcast::channel(32).0,
            disabled: Mutex::new(BTreeSet::new()),
            armed_generation: AtomicU64::new(0),
            connected: AtomicBool::new(false),
            models: Mutex::new(Vec::new()),
            engine: Mutex::new(String::new()),
            stop: AtomicBool::new(false),
        }
    }
}

impl Shared {
    pub fn enabled(&self) -> bool {
        self.disabled.lock().map(|d| d.is_empty()).unwrap_or(false)
    }

    /// Adds `reason` to the reasons detection is off for.
    pub fn disable(&self, reason: &str) {
        if let Ok(mut d) = self.disabled.lock() {
            d.insert(reason.to_owned());
        }
    }

    /// Lifts `reason` (every reason when empty); returns whether detection is armed now.
    pub fn enable(&self, reason: &str) -> bool {
        let Ok(mut d) = self.disabled.lock() else {
            return false;
        };
        let was_disabled = !d.is_empty();
        if reason.is_empty() {
            d.clear();
        } else {
            d.remove(reason);
        }
        if was_disabled && d.is_empty() {
            self.armed_generation.fetch_add(1, Ordering::SeqCst);
        }
        d.is_empty()
    }

    pub fn state(&self) -> KwdState {
        let disabled_by: Vec<String> = self
            .disabled
            .lock()
            .map(|d| d.iter().cloned().collect())
            .unwrap_or_default();
        KwdState {
            enabled: disabled_by.is_empty(),
            audio_connected: self.connected.load(Ordering::SeqCst),
            models: self.models.lock().map(|m| m.clone()).unwrap_or_default(),
            disabled_by,
            engine: self.engine.lock().map(|e| e.clone()).unwrap_or_default(),
        }
    }
}

/// Scores a stream of frames and fires detections; one per connection.
struct Scorer<'a> {
    engine: &'a mut Engine,
    detector: &'a mut Detector,
    models: Vec<String>,
    resampler: Option<Resampler>,
    /// Samples scored since the last reset (the detector's clock).
    position: u64,
    generation: u64,
    next_seq: Option<u64>,
}

impl Scorer<'_> {
    fn reset(&mut self) {
        if let Err(e) = self.engine.reset() {
            // The next push fails too, and says so where it is handled.
            tracing::warn!(error = %e, "kwd could not reset the wake models");
        }
        self.detector.reset();
        self.position = 0;
    }

    /// Takes one frame; returns detection events.
    fn frame(&mut self, shared: &Shared, frame: &AudioFrame) -> Result<Vec<KwdEvent>, String> {
        let generation = shared.armed_generation.load(Ordering::SeqCst);
        if generation != self.generation {
            self.generation = generation;
            self.reset();
        }
        if let Some(expected) = self.next_seq
            && frame.seq > expected
        {
            tracing::warn!(
                event = "kwd_audio_gap",
                frames = frame.seq - expected,
                "stt dropped audio frames before kwd got them"
            );
        }
        // seq counts stt's 10 ms capture frames.
        let frames_in = frame.pcm_s16le.len() as u64 / 2 / u64::from(frame.channels.max(1)) * 100
            / u64::from(frame.sample_rate.max(1));
        self.next_seq = Some(frame.seq + frames_in.max(1));
        if !shared.enabled() {
            return Ok(Vec::new());
        }
        if frame.sample_rate == 0
            || frame.channels == 0
            || !frame
                .pcm_s16le
                .len()
                .is_multiple_of(2 * frame.channels as usize)
        {
            return Err(format!(
                "stt sent a malformed audio frame ({} Hz, {} channels, {} bytes)",
                frame.sample_rate,
                frame.channels,
                frame.pcm_s16le.len()
            ));
        }
        let mono = voicehost_audio::to_mono(
            &voicehost_audio::from_s16le(&frame.pcm_s16le),
            frame.channels as usize,
        );
        let mono = if frame.sample_rate == RATE {
            mono
        } else {
            let r = match &mut self.resampler {
                Some(r) if r.rates().0 == frame.sample_rate => r,
                _ => self
                    .resampler
                    .insert(Resampler::new(frame.sample_rate, RATE).map_err(|e| e.to_string())?),
            };
            r.process(&mono)
        };
        // The models take samples on the 16-bit scale.
        let samples: Vec<f32> = mono.iter().map(|s| s * 32768.0).collect();
        let mut events = Vec::new();
        let frame_end_us =
            frame.ts_unix_us + (mono.len() as i64 * 1_000_000) / i64::from(RATE.max(1));
        let start = self.position;
        self.position += samples.len() as u64;
        for scored in self.engine.push(&samples)? {
            let at = start + scored.at as u64;
            let Some(hit) = self.detector.observe(at, &scored.scores) else {
                continue;
            };
            let now = now_us();
            let model = self.models[hit.model].clone();
            tracing::info!(
                event = "wake_detected",
                model = %model,
                confidence = format!("{:.3}", hit.score),
                audio_lag_ms = (now - frame_end_us) / 1000,
                "Wake word"
            );
            events.push(KwdEvent {
                event: Some(kwd_event::Event::WakeDetected(WakeDetected {
                    confidence: hit.score,
                    ts_unix_us: now,
                    model,
                    dialog_id: String::new(),
                })),
            });
        }
        Ok(events)
    }
}

/// Loads the models, then listens until `shared.stop`.
pub fn run(
    mut engine: Engine,
    mut detector: Detector,
    addr: String,
    shared: Arc<Shared>,
    health: HealthHandle,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            health.set_not_serving(format!("cannot start the audio runtime: {e}"));
            return;
        }
    };
    let models = engine.models();
    let frame_ms = engine.frame_ms();
    let open = {
        let addr = addr.clone();
        move || {
            let addr = addr.clone();
            async move { connect(&addr, frame_ms).await }
        }
    };
    runtime.block_on(async move {
        let mut audio = Resubscribe::with_backoff(open, Duration::from_millis(100), MAX_RETRY);
        let mut scorer: Option<Scorer> = None;
        let mut last_problem = String::new();
        while !shared.stop.load(Ordering::SeqCst) {
            // While a stream stands, wake every 200 ms to see `stop` (reading a message is
            // cancel-safe); a reconnection attempt is bounded by its pause and timeouts.
            let next = if audio.is_connected() {
                tokio::select! {
                    next = audio.next() => next,
                    () = tokio::time::sleep(Duration::from_millis(200)) => continue,
                }
            } else {
                audio.next().await
            };
            let problem = match next {
                Follow::Item(frame) => {
                    let Some(s) = &mut scorer else { continue };
                    match s.frame(&shared, &frame) {
                        Ok(events) => {
                            for e in events {
                                let _ = shared.events.send(e);
                            }
                            continue;
                        }
                        // A frame the scorer cannot use ends this connection.
                        Err(e) => {
                            audio.drop_stream();
                            scorer = None;
                            lost(&shared, &addr, &e)
                        }
                    }
                }
                Follow::Connected => {
                    shared.connected.store(true, Ordering::SeqCst);
                    health.set_serving();
                    tracing::info!(event = "kwd_audio_connected", addr = %addr, "Listening to stt's audio");
                    last_problem.clear();
                    let mut s = Scorer {
                        engine: &mut engine,
                        detector: &mut detector,
                        models: models.clone(),
                        resampler: None,
                        position: 0,
                        generation: shared.armed_generation.load(Ordering::SeqCst),
                        next_seq: None,
                    };
                    s.reset();
                    scorer = Some(s);
                    continue;
                }
                Follow::Lost(why) => {
                    scorer = None;
                    lost(&shared, &addr, &why)
                }
                Follow::Unavailable(why) => format!(
                    "waiting for stt audio at {addr} ({why}); kwd listens to the stt service: enable [stt], or set [kwd] audio_source"
                ),
            };
            if problem != last_problem {
                health.set_not_serving(problem.clone());
                last_problem = problem;
            }
        }
    });
}

/// Marks stt's audio lost and says so; the health detail.
fn lost(shared: &Shared, addr: &str, why: &str) -> String {
    shared.connected.store(false, Ordering::SeqCst);
    tracing::warn!(event = "kwd_audio_lost", addr = %addr, reason = %why, "Lost stt's audio; reconnecting");
    format!("lost stt audio at {addr} ({why}); reconnecting")
}

/// Opens stt's frame stream, `frame_ms` of audio per message.
async fn connect(addr: &str, frame_ms: u32) -> Result<tonic::Streaming<AudioFrame>, String> {
    let channel = dial(addr).await?;
    let started = Instant::now();
    let response = SttServiceClient::new(channel)
        .audio_frames(AudioFramesRequest { frame_ms })
        .await
        .map_err(|s| format!("AudioFrames: {}", s.message()))?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        "AudioFrames opened"
    );
    Ok(response.into_inner())
}
