//! The embedded backend: llama.cpp (through `llama-cpp-2`) on a GGUF file, in this process.
//!
//! One thread owns the model and its context and serves the jobs in order. The context's
//! KV cache is kept between jobs: a prompt that starts like the previous one (the system
//! prompt, a dialog's earlier turns) only decodes what is new.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, Sender};
use std::time::{Duration, Instant};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use voicehost_plugin_runtime::SpeechGate;

use crate::engine::{Event, Finish, Job, Message, StopFilter, Utf8Stream};
use crate::modelfile::Params;

/// Tokens decoded per batch while reading a prompt.
const BATCH: usize = 512;

/// The longest the model waits at the speech gate before one token: longer than any clause
/// takes to synthesise, so that a gate left closed slows a reply without stopping it.
const GATE_MAX_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct LlamaSettings {
    pub model: PathBuf,
    pub threads: i32,
    /// Where the speech gate is (the log directory): generation waits there between tokens
    /// while tts synthesises. `None`: never waits.
    pub speech_gate: Option<PathBuf>,
    /// GPU layers (the `cuda` build); 0 on CPU.
    pub gpu_layers: u32,
    pub template: Option<String>,
    pub params: Params,
}

/// llama.cpp's global state: once per process.
fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp's own log goes to tracing at debug level, not to stderr.
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            let backend = LlamaBackend::init().map_err(|e| format!("llama.cpp: {e}"))?;
            tracing::info!(event = "llm_cpu", features = %system_info(), "llama.cpp CPU features");
            Ok(backend)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// What this build of llama.cpp uses on this CPU (`AVX2 = 1 | … | REPACK = 1 |`): the
/// compiled-in features the CPU also has.
fn system_info() -> String {
    // SAFETY: returns a pointer to a static NUL-terminated buffer that llama.cpp owns; it is
    // copied out at once.
    let info = unsafe { std::ffi::CStr::from_ptr(llama_cpp_sys_2::llama_print_system_info()) };
    info.to_string_lossy().trim().to_owned()
}

/// Loads the model and serves `jobs` until the channel closes. `ready` gets the outcome
/// of loading first: a description of the model, or why it cannot be used.
pub fn run(settings: LlamaSettings, jobs: Receiver<Job>, ready: Sender<Result<String, String>>) {
    let loaded = (|| {
        if !settings.model.is_file() {
            return Err(format!(
                "{} not found; fetch it with `voicehost models fetch` (`voicehost models list` names the others), or point FROM in the Modelfile at a GGUF file",
                settings.model.display()
            ));
        }
        let backend = backend()?;
        let params = LlamaModelParams::default().with_n_gpu_layers(settings.gpu_layers);
        let model = LlamaModel::load_from_file(backend, &settings.model, &params).map_err(|e| {
            format!(
                "{} is not a loadable GGUF model: {e}",
                settings.model.display()
            )
        })?;
        Ok((backend, model))
    })();
    let (backend, model) = match loaded {
        Ok(m) => m,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let n_ctx = settings.params.num_ctx.min(model.n_ctx_train().max(256));
    let ctx_params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(BATCH as u32)
        .with_n_threads(settings.threads)
        .with_n_threads_batch(settings.threads);
    let mut ctx = match model.new_context(backend, ctx_params) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(format!(
                "llama.cpp cannot make a {n_ctx}-token context: {e}"
            )));
            return;
        }
    };
    let template = match &settings.template {
        Some(t) => LlamaChatTemplate::new(t).map_err(|e| format!("TEMPLATE: {e}")),
        None => model.chat_template(None).map_err(|_| {
            format!(
                "{} has no chat template; add TEMPLATE to the Modelfile (e.g. TEMPLATE chatml)",
                settings.model.display()
            )
        }),
    };
    let template = match template {
        Ok(t) => t,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let description = format!(
        "{} ({} parameters, {} layers), context {n_ctx}, {} threads",
        settings
            .model
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        model.n_params(),
        model.n_layer(),
        settings.threads
    );
    if ready.send(Ok(description)).is_err() {
        return;
    }
    let gate = settings.speech_gate.as_deref().and_then(|dir| {
        SpeechGate::open(dir)
            .map_err(|e| tracing::warn!(event = "speech_gate_unavailable", error = %e, "Replies are generated without waiting for speech synthesis"))
            .ok()
    });
    let mut engine = Engine {
        model: &model,
        ctx: &mut ctx,
        template,
        params: settings.params,
        cached: Vec::new(),
        gate,
    };
    for job in jobs {
        if job.out.is_closed() {
            continue; // the client left while the job waited
        }
        let event = match engine.generate(&job) {
            Ok(done) => done,
            Err(Failure::Rejected(why)) => Event::Rejected(why),
            Err(Failure::Failed(why)) => {
                engine.cached.clear();
                engine.ctx.clear_kv_cache();
                Event::Failed(why)
            }
        };
        event.log_if_cancelled();
        job.send(event);
    }
}

enum Failure {
    Rejected(String),
    Failed(String),
}

struct Engine<'m, 'c> {
    model: &'m LlamaModel,
    ctx: &'c mut LlamaContext<'m>,
    template: LlamaChatTemplate,
    params: Params,
    /// The tokens in the KV cache, in order.
    cached: Vec<LlamaToken>,
    gate: Option<SpeechGate>,
}

impl Engine<'_, '_> {
    /// The prompt's tokens; `reply`: ending with the assistant's turn opened (else they end
    /// with the last message, a prefix of the prompt that will follow it).
    fn tokens(&self, messages: &[Message], reply: bool) -> Result<Vec<LlamaToken>, Failure> {
        let chat = messages
            .iter()
            .map(|m| LlamaChatMessage::new(m.role.to_owned(), m.text.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Failure::Rejected(format!("the text cannot be used: {e}")))?;
        let prompt = self
            .model
            .apply_chat_template(&self.template, &chat, reply)
            .map_err(|e| Failure::Failed(format!("chat template: {e}")))?;
        Ok(self.model.vocab().tokenize(prompt.as_bytes(), true, true))
    }

    fn sampler(&self) -> LlamaSampler {
        let p = &self.params;
        let mut chain = vec![LlamaSampler::penalties(
            self.model.n_vocab(),
            p.repeat_last_n,
            p.repeat_penalty,
            0.0,
            0.0,
        )];
        if p.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
        } else {
            chain.extend([
                LlamaSampler::top_k(p.top_k),
                LlamaSampler::top_p(p.top_p, 1),
                LlamaSampler::min_p(p.min_p, 1),
                LlamaSampler::temp(p.temperature),
                LlamaSampler::dist(p.seed),
            ]);
        }
        LlamaSampler::chain_simple(chain)
    }

    fn generate(&mut self, job: &Job) -> Result<Event, Failure> {
        let started = Instant::now();
        let n_ctx = self.ctx.n_ctx() as usize;
        // Drop the oldest history until the prompt and some reply fit.
        let mut messages = job.messages.clone();
        let mut trimmed = 0;
        let tokens = loop {
            let tokens = self.tokens(&messages, !job.prefill_only)?;
            let room = n_ctx.saturating_sub(tokens.len());
            if room >= (job.max_tokens as usize).min(64) {
                break tokens;
            }
            if messages.len() > job.keep + 1 {
                messages.remove(job.keep);
                trimmed += 1;
                continue;
            }
            return Err(Failure::Rejected(format!(
                "the request is {} tokens with the system prompt; the context holds {n_ctx} (num_ctx in the Modelfile): shorten the text",
                tokens.len()
            )));
        };
        let max_new = (job.max_tokens as usize).min(n_ctx - tokens.len());

        // Reuse the cached prefix; decode the rest.
        let mut common = self
            .cached
            .iter()
            .zip(&tokens)
            .take_while(|(a, b)| a == b)
            .count();
        if job.prefill_only && common == tokens.len() {
            // Read already; what follows it in the cache (a dialog's turns) stays: the same
            // question again reads nothing.
            log_read(common, 0, started, true);
            return Ok(done(Finish::Prefilled, tokens.len(), 0, 0, trimmed));
        }
        if common == tokens.len() {
            common -= 1; // the last prompt token is decoded again for its logits
        }
        self.ctx
            .clear_kv_cache_seq(Some(0), Some(common as u32), None)
            .map_err(|e| Failure::Failed(format!("KV cache: {e}")))?;
        self.cached.truncate(common);
        let mut batch = LlamaBatch::new(BATCH, 1);
        for (start, part) in tokens[common..].chunks(BATCH).enumerate() {
            if job.out.is_closed() {
                return Ok(done(Finish::Cancelled, tokens.len(), 0, 0, trimmed));
            }
            batch.clear();
            let base = common + start * BATCH;
            let last_part = base + part.len() == tokens.len();
            for (i, &t) in part.iter().enumerate() {
                let is_last = last_part && i + 1 == part.len();
                batch
                    .add(t, (base + i) as i32, &[0], is_last)
                    .map_err(|e| Failure::Failed(format!("batch: {e}")))?;
            }
            self.ctx
                .decode(&mut batch)
                .map_err(|e| Failure::Failed(format!("llama.cpp decode: {e}")))?;
            self.cached.extend_from_slice(part);
        }
        log_read(common, tokens.len() - common, started, job.prefill_only);
        if job.prefill_only {
            return Ok(done(Finish::Prefilled, tokens.len(), 0, 0, trimmed));
        }

        let mut sampler = self.sampler();
        let vocab = self.model.vocab();
        let mut utf8 = Utf8Stream::default();
        let mut stops = StopFilter::new(&self.params.stop);
        let mut first_text_ms = 0;
        let mut generated = 0;
        // At the speech gate: how long in all, and before how many tokens.
        let (mut waited, mut waits) = (Duration::ZERO, 0);
        let finish = loop {
            if generated >= max_new {
                break Finish::Length;
            }
            let token = sampler.sample(self.ctx, batch.n_tokens() - 1);
            generated += 1;
            if vocab.is_eog(token) {
                break Finish::Stop;
            }
            let text = utf8.push(&vocab.token_to_piece(token, false, None));
            let (text, stop) = stops.push(&text);
            if !text.is_empty() {
                if first_text_ms == 0 {
                    first_text_ms = started.elapsed().as_millis().max(1) as u64;
                }
                if !job.send(Event::Text(text)) {
                    break Finish::Cancelled;
                }
            }
            if stop {
                break Finish::Stop;
            }
            if let Some(gate) = &self.gate {
                let w = gate.wait(GATE_MAX_WAIT, || !job.out.is_closed());
                if !w.is_zero() {
                    waited += w;
                    waits += 1;
                }
            }
            batch.clear();
            batch
                .add(token, self.cached.len() as i32, &[0], true)
                .map_err(|e| Failure::Failed(format!("batch: {e}")))?;
            self.ctx
                .decode(&mut batch)
                .map_err(|e| Failure::Failed(format!("llama.cpp decode: {e}")))?;
            self.cached.push(token);
        };
        if waits > 0 {
            tracing::info!(
                event = "llm_waited_for_tts",
                ms = waited.as_millis() as u64,
                times = waits,
                tokens = generated,
                "Generation waited while tts synthesised"
            );
        }
        if finish != Finish::Cancelled {
            let rest = stops.finish();
            if !rest.is_empty() && !job.send(Event::Text(rest)) {
                return Ok(done(
                    Finish::Cancelled,
                    tokens.len(),
                    generated,
                    first_text_ms,
                    trimmed,
                ));
            }
        }
        Ok(done(
            finish,
            tokens.len(),
            generated,
            first_text_ms,
            trimmed,
        ))
    }
}

/// `llm_prompt_read` in app.log: the prompt tokens kept from the cache and those read.
fn log_read(cached: usize, read: usize, started: Instant, prefill_only: bool) {
    tracing::info!(
        event = "llm_prompt_read",
        cached,
        read,
        ms = started.elapsed().as_millis() as u64,
        prefill_only,
        "Prompt read (the cached prefix kept)"
    );
}

fn done(
    finish: Finish,
    prompt_tokens: usize,
    tokens: usize,
    first_text_ms: u64,
    trimmed: usize,
) -> Event {
    Event::Done {
        finish,
        prompt_tokens,
        tokens,
        first_text_ms,
        trimmed,
    }
}
