//! `voicehost.llm.v1.LlmService`: streamed completions with a history per dialog.
//!
//! - One generation at a time: requests queue in arrival order on the engine thread.
//! - A client that goes away cancels its request, queued or running (the engine stops at
//!   the next token). In a dialog (a barge-in) the reply so far stays in its history.
//! - History: `dialog_id` empty = no history. Turn 1 starts (or restarts) a dialog; turn
//!   n > 1 continues one whose last turn was n − 1. The most recent `max_dialogs` dialogs
//!   are kept; the oldest turns are dropped when a prompt would not fit the context.
//! - The transcript is the host's: it relays every chunk to tts and knows whether a reply
//!   was interrupted.
//! - `context` (facts such as the local date and time) is appended to the system prompt for
//!   that request only; the history keeps what was said, not the facts.
//! - `prefill_only`: the system prompt with `context` is read into the engine's cache and
//!   the stream ends (`finish_reason` "prefilled"): the host sends it when a dialog starts,
//!   so that the first turn reads only the question.

use std::collections::HashMap;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use voicehost_proto::llm::v1::llm_service_server::LlmService;
use voicehost_proto::llm::v1::{CompleteRequest, LlmChunk};

use crate::engine::{Event, Finish, Job, Message};

/// Longest request text.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Longest request context.
pub const MAX_CONTEXT_BYTES: usize = 4 * 1024;
/// Most tokens a request may ask for.
pub const MAX_TOKENS: u32 = 8192;

#[derive(Debug)]
struct Dialog {
    history: Vec<Message>,
    last_turn: u32,
    used: Instant,
}

#[derive(Debug)]
pub struct Llm {
    /// The engine's queue, once the model is loaded and warm.
    pub jobs: Arc<OnceLock<Sender<Job>>>,
    /// System prompt and Modelfile examples, before every conversation.
    pub preamble: Vec<Message>,
    pub default_max_tokens: u32,
    pub max_dialogs: usize,
    dialogs: Arc<Mutex<HashMap<String, Dialog>>>,
}

impl Llm {
    pub fn new(
        jobs: Arc<OnceLock<Sender<Job>>>,
        preamble: Vec<Message>,
        default_max_tokens: u32,
        max_dialogs: usize,
    ) -> Llm {
        Llm {
            jobs,
            preamble,
            default_max_tokens,
            max_dialogs,
            dialogs: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

fn check_request(r: &CompleteRequest) -> Result<(), Status> {
    if r.prefill_only {
        if !r.text.is_empty() || !r.dialog_id.is_empty() || r.turn != 0 || r.max_tokens != 0 {
            return Err(Status::invalid_argument(
                "prefill_only reads the system prompt and context only: leave text, dialog_id, \
                 turn and max_tokens unset",
            ));
        }
        return check_context(&r.context);
    }
    if r.text.trim().is_empty() {
        return Err(Status::invalid_argument(
            "text is empty; send what the user said",
        ));
    }
    if r.text.len() > MAX_TEXT_BYTES {
        return Err(Status::invalid_argument(format!(
            "text is {} bytes; the limit is {MAX_TEXT_BYTES}",
            r.text.len()
        )));
    }
    if let Some(c) = r
        .text
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(Status::invalid_argument(format!(
            "text contains the control character {c:?}; send plain text"
        )));
    }
    if !r.dialog_id.is_empty() {
        voicehost_plugin_runtime::check_id(
            "dialog_id",
            &r.dialog_id,
            " (as the logger's NewDialog returns), or empty for no history",
        )?;
        if r.turn == 0 {
            return Err(Status::invalid_argument(
                "turn is 0; turns count from 1 within a dialog",
            ));
        }
    }
    check_context(&r.context)?;
    if r.max_tokens > MAX_TOKENS {
        return Err(Status::invalid_argument(format!(
            "max_tokens = {} is over the limit {MAX_TOKENS}; 0 means the Modelfile's num_predict",
            r.max_tokens
        )));
    }
    Ok(())
}

fn check_context(context: &str) -> Result<(), Status> {
    if context.len() > MAX_CONTEXT_BYTES {
        return Err(Status::invalid_argument(format!(
            "context is {} bytes; the limit is {MAX_CONTEXT_BYTES}",
            context.len()
        )));
    }
    if let Some(c) = context
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\t'))
    {
        return Err(Status::invalid_argument(format!(
            "context contains the control character {c:?}; send plain text"
        )));
    }
    Ok(())
}

#[tonic::async_trait]
impl LlmService for Llm {
    type CompleteStream = ReceiverStream<Result<LlmChunk, Status>>;

    async fn complete(
        &self,
        req: Request<CompleteRequest>,
    ) -> Result<Response<Self::CompleteStream>, Status> {
        let req = req.into_inner();
        check_request(&req)?;
        let requested = Instant::now();
        let history = if req.dialog_id.is_empty() {
            Vec::new()
        } else {
            let dialogs = self
                .dialogs
                .lock()
                .map_err(|_| Status::internal("dialog state poisoned"))?;
            match (dialogs.get(&req.dialog_id), req.turn) {
                (_, 1) => Vec::new(),
                (Some(d), t) if t == d.last_turn + 1 => d.history.clone(),
                (Some(d), t) => {
                    return Err(Status::failed_precondition(format!(
                        "dialog {:?} is at turn {}; send turn {} (or turn 1 to start over), not {t}",
                        req.dialog_id,
                        d.last_turn,
                        d.last_turn + 1
                    )));
                }
                (None, t) => {
                    return Err(Status::failed_precondition(format!(
                        "dialog {:?} has no turn {}; start it with turn 1",
                        req.dialog_id,
                        t - 1
                    )));
                }
            }
        };
        let mut messages = with_context(&self.preamble, &req.context);
        let keep = messages.len();
        messages.extend(history.iter().cloned());
        if !req.prefill_only {
            messages.push(Message::new("user", req.text.clone()));
        }
        let max_tokens = if req.max_tokens == 0 {
            self.default_max_tokens
        } else {
            req.max_tokens
        };
        let (events_tx, mut events) = mpsc::channel::<Event>(64);
        let job = Job {
            messages,
            keep,
            max_tokens,
            prefill_only: req.prefill_only,
            out: events_tx,
        };
        self.jobs
            .get()
            .ok_or_else(|| {
                Status::unavailable("the language model is still loading; wait for SERVING")
            })?
            .send(job)
            .map_err(|_| Status::unavailable("the language model is not running; see app.log"))?;

        let (tx, rx) = mpsc::channel::<Result<LlmChunk, Status>>(64);
        let dialogs = Arc::clone(&self.dialogs);
        let max_dialogs = self.max_dialogs;
        tokio::spawn(async move {
            let chunk = |text: String, index: u32, finish: Option<Finish>| LlmChunk {
                text,
                eot: finish.is_some(),
                dialog_id: req.dialog_id.clone(),
                turn: req.turn,
                index,
                finish_reason: finish.map(|f| f.as_str().to_owned()).unwrap_or_default(),
            };
            let mut reply = String::new();
            let mut index = 0;
            loop {
                let event = tokio::select! {
                    e = events.recv() => e,
                    // The client went away: dropping `events` stops the engine.
                    () = tx.closed() => None,
                };
                match event {
                    Some(Event::Text(text)) => {
                        reply.push_str(&text);
                        if tx.send(Ok(chunk(text, index, None))).await.is_err() {
                            break;
                        }
                        index += 1;
                    }
                    Some(Event::Done {
                        finish,
                        prompt_tokens,
                        tokens,
                        first_text_ms,
                        trimmed,
                    }) => {
                        tracing::info!(
                            event = "llm_reply",
                            dialog = %req.dialog_id,
                            turn = req.turn,
                            finish = finish.as_str(),
                            prompt_tokens,
                            tokens,
                            first_text_ms,
                            trimmed_messages = trimmed,
                            ms = requested.elapsed().as_millis() as u64,
                            "Reply finished"
                        );
                        if !req.dialog_id.is_empty() {
                            remember(&dialogs, max_dialogs, &req, &reply);
                        }
                        let _ = tx.send(Ok(chunk(String::new(), index, Some(finish)))).await;
                        return;
                    }
                    Some(Event::Rejected(why)) => {
                        let _ = tx.send(Err(Status::invalid_argument(why))).await;
                        return;
                    }
                    Some(Event::Failed(why)) => {
                        tracing::error!(event = "llm_failed", error = %why, "Generation failed");
                        let _ = tx.send(Err(Status::internal(why))).await;
                        return;
                    }
                    None => break,
                }
            }
            tracing::info!(
                event = "llm_cancelled",
                dialog = %req.dialog_id,
                turn = req.turn,
                chunks = index,
                "The client went away; generation stopped"
            );
            // Interrupted (a barge-in): the dialog keeps what was said so far.
            if !req.dialog_id.is_empty() && !reply.trim().is_empty() {
                remember(&dialogs, max_dialogs, &req, &reply);
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// The preamble with `context` appended to its system prompt (one is added first when
/// the Modelfile has none).
pub fn with_context(preamble: &[Message], context: &str) -> Vec<Message> {
    let mut messages = preamble.to_vec();
    let context = context.trim();
    if context.is_empty() {
        return messages;
    }
    match messages.iter_mut().find(|m| m.role == "system") {
        Some(system) => {
            system.text = format!("{}\n\n{context}", system.text.trim_end());
        }
        None => messages.insert(0, Message::new("system", context)),
    }
    messages
}

/// Adds the turn to its dialog's history, evicting the least recently used dialog.
fn remember(
    dialogs: &Mutex<HashMap<String, Dialog>>,
    max: usize,
    req: &CompleteRequest,
    reply: &str,
) {
    let Ok(mut dialogs) = dialogs.lock() else {
        return;
    };
    let d = dialogs.entry(req.dialog_id.clone()).or_insert(Dialog {
        history: Vec::new(),
        last_turn: 0,
        used: Instant::now(),
    });
    if req.turn == 1 {
        d.history.clear();
    }
    d.history.push(Message::new("user", req.text.clone()));
    d.history.push(Message::new("assistant", reply.to_owned()));
    d.last_turn = req.turn;
    d.used = Instant::now();
    while dialogs.len() > max {
        let Some(oldest) = dialogs
            .iter()
            .min_by_key(|(_, d)| d.used)
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        dialogs.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_appended_to_the_system_prompt() {
        let preamble = vec![
            Message::new("system", "You are a voice assistant.\n"),
            Message::new("user", "Hi"),
            Message::new("assistant", "Hello!"),
        ];
        let now = "The local date and time now: Sunday, December 6th, 2026, 7:05 PM.";
        let with = with_context(&preamble, now);
        assert_eq!(with[0].text, format!("You are a voice assistant.\n\n{now}"));
        assert_eq!(with[1..], preamble[1..]);
        assert_eq!(with_context(&preamble, "  "), preamble);
        // No system prompt: the context is one.
        let bare = with_context(&preamble[1..], now);
        assert_eq!(bare[0], Message::new("system", now));
        assert_eq!(bare.len(), 3);
    }

    #[test]
    fn a_bad_context_is_refused() {
        let ask = |context: String| CompleteRequest {
            text: "What day is it?".into(),
            context,
            ..CompleteRequest::default()
        };
        assert!(check_request(&ask("Today is Sunday.\n".into())).is_ok());
        let long = check_request(&ask("x".repeat(MAX_CONTEXT_BYTES + 1))).unwrap_err();
        assert!(long.message().contains("context is"), "{}", long.message());
        let control = check_request(&ask("a\u{7}b".into())).unwrap_err();
        assert!(control.message().contains("control character"));
    }
}
