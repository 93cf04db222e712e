//! Re-encoding a GGUF language model to Q8_0 with llama.cpp's own quantizer
//! (`llama_model_quantize`, the function behind llama.cpp's `llama-quantize` tool).
//!
//! Why here and not in the llm plugin: making model files is this crate's job, and the host
//! never depends on a plugin crate (plugins are built against the plugin API and loaded at
//! run time; a helper binary in the plugin crate would have to be built and found beside
//! `voicehost` separately). The cost is one more link of llama.cpp: this crate uses
//! `llama-cpp-sys-2` at exactly the version and features the llm plugin's `llama-cpp-2`
//! pulls in, so cargo builds llama.cpp once for both, and the quantizer is the code whose
//! output the plugin then loads.

use std::ffi::{CStr, CString, c_char, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Mutex;

use llama_cpp_sys_2 as sys;

/// Re-encodes the GGUF model `input` (any tensor types llama.cpp reads, quantized ones
/// included) to Q8_0 in `output`, on `threads` threads (0: every core). The quantizer's
/// scalar reference code converts row by row, so the bytes do not depend on the thread count
/// or the CPU's SIMD features (checked: 1, 2 and 3 threads, repeated runs, on x86-64); a
/// build for another architecture may round differently, which the pinned sha256 reports.
pub fn to_q8_0(input: &Path, output: &Path, threads: usize) -> Result<(), String> {
    let c_path = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| format!("{} contains a NUL byte", p.display()))
    };
    let (input_c, output_c) = (c_path(input)?, c_path(output)?);
    // SAFETY: returns a plain struct by value; its pointer fields are null.
    let mut params = unsafe { sys::llama_model_quantize_default_params() };
    params.nthread = i32::try_from(threads).unwrap_or(0);
    params.ftype = sys::LLAMA_FTYPE_MOSTLY_Q8_0;
    // The input is already quantized (Q4_K/Q5_0/Q6_K): dequantize and encode again.
    params.allow_requantize = true;
    let (status, log) = with_collected_log(|| {
        // SAFETY: both paths are NUL-terminated and outlive the call; `params` is a valid
        // struct from llama_model_quantize_default_params with no pointers set.
        // llama_backend_init only sets up ggml's global tables and may run more than once.
        unsafe {
            sys::llama_backend_init();
            sys::llama_model_quantize(input_c.as_ptr(), output_c.as_ptr(), &params)
        }
    });
    if status == 0 {
        Ok(())
    } else {
        let log = log.trim();
        Err(if log.is_empty() {
            format!("llama.cpp's quantizer failed (status {status})")
        } else {
            format!("llama.cpp's quantizer failed: {log}")
        })
    }
}

/// Serialises the quantizer runs (llama.cpp's logger is process-wide).
static LOGGER: Mutex<()> = Mutex::new(());

/// Runs `f` with llama.cpp's warnings and errors collected instead of printed (it logs a
/// line per tensor otherwise); the previous logger is restored afterwards.
fn with_collected_log<T>(f: impl FnOnce() -> T) -> (T, String) {
    let _guard = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    let log = Mutex::new(Collected::default());
    let mut previous: sys::ggml_log_callback = None;
    let mut previous_data: *mut c_void = std::ptr::null_mut();
    // SAFETY: llama_log_get writes the current callback and its data into the two
    // out-pointers. `log` outlives every call made while `collect` is installed: the
    // previous logger is back in place before it is dropped.
    let value = unsafe {
        sys::llama_log_get(&mut previous, &mut previous_data);
        sys::llama_log_set(Some(collect), (&raw const log).cast_mut().cast());
        let value = f();
        sys::llama_log_set(previous, previous_data);
        value
    };
    let collected = log.into_inner().unwrap_or_else(|e| e.into_inner());
    (value, collected.text)
}

/// What the log callback kept.
#[derive(Debug, Default)]
struct Collected {
    text: String,
    /// Whether the last message was kept (a continuation follows its message).
    keeping: bool,
}

/// llama.cpp log callback: keeps warnings and errors (and their continuation lines).
unsafe extern "C" fn collect(level: sys::ggml_log_level, text: *const c_char, data: *mut c_void) {
    if text.is_null() || data.is_null() {
        return;
    }
    // SAFETY: `data` is the `Mutex<Collected>` that with_collected_log installed and keeps
    // alive for as long as this callback is set.
    let log = unsafe { &*(data as *const Mutex<Collected>) };
    let Ok(mut log) = log.lock() else {
        return;
    };
    log.keeping = match level {
        sys::GGML_LOG_LEVEL_WARN | sys::GGML_LOG_LEVEL_ERROR => true,
        sys::GGML_LOG_LEVEL_CONT => log.keeping,
        _ => false,
    };
    if log.keeping {
        // SAFETY: llama.cpp passes a NUL-terminated string valid for this call.
        let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
        log.text.push_str(&text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_gguf_is_refused_with_llama_cpps_reason() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("not.gguf");
        std::fs::write(&input, b"this is not a model").unwrap();
        let err = to_q8_0(&input, &dir.path().join("out.gguf"), 1).unwrap_err();
        assert!(err.starts_with("llama.cpp's quantizer failed"), "{err}");
        assert!(err.len() > "llama.cpp's quantizer failed: ".len(), "{err}");
    }
}
