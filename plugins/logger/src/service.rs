//! The tonic implementation of `voicehost.logger.v1.LoggerService`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tonic::{Request, Response, Status};
use voicehost_plugin_runtime::now_us;
use voicehost_proto::logger::v1::logger_service_server::LoggerService;
use voicehost_proto::logger::v1::{
    NewDialogRequest, NewDialogResponse, WriteAppRequest, WriteAppResponse, WriteDialogRequest,
    WriteDialogResponse,
};

use crate::config::Settings;
use crate::convert::{self, Invalid};
use crate::files::{AppLog, Dialogs};

/// Everything that can fail in a logger RPC.
#[derive(Debug, thiserror::Error)]
pub enum LoggerError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("unknown dialog_id {0:?}: call NewDialog first and use the id it returns")]
    UnknownDialog(String),
    #[error("log files are not available: {0}")]
    Unavailable(String),
    #[error("cannot write {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl From<LoggerError> for Status {
    fn from(e: LoggerError) -> Self {
        match e {
            LoggerError::Invalid(_) | LoggerError::UnknownDialog(_) => {
                Status::invalid_argument(e.to_string())
            }
            LoggerError::Unavailable(_) => Status::unavailable(e.to_string()),
            LoggerError::Io { .. } => Status::internal(e.to_string()),
        }
    }
}

#[derive(Debug)]
struct Files {
    app: AppLog,
    dialogs: Dialogs,
}

#[derive(Debug, Clone)]
pub struct LoggerSvc {
    files: Arc<Mutex<Result<Files, String>>>,
    log_dir: PathBuf,
    max_text_bytes: usize,
}

impl LoggerSvc {
    /// Opens app.log (reset) in `log_dir`. A failure is kept and reported by
    /// [`Self::open_error`] and by every RPC.
    pub fn open(log_dir: &Path, settings: &Settings) -> Self {
        let files = AppLog::open(
            log_dir,
            &settings.app_log,
            settings.app_log_max_bytes,
            settings.app_log_keep,
        )
        .map(|app| Files {
            app,
            dialogs: Dialogs::new(log_dir),
        })
        .map_err(|e| {
            format!(
                "cannot open {}: {e}; make the directory writable or change [system] log_dir",
                log_dir.join(&settings.app_log).display()
            )
        });
        Self {
            files: Arc::new(Mutex::new(files)),
            log_dir: log_dir.to_owned(),
            max_text_bytes: settings.max_text_bytes,
        }
    }

    pub fn open_error(&self) -> Option<String> {
        match &*self.lock() {
            Ok(_) => None,
            Err(e) => Some(e.clone()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Result<Files, String>> {
        // A poisoned lock only means a panic mid-write; the files are still usable.
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_files<T>(
        &self,
        f: impl FnOnce(&mut Files) -> Result<T, LoggerError>,
    ) -> Result<T, LoggerError> {
        match &mut *self.lock() {
            Ok(files) => f(files),
            Err(e) => Err(LoggerError::Unavailable(e.clone())),
        }
    }
}

#[tonic::async_trait]
impl LoggerService for LoggerSvc {
    async fn write_app(
        &self,
        req: Request<WriteAppRequest>,
    ) -> Result<Response<WriteAppResponse>, Status> {
        let line = convert::app_line(req.get_ref(), now_us()).map_err(LoggerError::from)?;
        self.with_files(|files| {
            files
                .app
                .write_line(&line)
                .map_err(|error| LoggerError::Io {
                    path: files.app.path().to_owned(),
                    error,
                })
        })?;
        Ok(Response::new(WriteAppResponse {}))
    }

    async fn new_dialog(
        &self,
        _: Request<NewDialogRequest>,
    ) -> Result<Response<NewDialogResponse>, Status> {
        let (dialog_id, path) = self.with_files(|files| {
            files.dialogs.create().map_err(|error| LoggerError::Io {
                path: self.log_dir.clone(),
                error,
            })
        })?;
        tracing::info!(dialog_id = %dialog_id, path = %path.display(), "Dialog opened");
        Ok(Response::new(NewDialogResponse {
            dialog_id,
            path: path.display().to_string(),
        }))
    }

    async fn write_dialog(
        &self,
        req: Request<WriteDialogRequest>,
    ) -> Result<Response<WriteDialogResponse>, Status> {
        let req = req.get_ref();
        let line = convert::dialog_line(req, self.max_text_bytes).map_err(LoggerError::from)?;
        self.with_files(|files| match files.dialogs.append(&req.dialog_id, &line) {
            Ok(true) => Ok(()),
            Ok(false) => Err(LoggerError::UnknownDialog(req.dialog_id.clone())),
            Err(error) => Err(LoggerError::Io {
                path: self.log_dir.clone(),
                error,
            }),
        })?;
        Ok(Response::new(WriteDialogResponse {}))
    }
}
