//! The playback queue and its thread: plays synthesised chunks in order through the output,
//! reports `started` / `chunk_played` / `finished` / `interrupted` / `underrun` per
//! utterance, and publishes exactly what was played (in 20 ms frames with timestamps) as
//! the render reference for stt's echo canceller.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, oneshot};
use voicehost_audio::{DISCARD_FADE, Sink};
use voicehost_proto::common::v1::AudioFrame;
use voicehost_proto::tts::v1::{PlaybackEvent, PlaybackEventKind};

use voicehost_plugin_runtime::{now_us, unix_us};

/// Audio per write to the output and per render-reference frame.
const FRAME: Duration = Duration::from_millis(20);

/// What the playback thread does next.
enum Next {
    Chunk(Chunk),
    /// The playing utterance was stopped: drop what the output holds.
    Discard,
}

/// A piece of one utterance.
#[derive(Debug)]
pub struct Chunk {
    pub utterance: u64,
    pub dialog: String,
    pub pcm: Vec<f32>,
    /// The utterance ends with this chunk.
    pub last: bool,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Chunk>,
    /// Utterances still receiving chunks (streams), with the audio queued so far.
    open: HashMap<u64, usize>,
    /// Utterances whose playback may start (low watermark reached, or complete).
    ready: HashSet<u64>,
    /// Callers waiting for an utterance to end: (finished rather than interrupted,
    /// samples played).
    waiters: HashMap<u64, Vec<oneshot::Sender<(bool, u64)>>>,
    /// Samples played per utterance so far.
    played: HashMap<u64, u64>,
    /// Utterances announced and not yet finished, with their dialog.
    active: HashMap<u64, String>,
    /// Utterances cancelled by StopSpeaking (their chunks are dropped).
    cancelled: HashSet<u64>,
    /// The utterance being played, and when the audio handed to the output so far ends.
    playing: Option<(u64, Instant)>,
    /// The playing utterance was stopped: the output is to drop what it holds.
    discard: bool,
    shutdown: bool,
}

/// Handle to the playback thread.
#[derive(Debug, Clone)]
pub struct Player {
    state: Arc<(Mutex<State>, Condvar)>,
    pub events: broadcast::Sender<PlaybackEvent>,
    pub reference: broadcast::Sender<AudioFrame>,
    low_watermark: usize,
    sample_rate: u32,
    /// The output drops what it holds when the playing utterance is stopped.
    discards: bool,
}

fn event(kind: PlaybackEventKind, dialog: &str, utterance: u64, duration_ms: u32) -> PlaybackEvent {
    PlaybackEvent {
        kind: kind as i32,
        dialog_id: dialog.to_owned(),
        utterance_id: utterance,
        ts_unix_us: now_us(),
        duration_ms,
    }
}

impl Player {
    /// Starts the playback thread on `sink`, which plays `sample_rate` audio.
    pub fn start(mut sink: Box<dyn Sink>, sample_rate: u32, low_watermark_ms: u32) -> Player {
        let (events, _) = broadcast::channel(1024);
        let (reference, _) = broadcast::channel(512);
        let player = Player {
            state: Arc::new((Mutex::new(State::default()), Condvar::new())),
            events,
            reference,
            low_watermark: sample_rate as usize * low_watermark_ms as usize / 1000,
            sample_rate,
            discards: sink.discards(),
        };
        let p = player.clone();
        std::thread::Builder::new()
            .name("vh-tts-playback".to_owned())
            .spawn(move || p.run(sink.as_mut()))
            .map_err(|e| tracing::error!(error = %e, "Cannot start the playback thread"))
            .ok();
        player
    }

    /// How long `samples` of this player's audio play, in ms.
    pub fn duration_ms(&self, samples: u64) -> u32 {
        (samples * 1000 / u64::from(self.sample_rate)) as u32
    }

    /// Announces `utterance` of `dialog` before its chunks come, so that it can be stopped
    /// while still being synthesised.
    pub fn begin(&self, utterance: u64, dialog: &str) {
        if let Ok(mut s) = self.state.0.lock() {
            s.active.insert(utterance, dialog.to_owned());
        }
    }

    /// Marks `utterance` as a stream whose chunks are still coming.
    pub fn open(&self, utterance: u64, dialog: &str) {
        if let Ok(mut s) = self.state.0.lock() {
            s.open.insert(utterance, 0);
            s.active.insert(utterance, dialog.to_owned());
        }
    }

    /// Queues a chunk.
    pub fn push(&self, chunk: Chunk) {
        let (lock, cvar) = &*self.state;
        let Ok(mut s) = lock.lock() else { return };
        if s.cancelled.contains(&chunk.utterance) {
            return;
        }
        let id = chunk.utterance;
        let queued = s.open.get(&id).copied().unwrap_or(0) + chunk.pcm.len();
        if chunk.last || queued >= self.low_watermark || !s.open.contains_key(&id) {
            s.ready.insert(id);
        }
        if chunk.last {
            s.open.remove(&id);
        } else if let Some(q) = s.open.get_mut(&id) {
            *q = queued;
        }
        s.queue.push_back(chunk);
        cvar.notify_all();
    }

    /// Audio queued and not yet played, in samples.
    pub fn queued_samples(&self) -> usize {
        self.state
            .0
            .lock()
            .map(|s| s.queue.iter().map(|c| c.pcm.len()).sum())
            .unwrap_or(0)
    }

    /// A receiver told whether `utterance` finished (true) or was interrupted (false), and
    /// how many samples were played.
    pub fn wait_end(&self, utterance: u64) -> oneshot::Receiver<(bool, u64)> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut s) = self.state.0.lock() {
            s.waiters.entry(utterance).or_default().push(tx);
        }
        rx
    }

    /// Drops the queued and playing audio of `dialog` (all when empty); returns how many
    /// utterances were dropped.
    pub fn stop(&self, dialog: &str) -> u32 {
        let (lock, cvar) = &*self.state;
        let Ok(mut s) = lock.lock() else { return 0 };
        let mut dropped: HashSet<u64> = s
            .active
            .iter()
            .filter(|(_, d)| dialog.is_empty() || d.as_str() == dialog)
            .map(|(id, _)| *id)
            .collect();
        s.queue.retain(|c| !dropped.contains(&c.utterance));
        let open: Vec<u64> = s
            .open
            .keys()
            .copied()
            .filter(|id| dropped.contains(id))
            .collect();
        for id in open {
            s.open.remove(&id);
        }
        dropped.retain(|id| !s.cancelled.contains(id));
        // The playing utterance goes quiet once the frame being handed over now is, and
        // then the output has played what it keeps: its fade-out, or all it holds.
        let playing = s.playing.filter(|(id, _)| dropped.contains(id));
        s.discard |= playing.is_some();
        let quiet_us = now_us()
            + playing.map_or(0, |(_, drained)| {
                let held = if self.discards {
                    DISCARD_FADE
                } else {
                    drained.saturating_duration_since(Instant::now())
                };
                (held + FRAME).as_micros() as i64
            });
        for id in &dropped {
            s.cancelled.insert(*id);
            let own_dialog = s.active.remove(id).unwrap_or_default();
            let played = s.played.remove(id).unwrap_or(0);
            for w in s.waiters.remove(id).unwrap_or_default() {
                let _ = w.send((false, played));
            }
            let mut ev = event(PlaybackEventKind::Interrupted, &own_dialog, *id, 0);
            ev.ts_unix_us = quiet_us;
            let _ = self.events.send(ev);
        }
        cvar.notify_all();
        dropped.len() as u32
    }

    pub fn shutdown(&self) {
        let (lock, cvar) = &*self.state;
        if let Ok(mut s) = lock.lock() {
            s.shutdown = true;
        }
        cvar.notify_all();
    }

    /// The next chunk whose utterance may play, or the word to drop what the output holds;
    /// `None` on shutdown.
    fn next(&self) -> Option<Next> {
        let (lock, cvar) = &*self.state;
        let mut s = lock.lock().ok()?;
        loop {
            if s.shutdown {
                return None;
            }
            if std::mem::take(&mut s.discard) {
                s.playing = None;
                return Some(Next::Discard);
            }
            if let Some(pos) = s.queue.iter().position(|c| s.ready.contains(&c.utterance)) {
                return s.queue.remove(pos).map(Next::Chunk);
            }
            s = cvar.wait_timeout(s, Duration::from_millis(50)).ok()?.0;
        }
    }

    /// True once `utterance` was stopped.
    pub fn is_cancelled(&self, utterance: u64) -> bool {
        self.state
            .0
            .lock()
            .map(|s| s.cancelled.contains(&utterance))
            .unwrap_or(true)
    }

    fn is_open(&self, utterance: u64) -> bool {
        self.state
            .0
            .lock()
            .map(|s| s.open.contains_key(&utterance))
            .unwrap_or(false)
    }

    fn run(&self, sink: &mut dyn Sink) {
        let mut current: Option<u64> = None;
        // A stream's queue ran dry mid-utterance at this moment.
        let mut starved_since: Option<Instant> = None;
        let mut seq = 0u64;
        // Audio per render-reference frame and per write to the output.
        let frame_len = (self.sample_rate as usize * FRAME.as_millis() as usize / 1000).max(1);
        while let Some(next) = self.next() {
            let chunk = match next {
                Next::Chunk(chunk) => chunk,
                Next::Discard => {
                    sink.discard();
                    current = None;
                    continue;
                }
            };
            let id = chunk.utterance;
            if self.is_cancelled(id) {
                continue;
            }
            if current != Some(id) {
                current = Some(id);
                let _ = self
                    .events
                    .send(event(PlaybackEventKind::Started, &chunk.dialog, id, 0));
                // What the output holds before this utterance, and its own buffering.
                let plays_in = sink
                    .next_played_at()
                    .saturating_duration_since(Instant::now());
                tracing::info!(
                    event = "playback_latency",
                    utterance = id,
                    ms = plays_in.as_secs_f64() * 1000.0,
                    "The utterance's first sample plays after this"
                );
            } else if let Some(since) = starved_since.take() {
                let gap = since.elapsed();
                if gap > Duration::from_millis(5) {
                    let ms = gap.as_millis() as u32;
                    tracing::warn!(event = "underrun", utterance = id, dialog = %chunk.dialog, duration_ms = ms, "Playback underrun: synthesis fell behind");
                    let _ =
                        self.events
                            .send(event(PlaybackEventKind::Underrun, &chunk.dialog, id, ms));
                }
            }
            let mut interrupted = false;
            for frame in chunk.pcm.chunks(frame_len) {
                if self.is_cancelled(id) {
                    interrupted = true;
                    break;
                }
                // The far end is timed by when it will sound, not when it is written:
                // what the output holds ahead varies with how promptly this thread runs.
                let ts = unix_us(sink.next_played_at());
                if let Err(e) = sink.write(frame) {
                    tracing::error!(error = %e, output = %sink.describe(), "Audio output failed");
                }
                if let Ok(mut s) = self.state.0.lock() {
                    s.playing = Some((id, sink.drained_at()));
                }
                let _ = self.reference.send(AudioFrame {
                    pcm_s16le: voicehost_audio::to_s16le(frame),
                    sample_rate: self.sample_rate,
                    channels: 1,
                    ts_unix_us: ts,
                    seq,
                });
                seq += 1;
            }
            if interrupted {
                // `next` has the output drop what it holds.
                current = None;
                continue;
            }
            if let Ok(mut s) = self.state.0.lock() {
                *s.played.entry(id).or_default() += chunk.pcm.len() as u64;
            }
            let ms = self.duration_ms(chunk.pcm.len() as u64);
            let _ = self
                .events
                .send(event(PlaybackEventKind::ChunkPlayed, &chunk.dialog, id, ms));
            if chunk.last {
                let _ = sink.flush();
                // `finished` means heard to the end: wait out the output's buffer.
                if let Some(wait) = sink.drained_at().checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let _ = self
                    .events
                    .send(event(PlaybackEventKind::Finished, &chunk.dialog, id, 0));
                if let Ok(mut s) = self.state.0.lock() {
                    s.ready.remove(&id);
                    s.active.remove(&id);
                    let played = s.played.remove(&id).unwrap_or(0);
                    for w in s.waiters.remove(&id).unwrap_or_default() {
                        let _ = w.send((true, played));
                    }
                }
                current = None;
            } else if self.is_open(id) && !self.has_queued(id) {
                starved_since = Some(sink.drained_at().max(Instant::now()));
            }
        }
    }

    fn has_queued(&self, utterance: u64) -> bool {
        self.state
            .0
            .lock()
            .map(|s| s.queue.iter().any(|c| c.utterance == utterance))
            .unwrap_or(false)
    }
}
