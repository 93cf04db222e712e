//! The host side of app.log.
//!
//! Host `tracing` events and plugin log records (arriving through the ABI log sink) become
//! [`AppEvent`]s. Each is printed to stderr and queued for the logger plugin, which writes
//! it to `logs/app.log` via `WriteApp`. Events raised before the logger serves are buffered
//! (bounded) and flushed once it does.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot, watch};
use tonic::transport::Channel;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};
use voicehost_plugin_api::abi::{LogLevel, LogRecord, LogSink};
use voicehost_proto::logger::v1::logger_service_client::LoggerServiceClient;
use voicehost_proto::logger::v1::{Level, WriteAppRequest};

/// Most events held while the logger is not reachable; older ones are dropped first.
const BUFFER_LIMIT: usize = 10_000;

/// One structured app.log event.
#[derive(Debug, Clone)]
pub struct AppEvent {
    pub ts_unix_us: i64,
    pub svc: String,
    pub level: LogLevel,
    pub event: String,
    pub fields: Vec<(String, String)>,
}

impl fmt::Display for AppEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ts = UNIX_EPOCH + Duration::from_micros(self.ts_unix_us.max(0) as u64);
        write!(
            f,
            "{} {:5} {} {}",
            humantime::format_rfc3339_millis(ts),
            level_name(self.level),
            self.svc,
            self.event
        )?;
        for (k, v) in &self.fields {
            if v.contains(' ') || v.is_empty() {
                write!(f, " {k}={v:?}")?;
            } else {
                write!(f, " {k}={v}")?;
            }
        }
        Ok(())
    }
}

enum Msg {
    Event(AppEvent),
    Flush(oneshot::Sender<()>),
}

struct AppLog {
    tx: mpsc::Sender<Msg>,
    console: LogLevel,
}

static APP_LOG: OnceLock<AppLog> = OnceLock::new();

/// Where queued events go: set to the logger's client once it serves, `None` while it
/// does not.
pub type LoggerTarget = watch::Sender<Option<LoggerServiceClient<Channel>>>;

/// Installs the host's `tracing` subscriber and starts the forwarding task on the current
/// runtime. Call once, inside the host runtime. Returns the handle to point forwarding at
/// the logger.
pub fn init(console: LogLevel) -> LoggerTarget {
    let (tx, rx) = mpsc::channel(4096);
    let (target_tx, target_rx) = watch::channel(None);
    if APP_LOG.set(AppLog { tx, console }).is_ok() {
        let _ =
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(HostLayer));
        tokio::spawn(forward(rx, target_rx));
    }
    target_tx
}

/// Records one event: prints it and queues it for app.log.
pub fn submit(event: AppEvent) {
    let Some(log) = APP_LOG.get() else {
        eprintln!("{event}");
        return;
    };
    if event.level >= log.console {
        let _ = writeln!(std::io::stderr().lock(), "{event}");
    }
    // Full queue: the event is on the console; app.log misses it rather than blocking.
    let _ = log.tx.try_send(Msg::Event(event));
}

/// Waits until everything submitted so far was handed to the logger (or `timeout`).
pub async fn flush(timeout: Duration) {
    let Some(log) = APP_LOG.get() else { return };
    let (done_tx, done_rx) = oneshot::channel();
    if log.tx.send(Msg::Flush(done_tx)).await.is_ok() {
        let _ = tokio::time::timeout(timeout, done_rx).await;
    }
}

pub use voicehost_plugin_runtime::now_us;

async fn forward(
    mut rx: mpsc::Receiver<Msg>,
    mut target: watch::Receiver<Option<LoggerServiceClient<Channel>>>,
) {
    let mut pending: VecDeque<AppEvent> = VecDeque::new();
    let mut waiting_flush: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                None => return,
                Some(Msg::Event(event)) => {
                    if pending.len() >= BUFFER_LIMIT {
                        pending.pop_front();
                    }
                    pending.push_back(event);
                }
                Some(Msg::Flush(done)) => waiting_flush.push(done),
            },
            changed = target.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
        let client = target.borrow().clone();
        if let Some(mut client) = client {
            while let Some(event) = pending.front() {
                if client.write_app(to_request(event)).await.is_err() {
                    // Logger unreachable: keep the event and retry on the next wake-up.
                    break;
                }
                pending.pop_front();
            }
        }
        if pending.is_empty() || target.borrow().is_none() {
            for done in waiting_flush.drain(..) {
                let _ = done.send(());
            }
        }
    }
}

fn to_request(event: &AppEvent) -> WriteAppRequest {
    WriteAppRequest {
        svc: event.svc.clone(),
        level: match event.level {
            LogLevel::Trace => Level::Trace,
            LogLevel::Debug => Level::Debug,
            LogLevel::Info => Level::Info,
            LogLevel::Warn => Level::Warn,
            LogLevel::Error => Level::Error,
        } as i32,
        event: event.event.clone(),
        fields: event.fields.iter().cloned().collect(),
        ts_unix_us: event.ts_unix_us,
    }
}

fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Trace => "TRACE",
        LogLevel::Debug => "DEBUG",
        LogLevel::Info => "INFO",
        LogLevel::Warn => "WARN",
        LogLevel::Error => "ERROR",
    }
}

/// Event name from a log message: short messages of words become snake_case
/// (`"Plugin started"` → `plugin_started`); anything else is `log` with the text in `msg`.
pub fn event_name(message: &str, fields: &mut Vec<(String, String)>) -> String {
    let simple = !message.is_empty()
        && message.len() <= 64
        && message
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-' || c == '_');
    if simple {
        message
            .split([' ', '-'])
            .filter(|w| !w.is_empty())
            .map(str::to_ascii_lowercase)
            .collect::<Vec<_>>()
            .join("_")
    } else {
        fields.push(("msg".to_owned(), message.to_owned()));
        "log".to_owned()
    }
}

/// The ABI log sink handed to plugins.
pub const PLUGIN_LOG_SINK: LogSink = LogSink(plugin_log);

extern "C" fn plugin_log(record: LogRecord<'_>) {
    // Never let a panic unwind into the plugin.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let mut fields: Vec<(String, String)> = record
            .fields
            .iter()
            .map(|kv| (kv.0.to_string(), kv.1.to_string()))
            .collect();
        let event = match fields.iter().position(|(k, _)| k == "event") {
            Some(i) => fields.remove(i).1,
            None => event_name(record.message.as_str(), &mut fields),
        };
        submit(AppEvent {
            ts_unix_us: now_us(),
            svc: record.service.to_string(),
            level: record.level,
            event,
            fields,
        });
    }));
}

/// Host `tracing` events → [`submit`], as service `host`.
struct HostLayer;

/// Host dependencies that only reach app.log at WARN and above.
const QUIET: &[&str] = &["h2", "hyper", "tower", "tonic", "mio", "want", "abi_stable"];

impl<S: Subscriber> Layer<S> for HostLayer {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        let quiet = QUIET.iter().any(|q| meta.target().starts_with(q));
        let min = if quiet {
            tracing::Level::WARN
        } else {
            tracing::Level::DEBUG
        };
        *meta.level() <= min
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut visitor = Fields::default();
        event.record(&mut visitor);
        let mut fields = visitor.pairs;
        let name = match fields.iter().position(|(k, _)| k == "event") {
            Some(i) => fields.remove(i).1,
            None => event_name(&visitor.message, &mut fields),
        };
        submit(AppEvent {
            ts_unix_us: now_us(),
            svc: "host".to_owned(),
            level: match *event.metadata().level() {
                tracing::Level::TRACE => LogLevel::Trace,
                tracing::Level::DEBUG => LogLevel::Debug,
                tracing::Level::INFO => LogLevel::Info,
                tracing::Level::WARN => LogLevel::Warn,
                tracing::Level::ERROR => LogLevel::Error,
            },
            event: name,
            fields,
        });
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.pairs.push((field.name().to_owned(), value.to_owned()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.pairs
                .push((field.name().to_owned(), format!("{value:?}")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_from_messages() {
        let mut fields = Vec::new();
        assert_eq!(event_name("Plugin started", &mut fields), "plugin_started");
        assert!(fields.is_empty());
        assert_eq!(event_name("Loaded: 3 files (ok)", &mut fields), "log");
        assert_eq!(
            fields,
            vec![("msg".to_owned(), "Loaded: 3 files (ok)".to_owned())]
        );
    }
}
