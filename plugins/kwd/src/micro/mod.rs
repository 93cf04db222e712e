//! microWakeWord (Apache-2.0): its streaming TensorFlow Lite models on the TFLite Micro
//! audio frontend's features, computed here.

pub mod engine;
mod fft;
pub mod frontend;
pub mod tflite;
