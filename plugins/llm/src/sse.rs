//! Server-sent events (the `text/event-stream` format of the WHATWG HTML standard) read
//! from HTTP bodies that may split anywhere: inside a line, between `\r` and `\n`, inside
//! a UTF-8 character.
//!
//! Lines end with `\n`, `\r\n` or `\r`; `data:` lines accumulate until a blank line
//! dispatches the event; `:` lines are comments; `id:` and `retry:` are ignored. llama.cpp's
//! server reports a failure mid-stream as an `error:` line, and a server may name an event
//! `error`: both come out as [`Sse::Error`]. A line that is not `field: value` (a JSON
//! body, an HTML page) is an error, not an ignored field.

/// Longest line accepted: a misbehaving server cannot make the buffer grow without end.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sse {
    /// The event's data (its `data:` lines joined with `\n`).
    Data(String),
    /// An `error:` line, or the data of an event named `error`.
    Error(String),
}

/// Turns body bytes into events.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buffer: Vec<u8>,
    /// A `\r` ended the last line: a `\n` that follows belongs to it.
    after_cr: bool,
    /// The `data:` lines of the event being read.
    data: Option<Vec<String>>,
    event: String,
}

impl SseDecoder {
    /// Adds `bytes`; returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Sse>, String> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut start = 0;
        while start < self.buffer.len() {
            if self.after_cr && self.buffer[start] == b'\n' {
                start += 1;
                self.after_cr = false;
                continue;
            }
            self.after_cr = false;
            let Some(end) = self.buffer[start..]
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
            else {
                break;
            };
            let end = start + end;
            self.after_cr = self.buffer[end] == b'\r';
            let line = std::str::from_utf8(&self.buffer[start..end])
                .map_err(|_| "a server-sent event line that is not UTF-8".to_owned())?
                .to_owned();
            self.line(&line, &mut events)?;
            start = end + 1;
        }
        self.buffer.drain(..start);
        if self.buffer.len() > MAX_LINE_BYTES {
            return Err(format!(
                "a server-sent event line longer than {MAX_LINE_BYTES} bytes"
            ));
        }
        Ok(events)
    }

    /// At the end of the body: a last line without its line end, and an event without its
    /// blank line, still count.
    pub fn finish(&mut self) -> Result<Vec<Sse>, String> {
        let mut events = Vec::new();
        if !self.buffer.is_empty() {
            let rest = std::mem::take(&mut self.buffer);
            let line = std::str::from_utf8(&rest)
                .map_err(|_| "a server-sent event line that is not UTF-8".to_owned())?;
            self.line(line, &mut events)?;
        }
        self.line("", &mut events)?;
        Ok(events)
    }

    fn line(&mut self, line: &str, events: &mut Vec<Sse>) -> Result<(), String> {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            if let Some(lines) = self.data.take() {
                let data = lines.join("\n");
                events.push(if event == "error" {
                    Sse::Error(data)
                } else {
                    Sse::Data(data)
                });
            }
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => self
                .data
                .get_or_insert_with(Vec::new)
                .push(value.to_owned()),
            "event" => self.event = value.to_owned(),
            "error" => events.push(Sse::Error(value.to_owned())),
            "id" | "retry" => {}
            other
                if !other.is_empty()
                    && other
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') => {}
            _ => {
                let shown: String = line.chars().take(120).collect();
                return Err(format!(
                    "a line that is not a server-sent event (`data: …`): {shown:?}"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two events (one with a "é" and CRLF line ends), a comment, `[DONE]`.
    const STREAM: &str = ": keep-alive\r\n\
        data: {\"choices\":[{\"delta\":{\"content\":\"caf\\u00e9 é\"}}]}\r\n\r\n\
        event: message\n\
        data: {\"a\":\n\
        data: 1}\n\n\
        data:[DONE]\n\n";

    fn expected() -> Vec<Sse> {
        vec![
            Sse::Data(r#"{"choices":[{"delta":{"content":"caf\u00e9 é"}}]}"#.to_owned()),
            Sse::Data("{\"a\":\n1}".to_owned()),
            Sse::Data("[DONE]".to_owned()),
        ]
    }

    fn decode(pieces: &[&[u8]]) -> Vec<Sse> {
        let mut d = SseDecoder::default();
        let mut events = Vec::new();
        for p in pieces {
            events.extend(d.push(p).unwrap());
        }
        events.extend(d.finish().unwrap());
        events
    }

    #[test]
    fn events_split_anywhere_across_reads_are_joined() {
        let bytes = STREAM.as_bytes();
        // Every cut into two pieces: inside a line, between \r and \n, inside "é".
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(decode(&[a, b]), expected(), "cut at {cut}");
        }
        // One byte per read.
        let bytes: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode(&bytes), expected());
    }

    #[test]
    fn line_ends_may_be_lf_crlf_or_cr_and_the_last_may_be_missing() {
        assert_eq!(
            decode(&[b"data: a\rdata: b\r\rdata: c\r\n\r\ndata: d"]),
            vec![
                Sse::Data("a\nb".to_owned()),
                Sse::Data("c".to_owned()),
                Sse::Data("d".to_owned()),
            ]
        );
    }

    #[test]
    fn error_lines_and_error_events_are_errors() {
        assert_eq!(
            decode(&[b"error: {\"message\":\"boom\"}\n\nevent: error\ndata: bad\n\n"]),
            vec![
                Sse::Error("{\"message\":\"boom\"}".to_owned()),
                Sse::Error("bad".to_owned()),
            ]
        );
    }

    #[test]
    fn a_json_body_or_an_html_page_is_not_an_event_stream() {
        for body in [
            &b"{\"choices\":[{\"message\":{\"content\":\"Hi\"}}]}\n"[..],
            b"<html><body>Not found</body></html>\n",
        ] {
            let err = SseDecoder::default().push(body).unwrap_err();
            assert!(err.contains("not a server-sent event"), "{err}");
        }
        let mut d = SseDecoder::default();
        assert!(d.push(b"data: \xff\xfe\n\n").unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn an_endless_line_is_refused() {
        let mut d = SseDecoder::default();
        let err = d.push(&vec![b'a'; MAX_LINE_BYTES + 1]).unwrap_err();
        assert!(err.contains("longer than"), "{err}");
    }
}
