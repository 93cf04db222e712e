//! The Wyoming wire format: one event is a JSON header line (`type`, optional `data`,
//! `data_length`, `payload_length`, `version`) ending in `\n`, then `data_length` bytes of
//! JSON merged over the header's `data`, then `payload_length` bytes of payload (PCM).
//!
//! Reading is bounded: a header line, a data segment and a payload each have a limit, so a
//! client cannot make the server buffer more than [`Limits`] allows. A framing error cannot
//! be resynchronised (the next header's start is unknown): the caller answers with an
//! `error` event and closes the connection.

use serde_json::{Map, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol version written in every header (the `wyoming` package's, which readers
/// ignore).
pub const VERSION: &str = "1.10.2";

/// Longest header line: the `wyoming` package's own reader stops at 64 KiB.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// One event: its type, its merged data and its payload.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    pub kind: String,
    pub data: Map<String, Value>,
    pub payload: Vec<u8>,
}

impl Event {
    /// An event of `kind` with `data` (a JSON object; anything else counts as no data).
    pub fn new(kind: &str, data: Value) -> Event {
        Event {
            kind: kind.to_owned(),
            data: match data {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            payload: Vec::new(),
        }
    }

    /// The same event carrying `payload`.
    pub fn with_payload(mut self, payload: Vec<u8>) -> Event {
        self.payload = payload;
        self
    }

    /// `error` with `text` and `code` (what a client shows and matches on).
    pub fn error(code: &str, text: impl Into<String>) -> Event {
        Event::new(
            "error",
            serde_json::json!({ "text": text.into(), "code": code }),
        )
    }

    /// The string at `key` of the data, if it is one.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }

    /// The non-negative integer at `key` of the data, if it is one.
    pub fn uint(&self, key: &str) -> Option<u64> {
        self.data.get(key).and_then(Value::as_u64)
    }
}

/// How much one event may carry.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest header line, newline included.
    pub header_bytes: usize,
    /// Largest data segment and largest payload.
    pub payload_bytes: usize,
}

/// Why the stream cannot be read on: the `error` event's code and text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{text}")]
pub struct FrameError {
    pub code: &'static str,
    pub text: String,
}

fn bad(text: impl Into<String>) -> FrameError {
    FrameError {
        code: "bad-frame",
        text: text.into(),
    }
}

fn too_large(text: impl Into<String>) -> FrameError {
    FrameError {
        code: "too-large",
        text: text.into(),
    }
}

/// Reads the next event; `Ok(None)` at the end of the stream between events.
pub async fn read_event<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    limits: Limits,
) -> Result<Option<Event>, FrameError> {
    let line = loop {
        let mut line = Vec::new();
        let mut limited = (&mut *reader).take(limits.header_bytes as u64 + 1);
        let n = limited
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| bad(format!("cannot read the header: {e}")))?;
        if n == 0 {
            return Ok(None);
        }
        if line.last() != Some(&b'\n') {
            if line.len() > limits.header_bytes {
                return Err(too_large(format!(
                    "header line longer than {} bytes; put large data in the data segment \
                     (data_length)",
                    limits.header_bytes
                )));
            }
            return Err(bad("the stream ended inside a header line"));
        }
        // Blank lines between events carry nothing.
        if line.iter().any(|b| !b.is_ascii_whitespace()) {
            break line;
        }
    };
    let header: Value = serde_json::from_slice(&line)
        .map_err(|e| bad(format!("the header line is not JSON: {e}")))?;
    let Value::Object(mut header) = header else {
        return Err(bad("the header line is not a JSON object"));
    };
    let kind = match header.remove("type") {
        Some(Value::String(kind)) if !kind.is_empty() => kind,
        Some(other) => {
            return Err(bad(format!(
                "\"type\" must be a non-empty string, not {other}"
            )));
        }
        None => return Err(bad("the header has no \"type\"")),
    };
    let mut data = match header.remove("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(bad(format!(
                "\"data\" of {kind} must be an object, not {other}"
            )));
        }
    };
    let data_length = length(&header, "data_length", &kind, limits)?;
    let payload_length = length(&header, "payload_length", &kind, limits)?;
    if data_length > 0 {
        let mut segment = vec![0; data_length];
        reader
            .read_exact(&mut segment)
            .await
            .map_err(|e| bad(format!("{kind}: data_length {data_length}, but {e}")))?;
        match serde_json::from_slice::<Value>(&segment) {
            Ok(Value::Object(extra)) => data.extend(extra),
            Ok(other) => {
                return Err(bad(format!(
                    "{kind}: the data segment must be an object, not {other}"
                )));
            }
            Err(e) => return Err(bad(format!("{kind}: the data segment is not JSON: {e}"))),
        }
    }
    let mut payload = vec![0; payload_length];
    if payload_length > 0 {
        reader
            .read_exact(&mut payload)
            .await
            .map_err(|e| bad(format!("{kind}: payload_length {payload_length}, but {e}")))?;
    }
    Ok(Some(Event {
        kind,
        data,
        payload,
    }))
}

/// `data_length` or `payload_length` of a header: absent or null is 0, anything but a
/// non-negative integer up to the limit is an error.
fn length(
    header: &Map<String, Value>,
    key: &str,
    kind: &str,
    limits: Limits,
) -> Result<usize, FrameError> {
    let n = match header.get(key) {
        None | Some(Value::Null) => return Ok(0),
        Some(value) => value.as_u64().ok_or_else(|| {
            bad(format!(
                "{kind}: {key} must be a non-negative integer, not {value}"
            ))
        })?,
    };
    if n > limits.payload_bytes as u64 {
        return Err(too_large(format!(
            "{kind}: {key} {n} is over the limit of {} bytes ([wyoming] max_payload_bytes)",
            limits.payload_bytes
        )));
    }
    Ok(n as usize)
}

/// Writes `event` as the `wyoming` package does: a small header line, the data as a
/// separate segment, then the payload.
pub async fn write_event<W: AsyncWrite + Unpin>(
    writer: &mut W,
    event: &Event,
) -> std::io::Result<()> {
    let bytes = encode(event)?;
    writer.write_all(&bytes).await?;
    writer.flush().await
}

/// The bytes of `event` on the wire.
pub fn encode(event: &Event) -> std::io::Result<Vec<u8>> {
    let data = if event.data.is_empty() {
        Vec::new()
    } else {
        serde_json::to_vec(&event.data)?
    };
    let mut header = Map::new();
    header.insert("type".into(), Value::String(event.kind.clone()));
    header.insert("version".into(), Value::String(VERSION.into()));
    if !data.is_empty() {
        header.insert("data_length".into(), data.len().into());
    }
    if !event.payload.is_empty() {
        header.insert("payload_length".into(), event.payload.len().into());
    }
    let mut bytes = serde_json::to_vec(&header)?;
    bytes.push(b'\n');
    bytes.extend_from_slice(&data);
    bytes.extend_from_slice(&event.payload);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        header_bytes: 256,
        payload_bytes: 64,
    };

    async fn read_all(bytes: &[u8]) -> Vec<Result<Option<Event>, FrameError>> {
        let mut reader = tokio::io::BufReader::new(bytes);
        let mut out = Vec::new();
        loop {
            let r = read_event(&mut reader, LIMITS).await;
            let end = !matches!(r, Ok(Some(_)));
            out.push(r);
            if end {
                return out;
            }
        }
    }

    #[tokio::test]
    async fn data_inline_or_separate_is_merged_and_the_payload_read() {
        let wire = b"{\"type\":\"audio-chunk\",\"data\":{\"rate\":16000,\"width\":1},\"data_length\":24,\"payload_length\":4}\n{\"width\":2,\"channels\":1}\x01\x02\x03\x04\n\n{\"type\":\"audio-stop\"}\n";
        let got = read_all(wire).await;
        let chunk = got[0].clone().unwrap().unwrap();
        assert_eq!(chunk.kind, "audio-chunk");
        assert_eq!(chunk.uint("rate"), Some(16000));
        assert_eq!(chunk.uint("width"), Some(2), "the data segment wins");
        assert_eq!(chunk.uint("channels"), Some(1));
        assert_eq!(chunk.payload, [1, 2, 3, 4]);
        assert_eq!(got[1].clone().unwrap().unwrap().kind, "audio-stop");
        assert_eq!(got[2], Ok(None));
    }

    #[tokio::test]
    async fn what_we_write_reads_back() {
        let event = Event::new("transcript", serde_json::json!({"text": "ask not"}))
            .with_payload(vec![9; 10]);
        let bytes = encode(&event).unwrap();
        let header_end = bytes.iter().position(|b| *b == b'\n').unwrap();
        let header: Value = serde_json::from_slice(&bytes[..header_end]).unwrap();
        assert!(header.get("data").is_none(), "data goes in its own segment");
        assert_eq!(header["version"], VERSION);
        assert_eq!(read_all(&bytes).await[0], Ok(Some(event)));
    }

    #[tokio::test]
    async fn bad_frames_are_named() {
        for (wire, code, says) in [
            (&b"not json\n"[..], "bad-frame", "not JSON"),
            (b"[1,2]\n", "bad-frame", "not a JSON object"),
            (b"{\"data\":{}}\n", "bad-frame", "no \"type\""),
            (b"{\"type\":5}\n", "bad-frame", "\"type\" must be"),
            (
                b"{\"type\":\"x\",\"data\":3}\n",
                "bad-frame",
                "\"data\" of x",
            ),
            (
                b"{\"type\":\"x\",\"data_length\":-1}\n",
                "bad-frame",
                "data_length must be",
            ),
            (
                b"{\"type\":\"x\",\"payload_length\":\"4\"}\n",
                "bad-frame",
                "payload_length must be",
            ),
            (
                b"{\"type\":\"x\",\"payload_length\":65}\n",
                "too-large",
                "max_payload_bytes",
            ),
            (
                b"{\"type\":\"x\",\"data_length\":10}\n{\"a\":1}",
                "bad-frame",
                "data_length 10",
            ),
            (
                b"{\"type\":\"x\",\"data_length\":3}\n[1]",
                "bad-frame",
                "must be an object",
            ),
            (
                b"{\"type\":\"x\",\"payload_length\":8}\n1234",
                "bad-frame",
                "payload_length 8",
            ),
            (b"{\"type\":\"x\"", "bad-frame", "ended inside a header"),
        ] {
            let got = read_all(wire).await;
            let err = got.last().unwrap().clone().unwrap_err();
            assert_eq!(err.code, code, "{err}");
            assert!(
                err.text.contains(says),
                "{:?}: {err}",
                String::from_utf8_lossy(wire)
            );
        }
        let long = format!(
            "{{\"type\":\"x\",\"data\":{{\"a\":\"{}\"}}}}\n",
            "y".repeat(300)
        );
        let err = read_all(long.as_bytes()).await.pop().unwrap().unwrap_err();
        assert_eq!(err.code, "too-large");
        assert!(err.text.contains("header line longer than 256"), "{err}");
    }
}
