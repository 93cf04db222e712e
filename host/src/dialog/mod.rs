//! The dialog manager: wake word → spoken acknowledgement → speech to text → the llm's reply
//! streamed into tts as it is generated → follow-up window → next turn or the end.
//!
//! Idle: kwd listens. A `WakeDetected` starts a dialog: a cached `yes_phrases` entry plays at
//! once, kwd is disabled (reason `dialog`), the logger opens the transcript (`NewDialog`).
//! When the acknowledgement has played, stt listens for the dialog (`Start`); speech that
//! starts within `followup_ms` is a turn: its final text goes to the transcript as `USER:`
//! (the host writes the whole transcript), llm `Complete` is piped chunk by chunk into tts
//! `SpeakStream` — what was relayed becomes the `ASSISTANT:` line, `[interrupted]` when a
//! barge-in cut it — and when the reply has played the next `followup_ms`
//! window begins. Silence ends the dialog: stt `Stop`, kwd enabled again.
//!
//! Barge-in (`barge_in = true`, the default): stt keeps listening while the reply plays,
//! with `barge_in_min_ms` in its `Start`. stt's echo guard keeps the assistant's own voice
//! out (echo cancellation, then a level check against the residual echo); speech it reports
//! during the reply stops it at once (tts `StopSpeaking`, the llm stream dropped, so llm
//! stops generating), is logged as `barge_in` with the residual echo figure, and its final
//! text is the next turn. With `barge_in = false` stt stops while the reply plays.
//!
//! Before the first dialog the warm-up greeting is said once ([`warmup()`]). Besides,
//! whenever tts plays anything (the greeting, a prompt, a reply) kwd is disabled
//! (reason `speaking`) until 300 ms after playback ends.
//!
//! Faults: stt, llm and tts errors are logged with their cause, answered by a spoken prompt
//! (after tts is back, if tts was what failed) and the follow-up window is kept, so the user
//! can simply say it again. The loader restarts crashed plugins meanwhile.
//!
//! Skills (`skills = true`, the default): the final text goes to the built-in skills
//! (`crate::skills`) first; one that matches ("what time is it", "set a timer for 5
//! minutes", "stop") is spoken through tts `Speak` instead of asking the model, with the same
//! transcript lines, barge-in and follow-up window (`skill_matched` in app.log); "stop" ends
//! the dialog. The timers live here, across dialogs: the alarm task (`alarm.rs`) rings them.
//! The model is told the local date and time with every request (`CompleteRequest.context`),
//! as it was when the dialog began (for five minutes): the same system prompt from turn to
//! turn keeps the conversation so far in the llm's cache.

mod alarm;
mod echo;
mod faults;
mod listen;
mod relay;
mod services;
mod session;
mod skill;
mod timing;
mod transcript;
mod warmup;
mod watch;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::config::DialogConfig;
use crate::host::Host;
use crate::service::{self, Service};
use crate::skills::Timers;
use alarm::{Alarm, ring_timers};
use session::Dialogs;
pub use warmup::warmup;
use watch::{kwd_off_while_speaking, watch_playback, watch_wakes};

/// kwd's Disable/Enable reason while a dialog runs.
const DIALOG: &str = "dialog";
/// kwd's Disable/Enable reason while tts plays.
const SPEAKING: &str = "speaking";
/// After playback ends, kwd stays off this long more (the echo's tail).
const SPEAKING_TAIL: Duration = Duration::from_millis(300);
/// Longest wait for a final result once speech has started.
const UTTERANCE_LIMIT: Duration = Duration::from_secs(40);
/// Longest wait for a restarted service to serve again before a prompt or a retry.
const RECOVERY: Duration = Duration::from_secs(30);
/// A dialog ends after this many faults without a turn between them.
const MAX_FAULTS_IN_A_ROW: u32 = 3;
/// Longest a reply may take to generate and play.
const REPLY_LIMIT: Duration = Duration::from_secs(120);

/// Counters written to app.log every `metrics_interval_ms`.
#[derive(Debug, Default)]
struct Metrics {
    detections: AtomicU64,
    dialogs: AtomicU64,
    turns: AtomicU64,
    barge_ins: AtomicU64,
    skill_answers: AtomicU64,
    stt_errors: AtomicU64,
    llm_errors: AtomicU64,
    tts_errors: AtomicU64,
}

impl Metrics {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn log(&self) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        tracing::info!(
            event = "metrics",
            detections = get(&self.detections),
            dialogs = get(&self.dialogs),
            turns = get(&self.turns),
            barge_ins = get(&self.barge_ins),
            skill_answers = get(&self.skill_answers),
            stt_errors = get(&self.stt_errors),
            llm_errors = get(&self.llm_errors),
            tts_errors = get(&self.tts_errors),
            "Dialog counters"
        );
    }
}

/// The running dialog manager's tasks, and the timers they share.
#[derive(Debug)]
pub struct DialogManager {
    tasks: Vec<JoinHandle<()>>,
    metrics: Arc<Metrics>,
    timers: Arc<Timers>,
}

impl DialogManager {
    /// Starts watching tts playback and kwd, and the dialog loop. Before the greeting, so
    /// that kwd is off while it plays: returns once tts's playback events are watched (or
    /// after 5 s without them).
    pub async fn spawn(host: Arc<Host>, cfg: DialogConfig) -> DialogManager {
        let every = cfg.metrics_interval;
        let (playback, _) = broadcast::channel(1024);
        let metrics = Arc::new(Metrics::default());
        let timers = Arc::new(Timers::default());
        let mut tasks = Vec::new();
        let enabled = host.enabled();
        if enabled.contains(&Service::Tts) {
            let (watching_tx, watching) = tokio::sync::oneshot::channel();
            tasks.push(tokio::spawn(watch_playback(
                host.clone(),
                playback.clone(),
                watching_tx,
            )));
            if tokio::time::timeout(Duration::from_secs(5), watching)
                .await
                .is_err()
            {
                tracing::warn!(
                    event = "playback_watch_late",
                    "tts playback events not watched yet; kwd may hear the greeting"
                );
            }
            if enabled.contains(&Service::Kwd) {
                tasks.push(tokio::spawn(kwd_off_while_speaking(
                    host.clone(),
                    playback.subscribe(),
                )));
            }
        }
        if Service::DIALOG.iter().all(|s| enabled.contains(s)) {
            let (wakes_tx, wakes) = mpsc::channel(8);
            tasks.push(tokio::spawn(watch_wakes(host.clone(), wakes_tx)));
            let alarm = Alarm {
                phrase: cfg.timer_alarm_phrase.clone(),
                repeat: cfg.timer_alarm_repeat,
                timeout: cfg.timer_alarm_timeout,
            };
            tasks.push(tokio::spawn(ring_timers(
                host.clone(),
                timers.clone(),
                alarm,
                playback.clone(),
            )));
            let (transcript, lines) = mpsc::unbounded_channel();
            tasks.push(tokio::spawn(transcript::write_transcript(
                host.clone(),
                lines,
            )));
            let dialogs = Dialogs {
                cfg,
                host: host.clone(),
                playback: playback.clone(),
                metrics: metrics.clone(),
                timers: timers.clone(),
                transcript,
            };
            tasks.push(tokio::spawn(dialogs.run(wakes)));
        } else {
            tracing::info!(
                event = "dialog_off",
                services = %service::join(&enabled, ","),
                "The dialog loop needs logger, kwd, stt, llm and tts enabled; it does not run"
            );
        }
        let m = metrics.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
            tick.tick().await;
            loop {
                tick.tick().await;
                m.log();
            }
        }));
        DialogManager {
            tasks,
            metrics,
            timers,
        }
    }

    /// The timers the dialogs set (running or ringing ones keep a scripted run going).
    pub fn timers(&self) -> Arc<Timers> {
        self.timers.clone()
    }

    /// Stops every task and writes the counters a last time.
    pub fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.metrics.log();
    }
}
