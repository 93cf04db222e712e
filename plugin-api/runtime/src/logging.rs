//! Forwards the plugin's `tracing` events to the host's log sink.
//!
//! A plugin library has its own copy of `tracing`'s globals, so the host's subscriber never
//! sees the plugin's events. [`install`] sets a subscriber in the plugin's copy that hands
//! every event to the host callback from [`voicehost_plugin_api::abi::HostCallbacks`].

use std::fmt::{self, Write as _};
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Once, RwLock};

use abi_stable::std_types::{RSlice, RStr, Tuple2};
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use voicehost_plugin_api::abi::{LogLevel, LogRecord, LogSink};

/// Minimum level a plugin forwards, from its `log_level` config key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "trace" => Ok(Self::Trace),
            "debug" => Ok(Self::Debug),
            "info" => Ok(Self::Info),
            "warn" => Ok(Self::Warn),
            "error" => Ok(Self::Error),
            _ => Err("expected one of trace, debug, info, warn, error".to_owned()),
        }
    }
}

impl Level {
    fn of(level: &tracing::Level) -> Self {
        match *level {
            tracing::Level::TRACE => Self::Trace,
            tracing::Level::DEBUG => Self::Debug,
            tracing::Level::INFO => Self::Info,
            tracing::Level::WARN => Self::Warn,
            tracing::Level::ERROR => Self::Error,
        }
    }

    fn abi(self) -> LogLevel {
        match self {
            Self::Trace => LogLevel::Trace,
            Self::Debug => LogLevel::Debug,
            Self::Info => LogLevel::Info,
            Self::Warn => LogLevel::Warn,
            Self::Error => LogLevel::Error,
        }
    }
}

struct Sink {
    log: LogSink,
    service: String,
}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);
static MIN_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static INSTALL: Once = Once::new();

/// Routes this library's `tracing` events to `log`, tagged with `service`. Calling it again
/// (a restart of the same library) replaces the sink and level.
pub fn install(log: LogSink, service: &str, level: Level) {
    if let Ok(mut sink) = SINK.write() {
        *sink = Some(Sink {
            log,
            service: service.to_owned(),
        });
    }
    MIN_LEVEL.store(level as u8, Ordering::Relaxed);
    INSTALL.call_once(|| {
        // Fails only if something else in this library set a subscriber first; then that
        // one keeps working and we have nothing better to do.
        let _ = tracing::subscriber::set_global_default(Registry::default().with(HostLayer));
    });
}

/// Dependencies whose chatter is only forwarded at WARN and above.
const QUIET_TARGETS: &[&str] = &["h2", "hyper", "tower", "tonic", "mio", "want"];

/// Bridges of native model libraries (llama.cpp, whisper.cpp and their ggml): their INFO
/// lines describe every tensor and kernel at each start, so they count as DEBUG here.
const NATIVE_TARGETS: &[&str] = &["llama-cpp-2", "whisper_rs"];

fn from(target: &str, crates: &[&str]) -> bool {
    crates.iter().any(|c| {
        target
            .strip_prefix(c)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

struct HostLayer;

impl HostLayer {
    /// The level an event is forwarded at.
    fn level(metadata: &Metadata<'_>) -> Level {
        let level = Level::of(metadata.level());
        if level == Level::Info && from(metadata.target(), NATIVE_TARGETS) {
            Level::Debug
        } else {
            level
        }
    }

    fn wants(metadata: &Metadata<'_>) -> bool {
        let level = Self::level(metadata);
        if from(metadata.target(), QUIET_TARGETS) {
            return level >= Level::Warn;
        }
        level as u8 >= MIN_LEVEL.load(Ordering::Relaxed)
    }
}

impl<S: Subscriber> Layer<S> for HostLayer {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The level can change on restart, so decide per event.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        Self::wants(metadata)
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let Ok(guard) = SINK.read() else { return };
        let Some(sink) = guard.as_ref() else { return };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let pairs: Vec<Tuple2<RStr<'_>, RStr<'_>>> = fields
            .pairs
            .iter()
            .map(|(k, v)| Tuple2(RStr::from(*k), RStr::from(v.as_str())))
            .collect();
        let meta = event.metadata();
        (sink.log.0)(LogRecord {
            level: Self::level(meta).abi(),
            service: RStr::from(sink.service.as_str()),
            target: RStr::from(meta.target()),
            message: RStr::from(fields.message.as_str()),
            fields: RSlice::from_slice(&pairs),
        });
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.pairs.push((field.name(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.pairs.push((field.name(), format!("{value:?}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_match_whole_crate_names() {
        assert!(from("llama-cpp-2", NATIVE_TARGETS));
        assert!(from("whisper_rs::whisper_logging_hook", NATIVE_TARGETS));
        assert!(!from("whisper_rsx", NATIVE_TARGETS));
        assert!(from("h2::codec", QUIET_TARGETS));
        assert!(!from("h2o", QUIET_TARGETS));
    }
}
