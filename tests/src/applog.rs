//! Reading what the host writes: a log file as text, waited on until it holds a needle,
//! and app.log's JSON lines as [`AppLine`] events.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

/// Reads a whole file (empty if absent).
pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// Waits until the file at `path` contains `needle` (at most `timeout`); returns the text.
pub fn wait_for_text(path: &Path, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} has no {needle:?} after {timeout:?}:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The events of an app.log: (event name, svc, fields, timestamp as RFC 3339 text).
pub fn app_events(path: &Path) -> Vec<AppLine> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| AppLine {
            ts: v["ts"].as_str().unwrap_or_default().to_owned(),
            svc: v["svc"].as_str().unwrap_or_default().to_owned(),
            level: v["level"].as_str().unwrap_or_default().to_owned(),
            event: v["event"].as_str().unwrap_or_default().to_owned(),
            fields: v["fields"].clone(),
        })
        .collect()
}

/// The app.log events once every name in `needed` is among them (app.log is written
/// asynchronously by the logger; at most `timeout`).
pub fn wait_app_events(path: &Path, needed: &[&str], timeout: Duration) -> Vec<AppLine> {
    let deadline = Instant::now() + timeout;
    loop {
        let events = app_events(path);
        let missing: Vec<&&str> = needed
            .iter()
            .filter(|n| !events.iter().any(|e| e.event == **n))
            .collect();
        if missing.is_empty() {
            return events;
        }
        assert!(
            Instant::now() < deadline,
            "{} has no {missing:?} after {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One app.log line.
#[derive(Debug, Clone)]
pub struct AppLine {
    pub ts: String,
    pub svc: String,
    pub level: String,
    pub event: String,
    pub fields: serde_json::Value,
}

impl AppLine {
    /// A field as text ("" if absent).
    pub fn field(&self, key: &str) -> &str {
        self.fields[key].as_str().unwrap_or_default()
    }
}
