//! whisper.cpp's log lines into tracing, as whisper-rs forwards them, except the error a
//! pass that [`Recognizer`](crate::Recognizer) stops on purpose makes whisper.cpp print
//! ("failed to decode"): that one is a DEBUG line, not an ERROR in every user's app.log.

use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};

use whisper_rs::whisper_rs_sys::{
    ggml_log_level, ggml_log_level_GGML_LOG_LEVEL_CONT, ggml_log_level_GGML_LOG_LEVEL_DEBUG,
    ggml_log_level_GGML_LOG_LEVEL_ERROR, ggml_log_level_GGML_LOG_LEVEL_INFO,
    ggml_log_level_GGML_LOG_LEVEL_WARN, whisper_log_set,
};

/// The target whisper-rs logs whisper.cpp's lines under (the plugin runtime counts its
/// INFO lines as DEBUG).
const TARGET: &str = "whisper_rs::whisper_logging_hook";

thread_local! {
    /// The flag of the pass this thread runs that tells it was stopped on purpose.
    static STOPPING: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Routes whisper.cpp's log through [`log`]; whisper-rs's own hook for ggml stays.
pub fn install() {
    static INSTALL: Once = Once::new();
    whisper_rs::install_logging_hooks();
    INSTALL.call_once(|| {
        // SAFETY: `log` is a valid callback for the life of the process and uses no user data.
        unsafe { whisper_log_set(Some(log), std::ptr::null_mut()) }
    });
}

/// Runs `pass` (a `whisper_full` on this thread) with `stopped` telling the log hook that
/// an error from it is the stop the recognizer asked for.
pub fn stopping<T>(stopped: &Arc<AtomicBool>, pass: impl FnOnce() -> T) -> T {
    STOPPING.with(|s| s.replace(Some(Arc::clone(stopped))));
    let out = pass();
    STOPPING.with(|s| s.take());
    out
}

unsafe extern "C" fn log(level: ggml_log_level, text: *const c_char, _: *mut c_void) {
    if text.is_null() {
        return;
    }
    // SAFETY: whisper.cpp passes a NUL-terminated string, valid for the call.
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    let text = text.trim();
    #[allow(non_upper_case_globals)]
    match level {
        ggml_log_level_GGML_LOG_LEVEL_ERROR if stopped_on_purpose() => {
            tracing::debug!(target: TARGET, "{text} (the pass was stopped: it looped)");
        }
        ggml_log_level_GGML_LOG_LEVEL_ERROR => tracing::error!(target: TARGET, "{text}"),
        ggml_log_level_GGML_LOG_LEVEL_WARN => tracing::warn!(target: TARGET, "{text}"),
        ggml_log_level_GGML_LOG_LEVEL_INFO => tracing::info!(target: TARGET, "{text}"),
        ggml_log_level_GGML_LOG_LEVEL_DEBUG => tracing::debug!(target: TARGET, "{text}"),
        ggml_log_level_GGML_LOG_LEVEL_CONT => {}
        _ => tracing::trace!(target: TARGET, "{text}"),
    }
}

fn stopped_on_purpose() -> bool {
    STOPPING.with(|s| {
        s.borrow()
            .as_ref()
            .is_some_and(|stopped| stopped.load(Ordering::Relaxed))
    })
}
