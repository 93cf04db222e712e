//! The TensorFlow Lite C library, loaded at run time, and a streaming model on it.
//!
//! microWakeWord's models keep their streaming state in resource variables inside the
//! interpreter, and `TfLiteInterpreterResetVariableTensors` leaves those alone: forgetting
//! the state means a new interpreter on the same model (about 0.2 ms).

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::fmt;
use std::marker::{PhantomData, PhantomPinned};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

/// Opaque C types: never built or read on this side.
macro_rules! opaque {
    ($($name:ident),*) => {$(
        #[repr(C)]
        struct $name {
            _data: [u8; 0],
            _marker: PhantomData<(*mut u8, PhantomPinned)>,
        }
    )*};
}
opaque!(
    TfLiteModel,
    TfLiteInterpreterOptions,
    TfLiteInterpreter,
    TfLiteTensor
);

/// `TfLiteStatus`: 0 is `kTfLiteOk`.
type Status = c_int;
const OK: Status = 0;
/// `TfLiteType` values this module accepts for quantised tensors.
const UINT8: c_int = 3;
const INT8: c_int = 9;

/// `TfLiteQuantizationParams`, returned by value.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct QuantizationParams {
    scale: f32,
    zero_point: i32,
}

/// Declares the C functions: the struct of pointers and its loader, one symbol each.
macro_rules! api {
    ($($name:ident: fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
        #[allow(non_snake_case)]
        struct Api {
            $($name: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)*
        }

        impl Api {
            /// Looks up every function in `lib`; `Err` names the first one missing.
            fn resolve(lib: &libloading::Library) -> Result<Api, String> {
                Ok(Api {$(
                    // SAFETY: the type is the function's C signature (TFLite's c_api.h);
                    // the pointer is used only while `lib`, held beside it, stays loaded.
                    $name: *unsafe { lib.get(concat!(stringify!($name), "\0").as_bytes()) }
                        .map_err(|e| format!("no {}: {e}", stringify!($name)))?,
                )*})
            }
        }
    };
}

api! {
    TfLiteVersion: fn() -> *const c_char;
    TfLiteModelCreateFromFile: fn(*const c_char) -> *mut TfLiteModel;
    TfLiteModelDelete: fn(*mut TfLiteModel);
    TfLiteInterpreterOptionsCreate: fn() -> *mut TfLiteInterpreterOptions;
    TfLiteInterpreterOptionsSetNumThreads: fn(*mut TfLiteInterpreterOptions, i32);
    TfLiteInterpreterOptionsDelete: fn(*mut TfLiteInterpreterOptions);
    TfLiteInterpreterCreate:
        fn(*const TfLiteModel, *const TfLiteInterpreterOptions) -> *mut TfLiteInterpreter;
    TfLiteInterpreterDelete: fn(*mut TfLiteInterpreter);
    TfLiteInterpreterAllocateTensors: fn(*mut TfLiteInterpreter) -> Status;
    TfLiteInterpreterGetInputTensorCount: fn(*const TfLiteInterpreter) -> i32;
    TfLiteInterpreterGetInputTensor: fn(*const TfLiteInterpreter, i32) -> *mut TfLiteTensor;
    TfLiteInterpreterGetOutputTensorCount: fn(*const TfLiteInterpreter) -> i32;
    TfLiteInterpreterGetOutputTensor:
        fn(*const TfLiteInterpreter, i32) -> *const TfLiteTensor;
    TfLiteInterpreterInvoke: fn(*mut TfLiteInterpreter) -> Status;
    TfLiteTensorType: fn(*const TfLiteTensor) -> c_int;
    TfLiteTensorNumDims: fn(*const TfLiteTensor) -> i32;
    TfLiteTensorDim: fn(*const TfLiteTensor, i32) -> i32;
    TfLiteTensorByteSize: fn(*const TfLiteTensor) -> usize;
    TfLiteTensorQuantizationParams: fn(*const TfLiteTensor) -> QuantizationParams;
    TfLiteTensorCopyFromBuffer: fn(*mut TfLiteTensor, *const c_void, usize) -> Status;
    TfLiteTensorCopyToBuffer: fn(*const TfLiteTensor, *mut c_void, usize) -> Status;
}

/// The TFLite C library, loaded once and shared.
pub struct Library {
    api: Api,
    version: String,
    path: PathBuf,
    // Last: the function pointers in `api` point into it.
    _lib: libloading::Library,
}

impl Library {
    /// Loads the library at `path` (`libtensorflowlite_c.so`) and looks up its functions.
    pub fn load(path: &Path) -> Result<Arc<Library>, String> {
        let shown = path.display();
        if !path.is_file() {
            return Err(format!(
                "the TensorFlow Lite C library {shown} is missing: `voicehost models fetch` \
                 downloads it with the microwakeword models"
            ));
        }
        // SAFETY: loading runs the library's initialisers, so `path` must be a library the
        // user trusts (as every library voicehost loads); one that is not TFLite fails below.
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| format!("cannot load {shown} as a shared library: {e}"))?;
        let api = Api::resolve(&lib).map_err(|e| {
            format!(
                "{shown} is not the TensorFlow Lite C library ({e}); point to the \
                 libtensorflowlite_c.so that `voicehost models fetch` puts in models/microwakeword"
            )
        })?;
        // SAFETY: `TfLiteVersion` takes nothing and returns a static NUL-terminated string.
        let version = unsafe { CStr::from_ptr((api.TfLiteVersion)()) }
            .to_string_lossy()
            .into_owned();
        Ok(Arc::new(Library {
            api,
            version,
            path: path.to_owned(),
            _lib: lib,
        }))
    }

    /// TFLite's version, e.g. "2.17.1".
    pub fn version(&self) -> String {
        self.version.clone()
    }
}

impl fmt::Debug for Library {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Library")
            .field("path", &self.path)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A loaded model file; deleted on drop.
#[derive(Debug)]
struct Model {
    raw: NonNull<TfLiteModel>,
    lib: Arc<Library>,
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `TfLiteModelCreateFromFile` and is deleted once, here.
        unsafe { (self.lib.api.TfLiteModelDelete)(self.raw.as_ptr()) }
    }
}

/// An interpreter with its tensors allocated; deleted on drop.
#[derive(Debug)]
struct Interpreter {
    raw: NonNull<TfLiteInterpreter>,
    input: NonNull<TfLiteTensor>,
    output: NonNull<TfLiteTensor>,
    lib: Arc<Library>,
}

impl Interpreter {
    /// One thread, tensors allocated, the first input and output looked up.
    fn new(model: &Model, path: &Path) -> Result<Interpreter, String> {
        let api = &model.lib.api;
        // SAFETY: plain constructor; NULL is checked.
        let options = unsafe { (api.TfLiteInterpreterOptionsCreate)() };
        if options.is_null() {
            return Err("TfLiteInterpreterOptionsCreate failed (out of memory?)".to_owned());
        }
        // SAFETY: `options` is live; the interpreter keeps its own copy of the options,
        // so they are deleted right after, and `model.raw` is a live model.
        let raw = unsafe {
            (api.TfLiteInterpreterOptionsSetNumThreads)(options, 1);
            let raw = (api.TfLiteInterpreterCreate)(model.raw.as_ptr(), options);
            (api.TfLiteInterpreterOptionsDelete)(options);
            raw
        };
        let raw = NonNull::new(raw).ok_or_else(|| {
            format!(
                "TensorFlow Lite {} cannot build an interpreter for {} (its log on stderr says \
                 why)",
                model.lib.version,
                path.display()
            )
        })?;
        let mut interpreter = Interpreter {
            raw,
            input: NonNull::dangling(),
            output: NonNull::dangling(),
            lib: model.lib.clone(),
        };
        // SAFETY: `raw` is a live interpreter; tensor pointers are fetched after allocation,
        // which is the last call that may move them (nothing here resizes inputs), and index
        // 0 is valid once each count is checked to be 1.
        unsafe {
            if (api.TfLiteInterpreterAllocateTensors)(raw.as_ptr()) != OK {
                return Err(format!(
                    "TensorFlow Lite {} cannot allocate the tensors of {} (its log on stderr says \
                     why); is it a microWakeWord model?",
                    model.lib.version,
                    path.display()
                ));
            }
            let inputs = (api.TfLiteInterpreterGetInputTensorCount)(raw.as_ptr());
            let outputs = (api.TfLiteInterpreterGetOutputTensorCount)(raw.as_ptr());
            if inputs != 1 || outputs != 1 {
                return Err(format!(
                    "{} has {inputs} input and {outputs} output tensors, not one each: it is not \
                     a microWakeWord streaming model",
                    path.display()
                ));
            }
            let input = (api.TfLiteInterpreterGetInputTensor)(raw.as_ptr(), 0);
            let output = (api.TfLiteInterpreterGetOutputTensor)(raw.as_ptr(), 0);
            interpreter.input = NonNull::new(input).ok_or("TFLite returned no input tensor")?;
            interpreter.output =
                NonNull::new(output.cast_mut()).ok_or("TFLite returned no output tensor")?;
        }
        Ok(interpreter)
    }

    /// The input tensor's description, or the output's.
    fn describe(&self, output: bool) -> TensorInfo {
        let api = &self.lib.api;
        let t = if output { self.output } else { self.input }.as_ptr();
        // SAFETY: `t` belongs to this live interpreter; these calls only read it.
        unsafe {
            TensorInfo {
                ty: (api.TfLiteTensorType)(t),
                quant: (api.TfLiteTensorQuantizationParams)(t),
                bytes: (api.TfLiteTensorByteSize)(t),
                dims: (0..(api.TfLiteTensorNumDims)(t))
                    .map(|i| (api.TfLiteTensorDim)(t, i))
                    .collect(),
            }
        }
    }
}

impl Drop for Interpreter {
    fn drop(&mut self) {
        // SAFETY: `raw` came from `TfLiteInterpreterCreate` and is deleted once, here; its
        // tensor pointers die with it and are not used after.
        unsafe { (self.lib.api.TfLiteInterpreterDelete)(self.raw.as_ptr()) }
    }
}

/// A tensor as the C API describes it.
#[derive(Debug)]
struct TensorInfo {
    ty: c_int,
    quant: QuantizationParams,
    bytes: usize,
    dims: Vec<i32>,
}

impl TensorInfo {
    /// Quantised int8 or uint8, one byte per element.
    fn is_quantised_byte(&self) -> bool {
        let elements: i64 = self.dims.iter().map(|&d| i64::from(d)).product();
        (self.ty == INT8 || self.ty == UINT8)
            && self.quant.scale.is_finite()
            && self.quant.scale > 0.0
            && i64::try_from(self.bytes) == Ok(elements)
    }
}

/// One streaming model with its interpreter (its state); Send.
#[derive(Debug)]
pub struct StreamingModel {
    // Field order is drop order: the interpreter before the model it runs (kept for
    // `reset`); each holds the library, which outlives both.
    interpreter: Interpreter,
    model: Model,
    input: TensorInfo,
    output: TensorInfo,
    /// The quantised input, reused by every invoke.
    quantised: Vec<u8>,
    path: PathBuf,
}

// SAFETY: the interpreter and model belong to this value alone and are used only through
// `&mut self`. TFLite objects are not tied to a thread, they only must not be used by two at
// once, which `&mut self` rules out.
unsafe impl Send for StreamingModel {}

impl StreamingModel {
    /// Loads `model` (one quantised int8/uint8 input [1, frames, features], one quantised
    /// output with one value), one thread.
    pub fn load(lib: &Arc<Library>, model: &Path) -> Result<StreamingModel, String> {
        let shown = model.display();
        if !model.is_file() {
            return Err(format!(
                "the microWakeWord model {shown} is missing: `voicehost models fetch` downloads \
                 the microwakeword models"
            ));
        }
        let c_path = model
            .to_str()
            .and_then(|s| CString::new(s).ok())
            .ok_or_else(|| format!("{shown}: TensorFlow Lite needs a UTF-8 path without NUL"))?;
        // SAFETY: `c_path` is a NUL-terminated string that outlives the call. The model maps
        // the file itself and keeps the mapping until `TfLiteModelDelete`.
        let raw = unsafe { (lib.api.TfLiteModelCreateFromFile)(c_path.as_ptr()) };
        let raw = NonNull::new(raw).ok_or_else(|| {
            format!("{shown} is not a TensorFlow Lite model (its flatbuffer does not verify)")
        })?;
        let loaded = Model {
            raw,
            lib: lib.clone(),
        };
        let interpreter = Interpreter::new(&loaded, model)?;
        let (input, output) = (interpreter.describe(false), interpreter.describe(true));
        let len = match (&input.dims[..], &output.dims[..]) {
            (&[1, frames, features], out)
                if frames > 0
                    && features > 0
                    && out.iter().product::<i32>() == 1
                    && input.is_quantised_byte()
                    && output.is_quantised_byte() =>
            {
                frames as usize * features as usize
            }
            _ => {
                return Err(format!(
                    "{shown} is not a microWakeWord streaming model: its input is {input:?} and \
                     its output {output:?}, where one quantised int8 or uint8 (TfLiteType 9 or \
                     3) input [1, frames, features] and one output value were expected"
                ));
            }
        };
        Ok(StreamingModel {
            interpreter,
            model: loaded,
            input,
            output,
            quantised: vec![0; len],
            path: model.to_owned(),
        })
    }

    /// Feature frames per invoke: input dimension 1.
    pub fn frames(&self) -> usize {
        self.input.dims[1] as usize
    }

    /// Features per frame: input dimension 2.
    pub fn features(&self) -> usize {
        self.input.dims[2] as usize
    }

    /// Quantises `input` (frames × features floats, row-major), runs the model, returns the
    /// dequantised output (a probability 0..1).
    pub fn invoke(&mut self, input: &[f32]) -> Result<f32, String> {
        if input.len() != self.quantised.len() {
            return Err(format!(
                "{} takes {} × {} = {} features per invoke, not {}",
                self.path.display(),
                self.frames(),
                self.features(),
                self.quantised.len(),
                input.len()
            ));
        }
        // As microWakeWord's Python does: q = round(x / scale + zero point) in f64, ties to
        // even, here saturated to the type's range.
        let q = self.input.quant;
        let (scale, zero) = (f64::from(q.scale), f64::from(q.zero_point));
        let signed = self.input.ty == INT8;
        for (byte, &x) in self.quantised.iter_mut().zip(input) {
            let v = (f64::from(x) / scale + zero).round_ties_even();
            *byte = if signed { (v as i8) as u8 } else { v as u8 };
        }
        let api = &self.interpreter.lib.api;
        let mut out = 0u8;
        // SAFETY: the interpreter and its tensors are live and used by this thread alone
        // (`&mut self`); both buffers are valid for the byte counts given, which `load`
        // checked against the tensors.
        let status = unsafe {
            let (it, q) = (&self.interpreter, &self.quantised);
            let mut s =
                (api.TfLiteTensorCopyFromBuffer)(it.input.as_ptr(), q.as_ptr().cast(), q.len());
            if s == OK {
                s = (api.TfLiteInterpreterInvoke)(it.raw.as_ptr());
            }
            if s == OK {
                s = (api.TfLiteTensorCopyToBuffer)(it.output.as_ptr(), (&raw mut out).cast(), 1);
            }
            s
        };
        if status != OK {
            return Err(format!(
                "TensorFlow Lite failed to run {} (status {status}; its log on stderr says why)",
                self.path.display()
            ));
        }
        let value = if self.output.ty == INT8 {
            f32::from(out as i8)
        } else {
            f32::from(out)
        };
        let q = self.output.quant;
        Ok((value - q.zero_point as f32) * q.scale)
    }

    /// Forgets the streaming state (a new interpreter on the same model).
    pub fn reset(&mut self) -> Result<(), String> {
        // The same model gives the same tensors, so `input` and `output` still hold; on
        // failure the old interpreter stays.
        self.interpreter = Interpreter::new(&self.model, &self.path)?;
        Ok(())
    }
}
