//! The transcript: the logger opens it for a new dialog (`NewDialog`); the host writes
//! its `USER:` and `ASSISTANT:` lines (`WriteDialog`).

use std::sync::Mutex;
use std::time::Duration;

use voicehost_proto::logger::v1::{NewDialogRequest, NewDialogResponse, Role, WriteDialogRequest};

use super::session::Dialogs;

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

    /// Writes one transcript line (`USER: …` or `ASSISTANT: …`) through the logger.
    pub(super) async fn write_line(&self, dialog: &str, role: Role, text: &str) {
        let Some(mut logger) = self.logger() else {
            return;
        };
        let write = logger.write_dialog(WriteDialogRequest {
            dialog_id: dialog.to_owned(),
            role: role as i32,
            text: text.trim().to_owned(),
        });
        let failed = match tokio::time::timeout(Duration::from_secs(2), write).await {
            Ok(Ok(_)) => return,
            Ok(Err(s)) => s.message().to_owned(),
            Err(_) => "no answer within 2 s".to_owned(),
        };
        tracing::error!(event = "dialog_log_failed", dialog, role = role.as_str_name(), error = %failed, "Transcript line not written");
    }

    /// The assistant's line: what was relayed to tts, marked when a barge-in cut it.
    pub(super) async fn write_reply(&self, dialog: &str, said: &Mutex<String>, interrupted: bool) {
        let text = said.lock().map(|s| s.trim().to_owned()).unwrap_or_default();
        if text.is_empty() {
            return;
        }
        let line = if interrupted {
            format!("{text} [interrupted]")
        } else {
            text
        };
        self.write_line(dialog, Role::Assistant, &line).await;
    }
}
