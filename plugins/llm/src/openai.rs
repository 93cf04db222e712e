//! The OpenAI-compatible bridge: any server with a streaming `POST {url}/chat/completions`
//! (llama.cpp's `llama-server`, vLLM, LM Studio, Ollama's `/v1`, a hosted API).
//!
//! At start the server's model list (`GET {url}/models`) must hold the model (an empty
//! `openai_model` takes the one model listed); a server without a list is asked directly
//! and the warm-up names what is wrong. Each reply is one request with `"stream": true`,
//! read as server-sent events ([`crate::sse`]) however the HTTP reads split them. When the
//! gRPC client goes away the request is dropped at once, which closes the connection and
//! stops the server's generation; a reply that stalls past `openai_first_token_timeout_ms`
//! is given up. The API key goes out as `Authorization: Bearer` and is never logged.
//! Sampling: the Modelfile's `temperature`, `top_p`, `seed`, `num_predict` and `stop` (the
//! server gets the first four stop strings; all of them are applied here too); the context
//! and the other parameters are the server's own.

use std::sync::mpsc::{Receiver, Sender};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use tokio::time::Instant;
use tokio_stream::StreamExt;

use crate::config::ApiKey;
use crate::engine::{Event, Job};
use crate::modelfile::Params;
use crate::remote::Remote;
use crate::sse::{Sse, SseDecoder};

mod reply;

use reply::{Reply, error_message, snippet};

#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    /// The API base, e.g. `http://127.0.0.1:8080/v1`, without a trailing `/`.
    pub url: String,
    /// Empty: the one model the server lists.
    pub model: String,
    pub api_key: Option<ApiKey>,
    /// The variable the key came from, for messages.
    pub api_key_env: String,
    pub connect_timeout: Duration,
    pub first_token_timeout: Duration,
    pub params: Params,
}

/// Checks the server and the model, then serves `jobs`. `ready` gets the outcome first.
pub fn run(settings: OpenAiSettings, jobs: Receiver<Job>, ready: Sender<Result<String, String>>) {
    crate::remote::run("OpenAI-compatible", Bridge::connect(settings), jobs, ready);
}

struct Bridge {
    http: reqwest::Client,
    settings: OpenAiSettings,
}

/// What went wrong with a request: `Rejected` is the request's fault (too long for the
/// server's context), `Failed` the server's or the configuration's.
enum Refusal {
    Rejected(String),
    Failed(String),
}

impl Bridge {
    async fn connect(mut settings: OpenAiSettings) -> Result<Bridge, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        let mut bridge = Bridge {
            http,
            settings: settings.clone(),
        };
        match bridge.models().await? {
            Some(models) => settings.model = bridge.choose(&models)?,
            None if settings.model.is_empty() => {
                return Err(format!(
                    "the server at {} lists no models (GET /models); set [llm] openai_model to \
                     the model to ask for",
                    settings.url
                ));
            }
            None => {}
        }
        bridge.settings = settings;
        Ok(bridge)
    }

    /// The model ids (and aliases) the server lists; `None` when it has no list.
    async fn models(&self) -> Result<Option<Vec<String>>, String> {
        let url = &self.settings.url;
        let deadline = Instant::now() + self.settings.first_token_timeout;
        let response = loop {
            let mut request = self.http.get(format!("{url}/models"));
            if let Some(key) = &self.settings.api_key {
                request = request.bearer_auth(key.expose());
            }
            let response = tokio::time::timeout_at(deadline, request.send())
                .await
                .map_err(|_| self.timed_out("model list"))?
                .map_err(|e| self.unreachable(&e))?;
            // 503: still loading its model (llama-server); ask again.
            if response.status() != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
                break response;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let status = response.status();
        let body = body_text(response, deadline).await;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(self.key_refused(status, &body));
        }
        if !status.is_success() {
            return Ok(None);
        }
        let list: serde_json::Value = serde_json::from_str(&body).map_err(|_| {
            format!(
                "the server at {url} answered GET /models with something that is not a model \
                 list ({}); is [llm] openai_url the API base (often ending in /v1)?",
                snippet(&body)
            )
        })?;
        let entries = list["data"].as_array().cloned().unwrap_or_default();
        let mut names = Vec::new();
        for entry in &entries {
            let aliases = entry["aliases"].as_array().into_iter().flatten();
            for name in std::iter::once(&entry["id"]).chain(aliases) {
                if let Some(name) = name.as_str().filter(|n| !names.iter().any(|k| k == n)) {
                    names.push(name.to_owned());
                }
            }
        }
        Ok(Some(names))
    }

    fn choose(&self, models: &[String]) -> Result<String, String> {
        let (url, wanted) = (&self.settings.url, &self.settings.model);
        let listed = if models.is_empty() {
            "none".to_owned()
        } else {
            models.join(", ")
        };
        if wanted.is_empty() {
            return match models {
                [only] => Ok(only.clone()),
                _ => Err(format!(
                    "the server at {url} serves {} models ({listed}); set [llm] openai_model to \
                     one of them",
                    models.len()
                )),
            };
        }
        if models.iter().any(|m| m == wanted) {
            Ok(wanted.clone())
        } else {
            Err(format!(
                "the server at {url} has no model {wanted:?} (it has: {listed}); set [llm] \
                 openai_model to one of them, or load {wanted:?} into the server"
            ))
        }
    }

    fn body(&self, job: &Job) -> serde_json::Value {
        let p = &self.settings.params;
        let messages: Vec<serde_json::Value> = job
            .messages
            .iter()
            .map(|m| serde_json::json!({"role": m.role, "content": m.text}))
            .collect();
        let mut body = serde_json::json!({
            "model": self.settings.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": job.max_tokens,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "seed": p.seed,
        });
        let stops: Vec<&String> = p.stop.iter().filter(|s| !s.is_empty()).take(4).collect();
        if !stops.is_empty() {
            body["stop"] = serde_json::json!(stops);
        }
        body
    }

    /// Sends `job`'s request; the streaming response, or why there is none.
    async fn send(&self, job: &Job, deadline: Instant) -> Result<reqwest::Response, Refusal> {
        let url = &self.settings.url;
        let mut request = self
            .http
            .post(format!("{url}/chat/completions"))
            .header(ACCEPT, "text/event-stream")
            .json(&self.body(job));
        if let Some(key) = &self.settings.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response = tokio::time::timeout_at(deadline, request.send())
            .await
            .map_err(|_| Refusal::Failed(self.timed_out("first token")))?
            .map_err(|e| Refusal::Failed(self.unreachable(&e)))?;
        let status = response.status();
        if !status.is_success() {
            let body = body_text(response, deadline).await;
            return Err(self.refused(status, &body));
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned();
        if !content_type.starts_with("text/event-stream") {
            let body = body_text(response, deadline).await;
            return Err(Refusal::Failed(format!(
                "the server at {url} answered with {content_type}, not a stream of server-sent \
                 events ({}); it must support \"stream\": true on /chat/completions — check \
                 [llm] openai_url points at an OpenAI-compatible API",
                snippet(&body)
            )));
        }
        Ok(response)
    }

    fn refused(&self, status: StatusCode, body: &str) -> Refusal {
        let (url, model) = (&self.settings.url, &self.settings.model);
        let (kind, message) = error_message(body);
        let said = format!("{status}: {message}");
        let about_model = message.to_lowercase().contains("model");
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Refusal::Failed(self.key_refused(status, body))
            }
            _ if kind.contains("context") || message.contains("context size") => {
                Refusal::Rejected(format!(
                    "the conversation is too long for the server's context ({said}); start a \
                     new dialog (turn 1) or give the server a larger context"
                ))
            }
            StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST if about_model => {
                Refusal::Failed(format!(
                    "the server at {url} refused the model {model:?} ({said}); set [llm] \
                     openai_model to a model it serves"
                ))
            }
            StatusCode::NOT_FOUND => Refusal::Failed(format!(
                "the server at {url} has no /chat/completions ({said}); set [llm] openai_url to \
                 the API base (often ending in /v1)"
            )),
            _ => Refusal::Failed(format!("the server at {url} refused the request ({said})")),
        }
    }

    fn key_refused(&self, status: StatusCode, body: &str) -> String {
        let url = &self.settings.url;
        let said = format!("{status}: {}", error_message(body).1);
        match self.settings.api_key {
            Some(_) => format!(
                "the server at {url} refused the API key in ${} ({said}); put a valid key in \
                 that variable",
                self.settings.api_key_env
            ),
            None => format!(
                "the server at {url} wants an API key ({said}); set [llm] openai_api_key_env to \
                 the name of an environment variable that holds it"
            ),
        }
    }

    fn unreachable(&self, e: &reqwest::Error) -> String {
        let url = &self.settings.url;
        let (mut cause, mut innermost) = (e.to_string(), e.to_string());
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            cause = format!("{cause}: {s}");
            innermost = s.to_string();
            source = s.source();
        }
        if e.is_connect() {
            let cause = innermost;
            format!(
                "no server answers at {url} ({cause}); start it (llama.cpp: `llama-server -m \
                 MODEL.gguf --port 8080`) or set [llm] openai_url"
            )
        } else {
            format!("the server at {url} failed the request ({cause})")
        }
    }

    fn timed_out(&self, what: &str) -> String {
        format!(
            "the server at {} sent no {what} within {} s; it may be busy or too slow for the \
             model: raise [llm] openai_first_token_timeout_ms or use a smaller model",
            self.settings.url,
            self.settings.first_token_timeout.as_secs()
        )
    }
}

impl Remote for Bridge {
    fn describe(&self) -> String {
        format!(
            "{} at {} (OpenAI-compatible)",
            self.settings.model, self.settings.url
        )
    }

    async fn generate(&self, job: &Job) -> Result<Event, String> {
        let started = Instant::now();
        let mut deadline = started + self.settings.first_token_timeout;
        let mut reply = Reply::new(job, started, &self.settings.params);
        let response = tokio::select! {
            // The client went away while the request waits: dropping it closes the connection.
            () = job.out.closed() => return Ok(reply.cancelled()),
            r = self.send(job, deadline) => r,
        };
        let response = match response {
            Ok(r) => r,
            Err(Refusal::Rejected(why)) => return Ok(Event::Rejected(why)),
            Err(Refusal::Failed(why)) => return Err(why),
        };
        let url = &self.settings.url;
        let mut sse = SseDecoder::default();
        let mut bytes = response.bytes_stream();
        loop {
            let next = tokio::select! {
                () = job.out.closed() => return Ok(reply.cancelled()),
                next = tokio::time::timeout_at(deadline, bytes.next()) => next,
            };
            let (events, ended) = match next {
                Err(_) if reply.first_text_ms == 0 => return Err(self.timed_out("first token")),
                Err(_) => return Err(self.timed_out("next token")),
                Ok(Some(Err(e))) => return Err(format!("the stream from {url} broke: {e}")),
                Ok(Some(Ok(chunk))) => (sse.push(&chunk), false),
                Ok(None) => (sse.finish(), true),
            };
            let events = events.map_err(|e| format!("the server at {url} sent {e}"))?;
            if reply.first_text_ms > 0 {
                deadline = Instant::now() + self.settings.first_token_timeout;
            }
            for event in events {
                let data = match event {
                    Sse::Data(data) => data,
                    Sse::Error(e) => {
                        return Err(format!(
                            "the server at {url} reported an error mid-reply: {}",
                            error_message(&e).1
                        ));
                    }
                };
                if let Some(done) = reply
                    .on_data(&data)
                    .await
                    .map_err(|e| format!("the server at {url} sent {e}"))?
                {
                    return Ok(done);
                }
            }
            if ended {
                return reply
                    .ended()
                    .await
                    .map_err(|e| format!("the stream from {url} {e}"));
            }
        }
    }
}

/// The start of a body that is not a stream (an error, a whole reply), for messages: at most
/// 64 KiB, read until `deadline`.
async fn body_text(response: reqwest::Response, deadline: Instant) -> String {
    const LIMIT: usize = 64 * 1024;
    let mut body = Vec::new();
    let mut bytes = response.bytes_stream();
    while body.len() < LIMIT {
        match tokio::time::timeout_at(deadline, bytes.next()).await {
            Ok(Some(Ok(chunk))) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(LIMIT);
    String::from_utf8_lossy(&body).into_owned()
}
