//! Requests → validated lines. Every check names the value and what is allowed.

use std::time::{Duration, UNIX_EPOCH};

use voicehost_proto::logger::v1::{Level, Role, WriteAppRequest, WriteDialogRequest};

use crate::files::is_dialog_id;

/// Why a request was refused; becomes `INVALID_ARGUMENT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

const MAX_FIELDS: usize = 64;
const MAX_FIELD_VALUE_BYTES: usize = 16 * 1024;

fn name_ok(s: &str, max: usize, extra: &[char]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(&c))
}

/// Validates a `WriteApp` request and renders its JSON line.
pub fn app_line(req: &WriteAppRequest, now_us: i64) -> Result<String, Invalid> {
    if !name_ok(&req.svc, 32, &['_', '-']) {
        return Err(Invalid(format!(
            "svc {:?} is invalid: use 1-32 characters of a-z, 0-9, _ and -",
            req.svc
        )));
    }
    if !name_ok(&req.event.to_ascii_lowercase(), 64, &['_', '-', '.']) {
        return Err(Invalid(format!(
            "event {:?} is invalid: use 1-64 characters of letters, digits, _ - and .; put free text in a field",
            req.event
        )));
    }
    let level = Level::try_from(req.level).map_err(|_| {
        Invalid(format!(
            "level {} is not a Level value (0-5); use e.g. LEVEL_INFO",
            req.level
        ))
    })?;
    if req.fields.len() > MAX_FIELDS {
        return Err(Invalid(format!(
            "{} fields is too many; at most {MAX_FIELDS}",
            req.fields.len()
        )));
    }
    let mut fields: Vec<(&String, &String)> = req.fields.iter().collect();
    fields.sort();
    let mut json_fields = serde_json::Map::new();
    for (key, value) in fields {
        if !name_ok(&key.to_ascii_lowercase(), 64, &['_', '-', '.']) {
            return Err(Invalid(format!(
                "field key {key:?} is invalid: use 1-64 characters of letters, digits, _ - and ."
            )));
        }
        if value.len() > MAX_FIELD_VALUE_BYTES {
            return Err(Invalid(format!(
                "field {key:?} is {} bytes; at most {MAX_FIELD_VALUE_BYTES}",
                value.len()
            )));
        }
        json_fields.insert(key.clone(), serde_json::Value::String(value.clone()));
    }
    if req.ts_unix_us < 0 {
        return Err(Invalid(format!(
            "ts_unix_us {} is negative; use microseconds since the Unix epoch or 0 for now",
            req.ts_unix_us
        )));
    }
    let ts_us = if req.ts_unix_us == 0 {
        now_us
    } else {
        req.ts_unix_us
    };
    let ts = humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_micros(ts_us as u64));
    let level = match level {
        Level::Unspecified | Level::Info => "INFO",
        Level::Trace => "TRACE",
        Level::Debug => "DEBUG",
        Level::Warn => "WARN",
        Level::Error => "ERROR",
    };
    let line = serde_json::json!({
        "ts": ts.to_string(),
        "svc": req.svc,
        "level": level,
        "event": req.event,
        "fields": json_fields,
    });
    Ok(line.to_string())
}

/// Validates a `WriteDialog` request and renders its transcript line.
pub fn dialog_line(req: &WriteDialogRequest, max_text_bytes: usize) -> Result<String, Invalid> {
    if !is_dialog_id(&req.dialog_id) {
        return Err(Invalid(format!(
            "dialog_id {:?} is malformed: expected the 16 hex digits NewDialog returned",
            truncate(&req.dialog_id, 40)
        )));
    }
    let role = match Role::try_from(req.role) {
        Ok(Role::User) => "USER",
        Ok(Role::Assistant) => "ASSISTANT",
        _ => {
            return Err(Invalid(format!(
                "role {} is invalid: use ROLE_USER (1) or ROLE_ASSISTANT (2)",
                req.role
            )));
        }
    };
    if req.text.trim().is_empty() {
        return Err(Invalid(
            "text is empty; send the words that were said".to_owned(),
        ));
    }
    if req.text.len() > max_text_bytes {
        return Err(Invalid(format!(
            "text is {} bytes; at most {max_text_bytes} ([logger] max_text_bytes)",
            req.text.len()
        )));
    }
    Ok(format!("{role}: {}", escape(&req.text)))
}

/// One message per line: backslash, newlines and other control characters are escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(svc: &str, event: &str) -> WriteAppRequest {
        WriteAppRequest {
            svc: svc.into(),
            level: Level::Warn as i32,
            event: event.into(),
            fields: [("port".to_owned(), "5001".to_owned())].into(),
            ts_unix_us: 1_700_000_000_000_000,
        }
    }

    #[test]
    fn app_line_is_json_with_all_parts() {
        let line = app_line(&app("host", "plugin_started"), 0).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["svc"], "host");
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["event"], "plugin_started");
        assert_eq!(v["fields"]["port"], "5001");
        assert_eq!(v["ts"], "2023-11-14T22:13:20.000000Z");
    }

    #[test]
    fn app_line_refuses_bad_names() {
        assert!(app_line(&app("", "x"), 0).is_err());
        assert!(app_line(&app("Host!", "x"), 0).is_err());
        assert!(app_line(&app("host", "has space"), 0).is_err());
        let mut req = app("host", "x");
        req.level = 42;
        assert!(app_line(&req, 0).unwrap_err().0.contains("level 42"));
    }

    #[test]
    fn dialog_line_checks_and_escapes() {
        let req = |id: &str, role: Role, text: &str| WriteDialogRequest {
            dialog_id: id.into(),
            role: role as i32,
            text: text.into(),
        };
        let id = "0123456789abcdef";
        assert_eq!(
            dialog_line(&req(id, Role::User, "two\nlines \\ ok"), 100).unwrap(),
            "USER: two\\nlines \\\\ ok"
        );
        assert!(dialog_line(&req("../etc", Role::User, "x"), 100).is_err());
        assert!(dialog_line(&req(id, Role::Unspecified, "x"), 100).is_err());
        assert!(dialog_line(&req(id, Role::User, "  "), 100).is_err());
        let err = dialog_line(&req(id, Role::User, &"a".repeat(101)), 100).unwrap_err();
        assert!(err.0.contains("101 bytes"), "{err}");
    }
}
