//! What the server backends (Ollama, OpenAI-compatible) share: the engine thread runs a
//! current-thread tokio runtime, checks the server once, then serves the jobs one at a time.

use std::future::Future;
use std::sync::mpsc::{Receiver, Sender};

use crate::engine::{Event, Finish, Job};

/// A backend on a server, once it is reachable.
pub trait Remote {
    /// What serves, for the log: e.g. `Ollama llama3 at http://127.0.0.1:11434`.
    fn describe(&self) -> String;

    /// Streams `job`'s reply to `job.out` as [`Event::Text`]; returns the closing event.
    fn generate(&self, job: &Job) -> impl Future<Output = Result<Event, String>>;
}

/// Runs on the engine thread: `connect`, tell `ready` the outcome, then serve `jobs` until
/// the plugin drops their sender. `name` names the backend in messages.
pub fn run<B, F>(name: &str, connect: F, jobs: Receiver<Job>, ready: Sender<Result<String, String>>)
where
    B: Remote,
    F: Future<Output = Result<B, String>>,
{
    // Jobs arrive on a std channel; a thread of its own waits for them and hands them on.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Job>(16);
    let forward = std::thread::Builder::new()
        .name("vh-llm-jobs".to_owned())
        .spawn(move || {
            for job in jobs {
                if tx.blocking_send(job).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = forward {
        let _ = ready.send(Err(format!("cannot start the {name} job thread: {e}")));
        return;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot start the {name} runtime: {e}")));
            return;
        }
    };
    runtime.block_on(async move {
        let backend = match connect.await {
            Ok(b) => b,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        if ready.send(Ok(backend.describe())).is_err() {
            return;
        }
        while let Some(job) = rx.recv().await {
            if job.out.is_closed() {
                continue;
            }
            let event = if job.prefill_only {
                // The server keeps its own prompt cache; nothing to read ahead here.
                Event::Done {
                    finish: Finish::Prefilled,
                    prompt_tokens: 0,
                    tokens: 0,
                    first_text_ms: 0,
                    trimmed: 0,
                }
            } else {
                backend.generate(&job).await.unwrap_or_else(Event::Failed)
            };
            event.log_if_cancelled();
            let _ = job.out.send(event).await;
        }
    });
}
