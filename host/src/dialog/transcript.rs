//! The transcript: the logger opens it for a new dialog (`NewDialog`); the host writes
//! its `USER:` and `ASSISTANT:` lines (`WriteDialog`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tonic::transport::Channel;
use voicehost_proto::logger::v1::logger_service_client::LoggerServiceClient;
use voicehost_proto::logger::v1::{NewDialogRequest, NewDialogResponse, Role, WriteDialogRequest};

use crate::host::Host;
use crate::service::Service;

use super::session::Dialogs;

/// What the dialog loop hands the transcript writer.
#[derive(Debug)]
pub(super) enum Entry {
    /// A line to write.
    Line(WriteDialogRequest),
    /// Answered once the lines before it are written.
    Flush(oneshot::Sender<()>),
}

/// Writes the dialogs' transcript lines through the logger, in the order they were
/// queued, off the dialog loop: a line never delays the reply it precedes.
pub(super) async fn write_transcript(host: Arc<Host>, mut entries: mpsc::UnboundedReceiver<Entry>) {
    while let Some(entry) = entries.recv().await {
        let line = match entry {
            Entry::Line(line) => line,
            Entry::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        let Ok(channel) = host.channel(Service::Logger) else {
            continue;
        };
        let (dialog, role) = (line.dialog_id.clone(), line.role);
        let write = async move {
            LoggerServiceClient::<Channel>::new(channel)
                .write_dialog(line)
                .await
        };
        let failed = match tokio::time::timeout(Duration::from_secs(2), write).await {
            Ok(Ok(_)) => continue,
            Ok(Err(s)) => s.message().to_owned(),
            Err(_) => "no answer within 2 s".to_owned(),
        };
        let role = Role::try_from(role).map_or("?", |r| r.as_str_name());
        tracing::error!(event = "dialog_log_failed", dialog, role, error = %failed, "Transcript line not written");
    }
}

impl Dialogs {
    /// logger `NewDialog`: the new dialog's id and its transcript's path; `None` (logged)
    /// when the logger cannot open one.
    pub(super) async fn new_dialog(&self) -> Option<NewDialogResponse> {
        let mut logger = self.logger()?;
        logger
            .new_dialog(NewDialogRequest {})
            .await
            .map_err(|s| tracing::error!(event = "dialog_log_failed", error = %s.message(), "NewDialog failed"))
            .ok()
            .map(|r| r.into_inner())
    }

    /// Queues one transcript line (`USER: …` or `ASSISTANT: …`) for the transcript writer
    /// ([`write_transcript`]): the reply does not wait for the logger.
    pub(super) fn write_line(&self, dialog: &str, role: Role, text: &str) {
        let _ = self.transcript.send(Entry::Line(WriteDialogRequest {
            dialog_id: dialog.to_owned(),
            role: role as i32,
            text: text.trim().to_owned(),
        }));
    }

    /// Waits until the lines queued so far are written (or failed, logged).
    pub(super) async fn transcript_written(&self) {
        let (done, written) = oneshot::channel();
        if self.transcript.send(Entry::Flush(done)).is_ok() {
            let _ = written.await;
        }
    }

    /// The assistant's line: what was relayed to tts, marked when a barge-in cut it.
    pub(super) fn write_reply(&self, dialog: &str, said: &Mutex<String>, interrupted: bool) {
        let text = said.lock().map(|s| s.trim().to_owned()).unwrap_or_default();
        if text.is_empty() {
            return;
        }
        let line = if interrupted {
            format!("{text} [interrupted]")
        } else {
            text
        };
        self.write_line(dialog, Role::Assistant, &line);
    }
}
