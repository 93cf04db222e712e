//! The Ollama bridge: a local Ollama server's chat API (`POST /api/chat`, NDJSON stream).
//!
//! `ollama-rs` supplies the protocol types and the model list. The stream is read here, on
//! a byte buffer: a JSON line or a UTF-8 character split across HTTP chunks is joined,
//! and an `{"error": …}` line ends the reply with that error (ollama-rs 0.3.6's own
//! stream reader drops both). `keep_alive` keeps the model loaded between turns.

use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use ollama_rs::Ollama;
use ollama_rs::generation::chat::request::ChatMessageRequest;
use ollama_rs::generation::chat::{ChatMessage, ChatMessageResponse};
use ollama_rs::generation::parameters::{KeepAlive, TimeUnit};
use ollama_rs::models::ModelOptions;
use tokio_stream::StreamExt;

use crate::engine::{Event, Finish, Job, Message, StopFilter};
use crate::modelfile::Params;
use crate::remote::Remote;

#[derive(Debug, Clone)]
pub struct OllamaSettings {
    /// e.g. `http://127.0.0.1:11434`.
    pub url: String,
    pub model: String,
    pub keep_alive_s: u64,
    pub params: Params,
}

/// Checks the server and the model, then serves `jobs`. `ready` gets the outcome first.
pub fn run(settings: OllamaSettings, jobs: Receiver<Job>, ready: Sender<Result<String, String>>) {
    crate::remote::run("Ollama", Bridge::connect(settings), jobs, ready);
}

struct Bridge {
    http: reqwest::Client,
    settings: OllamaSettings,
}

impl Bridge {
    async fn connect(settings: OllamaSettings) -> Result<Bridge, String> {
        let url = settings.url.trim_end_matches('/');
        let ollama = Ollama::try_new(url)
            .map_err(|e| format!("[llm] ollama_url = {url:?} is not a URL: {e}"))?;
        let models = tokio::time::timeout(Duration::from_secs(5), ollama.list_local_models())
            .await
            .map_err(|_| {
                format!("Ollama at {url} did not answer within 5 s; is `ollama serve` running?")
            })?
            .map_err(|e| {
                format!("Ollama at {url} is not reachable ({e}); start it with `ollama serve`")
            })?;
        let wanted = &settings.model;
        let found = models
            .iter()
            .any(|m| m.name == *wanted || m.name.strip_suffix(":latest") == Some(wanted.as_str()));
        if !found {
            let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
            return Err(format!(
                "Ollama at {url} has no model {wanted:?} (it has: {}); run `ollama pull {wanted}` or set [llm] ollama_model",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ));
        }
        Ok(Bridge {
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .map_err(|e| e.to_string())?,
            settings,
        })
    }

    fn request(&self, messages: &[Message], max_tokens: u32) -> Result<serde_json::Value, String> {
        let p = &self.settings.params;
        let options = ModelOptions::default()
            .temperature(p.temperature)
            .top_p(p.top_p)
            .top_k(p.top_k.max(0) as u32)
            .min_p(p.min_p)
            .repeat_penalty(p.repeat_penalty)
            .repeat_last_n(p.repeat_last_n)
            .seed(p.seed as i32)
            .num_ctx(u64::from(p.num_ctx))
            .num_predict(max_tokens as i32)
            .stop(p.stop.clone());
        let messages = messages
            .iter()
            .map(|m| match m.role {
                "system" => ChatMessage::system(m.text.clone()),
                "assistant" => ChatMessage::assistant(m.text.clone()),
                _ => ChatMessage::user(m.text.clone()),
            })
            .collect();
        let request = ChatMessageRequest::new(self.settings.model.clone(), messages)
            .options(options)
            .keep_alive(KeepAlive::Until {
                time: self.settings.keep_alive_s,
                unit: TimeUnit::Seconds,
            });
        let mut body = serde_json::to_value(request).map_err(|e| e.to_string())?;
        body["stream"] = serde_json::Value::Bool(true);
        Ok(body)
    }
}

impl Remote for Bridge {
    fn describe(&self) -> String {
        format!("Ollama {} at {}", self.settings.model, self.settings.url)
    }

    async fn generate(&self, job: &Job) -> Result<Event, String> {
        let started = Instant::now();
        let url = format!("{}/api/chat", self.settings.url.trim_end_matches('/'));
        let body = self.request(&job.messages, job.max_tokens)?;
        let response = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("Ollama at {url}: {e}"))?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            return Err(format!("Ollama answered {status}: {}", text.trim()));
        }
        let mut bytes = response.bytes_stream();
        let mut buffer: Vec<u8> = Vec::new();
        let mut stops = StopFilter::new(&self.settings.params.stop);
        let (mut tokens, mut prompt_tokens, mut first_text_ms) = (0usize, 0usize, 0u64);
        let mut finish = None;
        'read: while let Some(chunk) = bytes.next().await {
            let chunk = chunk.map_err(|e| format!("Ollama stream: {e}"))?;
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let value: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| format!("Ollama sent a line that is not JSON ({e}): {line}"))?;
                if let Some(error) = value.get("error") {
                    return Err(format!("Ollama: {}", error.as_str().unwrap_or_default()));
                }
                let length = value.get("done_reason").and_then(|r| r.as_str()) == Some("length");
                let r: ChatMessageResponse = serde_json::from_value(value).map_err(|e| {
                    format!("Ollama sent a line that is not a chat message ({e}): {line}")
                })?;
                tokens += usize::from(!r.message.content.is_empty());
                let (text, stop) = stops.push(&r.message.content);
                if !text.is_empty() {
                    if first_text_ms == 0 {
                        first_text_ms = started.elapsed().as_millis().max(1) as u64;
                    }
                    if job.out.send(Event::Text(text)).await.is_err() {
                        // Dropping the response closes the connection: Ollama stops.
                        finish = Some(Finish::Cancelled);
                        break 'read;
                    }
                }
                if stop {
                    finish = Some(Finish::Stop);
                    break 'read;
                }
                if r.done {
                    if let Some(d) = &r.final_data {
                        prompt_tokens = d.prompt_eval_count as usize;
                        tokens = d.eval_count as usize;
                    }
                    finish = Some(if length { Finish::Length } else { Finish::Stop });
                    break 'read;
                }
            }
        }
        let finish = finish.ok_or("the Ollama stream ended before its last message")?;
        if finish != Finish::Cancelled {
            let rest = stops.finish();
            if !rest.is_empty() {
                let _ = job.out.send(Event::Text(rest)).await;
            }
        }
        Ok(Event::Done {
            finish,
            prompt_tokens,
            tokens,
            first_text_ms,
            trimmed: 0,
        })
    }
}
