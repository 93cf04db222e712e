//! What the pipeline threads and the RPC handlers share: the frame and result broadcasts,
//! the dialog listened to, the render-reference queue between the reference and capture
//! threads, the input `SetInput` opened, and the hand-over at a pause (smart and
//! turn-model endpointing) between the capture and recognition threads, and the
//! recognition thread's queue for `Transcribe`.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, mpsc};

use tokio::sync::broadcast;
use voicehost_audio::{Pacing, Source};
use voicehost_proto::common::v1::AudioFrame;
use voicehost_proto::stt::v1::SttResult;

use super::capture::FRAME;
use super::echo::EchoLine;
use super::played::{FAR_END_LEAD, PlayedLine};
use super::recognize::Work;

/// State shared by the pipeline threads and the RPC handlers.
#[derive(Debug)]
pub struct Shared {
    pub frames: broadcast::Sender<AudioFrame>,
    pub results: broadcast::Sender<SttResult>,
    /// The dialog being listened to.
    pub dialog: Mutex<Option<String>>,
    /// The dialog's barge-in minimum (ms voiced while the assistant speaks); 0: none.
    pub barge_in_ms: AtomicU32,
    /// The render reference (16 kHz) on the clock it plays by, not yet taken by the capture
    /// thread, which takes what played as each frame was captured.
    render: Mutex<PlayedLine>,
    pub utterances: AtomicU32,
    pub stop: AtomicBool,
    /// An input opened by `SetInput`, taken over by the capture thread.
    pub next_input: Mutex<Option<Box<dyn Source>>>,
    /// How WAV inputs opened by `SetInput` are paced.
    pub pacing: Pacing,
    /// The simulated speaker → microphone path, if configured.
    pub echo: Option<EchoLine>,
    /// The hand-over at a pause (smart and turn-model endpointing) between the capture and recognition threads.
    pauses: Mutex<Pauses>,
    /// The recognition thread's queue, for `Transcribe`: set once the thread runs, taken
    /// at stop (so the thread ends, and frees the model, when capture has ended too).
    requests: Mutex<Option<mpsc::Sender<Work>>>,
}

/// The pause whose partial transcript may still end its utterance (utterance serial, pause
/// number), the utterance a partial did end (so capture drops the rest of it), and the
/// silence being read ahead of its pause (utterance serial, speech end).
#[derive(Debug, Default)]
struct Pauses {
    pending: Option<(u64, u64)>,
    claimed: Option<u64>,
    quiet: Option<(u64, u64)>,
}

impl Shared {
    pub fn new(pacing: Pacing, echo: Option<EchoLine>) -> Shared {
        Shared {
            frames: broadcast::channel(256).0,
            results: broadcast::channel(64).0,
            dialog: Mutex::new(None),
            barge_in_ms: AtomicU32::new(0),
            render: Mutex::new(PlayedLine::default()),
            utterances: AtomicU32::new(0),
            stop: AtomicBool::new(false),
            next_input: Mutex::new(None),
            pacing,
            echo,
            pauses: Mutex::new(Pauses::default()),
            requests: Mutex::new(None),
        }
    }

    /// Render reference whose first sample plays at `at` (ticks) arrived.
    pub fn push_render(&self, at: i64, samples: &[f32]) {
        if let Ok(mut r) = self.render.lock() {
            r.push(at, samples);
        }
    }

    /// The far end that goes with a frame captured at `captured` (ticks): what played from
    /// [`FAR_END_LEAD`] later; silence when nothing played.
    pub fn pop_render(&self, captured: i64) -> Vec<f32> {
        self.render
            .lock()
            .map(|mut r| r.take(captured + FAR_END_LEAD, FRAME))
            .unwrap_or_else(|_| vec![0.0; FRAME])
    }

    pub fn set_pending(&self, pause: Option<(u64, u64)>) {
        if let Ok(mut p) = self.pauses.lock() {
            p.pending = pause;
        }
    }

    pub fn is_pending(&self, pause: (u64, u64)) -> bool {
        self.pauses.lock().is_ok_and(|p| p.pending == Some(pause))
    }

    /// The silence after the speech of utterance `quiet.0` that ended at `quiet.1` began
    /// (its audio is read ahead of the pause); `None`: speech came back.
    pub fn set_quiet(&self, quiet: Option<(u64, u64)>) {
        if let Ok(mut p) = self.pauses.lock() {
            p.quiet = quiet;
        }
    }

    /// No speech came since `quiet` began: reading its audio ahead is still of use.
    pub fn is_quiet(&self, quiet: (u64, u64)) -> bool {
        self.pauses.lock().is_ok_and(|p| p.quiet == Some(quiet))
    }

    /// Ends utterance `pause.0` with the partial of `pause`, unless speech came back since.
    pub fn claim(&self, pause: (u64, u64)) -> bool {
        let Ok(mut p) = self.pauses.lock() else {
            return false;
        };
        if p.pending != Some(pause) {
            return false;
        }
        p.pending = None;
        p.claimed = Some(pause.0);
        true
    }

    pub fn take_claimed(&self) -> Option<u64> {
        self.pauses.lock().ok().and_then(|mut p| p.claimed.take())
    }

    /// The recognition thread runs and takes `Transcribe` requests through `queue` (unless
    /// the plugin is stopping).
    pub fn open_requests(&self, queue: mpsc::Sender<Work>) {
        if let Ok(mut r) = self.requests.lock()
            && !self.stop.load(Ordering::SeqCst)
        {
            *r = Some(queue);
        }
    }

    /// Where `Transcribe` sends a request; `None` until the recogniser is loaded, and
    /// after the plugin stopped.
    pub fn requests(&self) -> Option<mpsc::Sender<Work>> {
        self.requests.lock().ok().and_then(|r| r.clone())
    }

    /// Stops taking `Transcribe` requests (`stop` is set first).
    pub fn close_requests(&self) {
        if let Ok(mut r) = self.requests.lock() {
            r.take();
        }
    }

    pub fn active_dialog(&self) -> Option<String> {
        self.dialog.lock().ok().and_then(|d| d.clone())
    }
}
