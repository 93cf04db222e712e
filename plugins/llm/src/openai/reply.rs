//! One streamed reply as its chunks arrive: text to the client (held back while it could
//! be a stop string), token counts, the finish reason, and the servers' error bodies.

use serde_json::Value;
use tokio::time::Instant;

use crate::engine::{Event, Finish, Job, StopFilter};
use crate::modelfile::Params;

/// What a reply has sent and learnt so far.
pub struct Reply<'a> {
    job: &'a Job,
    started: Instant,
    stops: StopFilter,
    /// Request → first text, ms (0: none yet).
    pub first_text_ms: u64,
    tokens: usize,
    prompt_tokens: usize,
    /// The server reported its own counts (`usage`).
    counted: bool,
    finish: Option<Finish>,
}

impl<'a> Reply<'a> {
    pub fn new(job: &'a Job, started: Instant, params: &Params) -> Reply<'a> {
        Reply {
            job,
            started,
            stops: StopFilter::new(&params.stop),
            first_text_ms: 0,
            tokens: 0,
            prompt_tokens: 0,
            counted: false,
            finish: None,
        }
    }

    /// The client went away.
    pub fn cancelled(&self) -> Event {
        self.event(Finish::Cancelled)
    }

    /// Handles one event's data; the closing event once the reply is over.
    pub async fn on_data(&mut self, data: &str) -> Result<Option<Event>, String> {
        if data.trim() == "[DONE]" {
            let finish = self.finish.unwrap_or(Finish::Stop);
            return Ok(Some(self.done(finish).await));
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|e| format!("an event that is not JSON ({e}): {}", snippet(data)))?;
        if chunk.get("error").is_some() {
            return Err(format!("an error: {}", error_message(data).1));
        }
        let choices = chunk.get("choices").and_then(Value::as_array);
        let usage = chunk.get("usage").filter(|u| u.is_object());
        if choices.is_none() && usage.is_none() {
            return Err(format!(
                "an event that is not a chat completion chunk (no \"choices\"): {}",
                snippet(data)
            ));
        }
        if let Some(usage) = usage {
            self.counted = true;
            self.prompt_tokens = count(&usage["prompt_tokens"]);
            self.tokens = count(&usage["completion_tokens"]);
        }
        let Some(choice) = choices.and_then(|c| c.first()) else {
            return Ok(None);
        };
        if let Some(text) = choice["delta"]["content"]
            .as_str()
            .filter(|t| !t.is_empty())
        {
            self.tokens += usize::from(!self.counted);
            let (text, stop) = self.stops.push(text);
            if !text.is_empty() {
                if self.first_text_ms == 0 {
                    self.first_text_ms = self.started.elapsed().as_millis().max(1) as u64;
                }
                if self.job.out.send(Event::Text(text)).await.is_err() {
                    return Ok(Some(self.cancelled()));
                }
            }
            if stop {
                // Dropping the response stops the server too.
                return Ok(Some(self.done(Finish::Stop).await));
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            self.finish = Some(match reason {
                "length" => Finish::Length,
                _ => Finish::Stop,
            });
        }
        Ok(None)
    }

    /// The body ended without `[DONE]`: fine after a finish reason, else an error.
    pub async fn ended(mut self) -> Result<Event, String> {
        match self.finish {
            Some(finish) => Ok(self.done(finish).await),
            None => Err(
                "ended before the reply finished (no finish_reason, no [DONE]); see the server's \
                 log"
                .to_owned(),
            ),
        }
    }

    /// Sends the text held back, then the closing event.
    async fn done(&mut self, finish: Finish) -> Event {
        let rest = self.stops.finish();
        if !rest.is_empty() && self.job.out.send(Event::Text(rest)).await.is_err() {
            return self.cancelled();
        }
        self.event(finish)
    }

    fn event(&self, finish: Finish) -> Event {
        Event::Done {
            finish,
            prompt_tokens: self.prompt_tokens,
            tokens: self.tokens,
            first_text_ms: self.first_text_ms,
            trimmed: 0,
        }
    }
}

fn count(v: &Value) -> usize {
    v.as_u64().unwrap_or(0) as usize
}

/// The error's type (or code) and message in an error body, as OpenAI, llama.cpp, vLLM
/// and FastAPI servers write them; the body itself when it is none of those.
pub fn error_message(body: &str) -> (String, String) {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return (String::new(), snippet(body));
    };
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let error = match v.get("error") {
        Some(Value::String(s)) => return (String::new(), s.clone()),
        Some(e) if e.is_object() => e,
        _ => &v,
    };
    let kind = [&error["type"], &error["code"]]
        .into_iter()
        .map(text)
        .find(|k| !k.is_empty())
        .unwrap_or_default();
    let message = [&error["message"], &error["detail"]]
        .into_iter()
        .map(text)
        .find(|m| !m.is_empty())
        .unwrap_or_else(|| snippet(body));
    (kind, message)
}

/// The start of `text` on one line, for messages.
pub fn snippet(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return "an empty body".to_owned();
    }
    let mut out: String = text
        .chars()
        .take(300)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > 300 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(content: &str, finish: Option<&str>) -> String {
        serde_json::json!({"choices": [{"delta": {"content": content}, "finish_reason": finish}]})
            .to_string()
    }

    #[tokio::test]
    async fn text_goes_out_held_back_at_a_stop_string_and_counted_by_usage() {
        let (out, mut events) = tokio::sync::mpsc::channel(16);
        let job = Job {
            messages: Vec::new(),
            keep: 0,
            max_tokens: 10,
            prefill_only: false,
            out,
        };
        let params = Params {
            stop: vec!["User:".to_owned()],
            ..Params::default()
        };
        let mut reply = Reply::new(&job, Instant::now(), &params);
        assert_eq!(reply.on_data(&chunk("Hi. Us", None)).await, Ok(None));
        assert_eq!(
            reply.on_data(&chunk("e it", Some("length"))).await,
            Ok(None)
        );
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2}}"#;
        assert_eq!(reply.on_data(usage).await, Ok(None));
        let done = reply.on_data("[DONE]").await.unwrap().unwrap();
        let Event::Done {
            finish,
            prompt_tokens,
            tokens,
            ..
        } = done
        else {
            panic!("{done:?}")
        };
        assert_eq!((finish, prompt_tokens, tokens), (Finish::Length, 9, 2));
        let mut text = String::new();
        while let Ok(Event::Text(t)) = events.try_recv() {
            text.push_str(&t);
        }
        assert_eq!(text, "Hi. Use it");

        let mut reply = Reply::new(&job, Instant::now(), &params);
        let done = reply.on_data(&chunk("Bye. User: more", None)).await;
        assert!(matches!(
            done,
            Ok(Some(Event::Done {
                finish: Finish::Stop,
                ..
            }))
        ));
        assert_eq!(events.try_recv(), Ok(Event::Text("Bye. ".to_owned())));
    }

    #[test]
    fn error_bodies_of_the_usual_servers_are_read() {
        let cases = [
            (
                r#"{"error":{"message":"Invalid API Key","type":"authentication_error","code":401}}"#,
                "authentication_error",
                "Invalid API Key",
            ),
            (
                r#"{"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","code":404}"#,
                "NotFoundError",
                "The model `x` does not exist.",
            ),
            (r#"{"error":"model not found"}"#, "", "model not found"),
            (r#"{"detail":"Not Found"}"#, "", "Not Found"),
            (
                "<html>502 Bad Gateway</html>",
                "",
                "<html>502 Bad Gateway</html>",
            ),
            ("", "", "an empty body"),
        ];
        for (body, kind, message) in cases {
            assert_eq!(
                error_message(body),
                (kind.to_owned(), message.to_owned()),
                "{body}"
            );
        }
    }
}
