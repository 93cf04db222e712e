//! `Transcribe` and `GetInfo`: audio a caller sends (the Wyoming server's, say) rather than
//! the microphone's. The request is checked here, waits its turn on the recognition thread
//! between the dialog's utterances, and is transcribed there as one utterance with the
//! engine's usual judgement (audio it finds no speech in gives empty text).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, oneshot};
use tonic::Status;
use voicehost_plugin_runtime::MAX_DECODING_MESSAGE_BYTES;
use voicehost_plugin_runtime::voicehost_plugin_api::panic_message;
use voicehost_proto::stt::v1::{SttInfo, TranscribeRequest, TranscribeResponse};

use super::capture::RATE;
use super::recognize::Work;
use super::shared::Shared;
use super::{Transcriber, Transcript};

/// `Transcribe` calls queued or running at once; one more is refused (RESOURCE_EXHAUSTED)
/// rather than kept waiting behind them with its audio in memory.
const MAX_QUEUED: usize = 8;

/// The longest language code a request may name.
const MAX_LANGUAGE_LEN: usize = 16;

/// Bytes of s16le audio per ms at [`RATE`].
const BYTES_PER_MS: usize = RATE as usize / 1000 * 2;

/// A caller's audio on its way to the recognition thread.
pub struct Request {
    samples: Vec<f32>,
    /// What [`Transcriber::transcribe_in`] is asked for (empty: the configured language).
    language: String,
    reply: oneshot::Sender<Result<Answer, String>>,
}

/// What the recognition thread made of a [`Request`].
#[derive(Debug)]
struct Answer {
    transcript: Option<Transcript>,
    recognize: Duration,
}

/// On the recognition thread: transcribes `request` and replies. A caller that left while
/// it waited costs no transcription; a panicking engine fails the request, not the thread.
pub fn answer<T: Transcriber>(recognizer: &mut T, request: Request) {
    if request.reply.is_closed() {
        tracing::debug!("The Transcribe caller left before its turn; skipped");
        return;
    }
    let started = Instant::now();
    let transcribed = catch_unwind(AssertUnwindSafe(|| {
        recognizer.transcribe_in(&request.samples, &request.language)
    }));
    let answer = match transcribed {
        Ok(Ok(transcript)) => Ok(Answer {
            transcript,
            recognize: started.elapsed(),
        }),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(format!(
            "the recogniser panicked: {}",
            panic_message(&*panic)
        )),
    };
    let _ = request.reply.send(answer);
}

/// What `Transcribe` and `GetInfo` need, fixed at start: what the recogniser is, the
/// longest audio it takes, and the queue's places.
#[derive(Debug, Clone)]
pub struct Transcribe {
    info: SttInfo,
    max_ms: u32,
    places: Arc<Semaphore>,
}

/// A request as checked: its samples, the language the engine is asked for, and the one
/// the response reports.
#[derive(Debug)]
struct Checked {
    samples: Vec<f32>,
    language: String,
    reported: String,
}

impl Transcribe {
    /// For engine `T` with `config`, taking at most `max_ms` of audio.
    pub fn new<T: Transcriber>(config: &T::Config, max_ms: u32) -> Transcribe {
        Transcribe {
            info: SttInfo {
                engine: T::META.name.to_owned(),
                engine_version: T::META.version.to_owned(),
                model: T::model_name(config),
                languages: T::languages(config),
            },
            max_ms,
            places: Arc::new(Semaphore::new(MAX_QUEUED)),
        }
    }

    pub fn info(&self) -> SttInfo {
        self.info.clone()
    }

    /// The largest request the service decodes: twice the longest audio (so audio
    /// somewhat over the limit gets the message naming `max_transcribe_ms`), at least the
    /// serve helper's usual limit.
    pub fn max_message_bytes(&self) -> usize {
        (self.max_ms as usize * BYTES_PER_MS * 2).max(MAX_DECODING_MESSAGE_BYTES)
    }

    /// Transcribes `req` on the recognition thread when its turn comes.
    pub async fn run(
        &self,
        shared: &Shared,
        req: TranscribeRequest,
    ) -> Result<TranscribeResponse, Status> {
        let checked = self.check(req)?;
        let audio_ms = audio_ms(checked.samples.len());
        let _place = Arc::clone(&self.places).try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "{MAX_QUEUED} Transcribe calls already wait for the recogniser; retry when one \
                 has finished"
            ))
        })?;
        let queue = shared.requests().ok_or_else(|| {
            Status::unavailable(
                "stt is not ready (still loading its models, or stopping); retry once its \
                 health is SERVING",
            )
        })?;
        let queued = Instant::now();
        let (reply, answer) = oneshot::channel();
        queue
            .send(Work::Request(Request {
                samples: checked.samples,
                language: checked.language,
                reply,
            }))
            .map_err(|_| gone())?;
        let answer = answer
            .await
            .map_err(|_| gone())?
            .map_err(|e| Status::internal(format!("transcription failed: {e}")))?;
        let text = answer.transcript.map(|t| t.text).unwrap_or_default();
        let recognize_ms = u32::try_from(answer.recognize.as_millis()).unwrap_or(u32::MAX);
        tracing::info!(
            event = "stt_transcribe",
            audio_ms,
            recognize_ms,
            wait_ms = queued.elapsed().saturating_sub(answer.recognize).as_millis() as u64,
            language = %checked.reported,
            text = %text,
            "Transcribed a caller's audio"
        );
        Ok(TranscribeResponse {
            text,
            audio_ms,
            recognize_ms,
            language: checked.reported,
        })
    }

    /// Checks every argument of `req`; INVALID_ARGUMENT names the value and what to send.
    fn check(&self, req: TranscribeRequest) -> Result<Checked, Status> {
        let TranscribeRequest {
            pcm_s16le,
            sample_rate,
            language,
        } = req;
        if sample_rate != RATE {
            return Err(Status::invalid_argument(format!(
                "sample_rate = {sample_rate} is not supported; resample to {RATE} Hz (mono, \
                 s16le)"
            )));
        }
        if pcm_s16le.is_empty() {
            return Err(Status::invalid_argument(
                "pcm_s16le is empty; send the audio to transcribe (16 kHz mono s16le)",
            ));
        }
        if pcm_s16le.len() % 2 != 0 {
            return Err(Status::invalid_argument(format!(
                "pcm_s16le has {} bytes, an odd number; s16le samples are 2 bytes each (mono)",
                pcm_s16le.len()
            )));
        }
        let ms = audio_ms(pcm_s16le.len() / 2);
        if pcm_s16le.len() > self.max_ms as usize * BYTES_PER_MS {
            return Err(Status::invalid_argument(format!(
                "pcm_s16le holds {ms} ms of audio, more than [stt] max_transcribe_ms = {}; \
                 send at most that much, or raise max_transcribe_ms",
                self.max_ms
            )));
        }
        let (language, reported) = self.language(&language)?;
        Ok(Checked {
            samples: voicehost_audio::from_s16le(&pcm_s16le),
            language,
            reported,
        })
    }

    /// The language to ask the engine for, and the one to report, for `asked`: empty is
    /// the configured one (the first listed); else a listed code, matched ignoring case or
    /// by its base language ("en-US" → "en"). Any code when the engine lists none.
    fn language(&self, asked: &str) -> Result<(String, String), Status> {
        let listed = &self.info.languages;
        if asked.is_empty() {
            return Ok((String::new(), listed.first().cloned().unwrap_or_default()));
        }
        let code = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if asked.len() > MAX_LANGUAGE_LEN || !asked.chars().all(code) {
            return Err(Status::invalid_argument(format!(
                "language {asked:?} is not a language code; use one such as \"en\" (GetInfo \
                 lists them), or leave it empty for the configured one"
            )));
        }
        if listed.is_empty() {
            return Ok((asked.to_owned(), asked.to_owned()));
        }
        let base = asked.split(['-', '_']).next().unwrap_or(asked);
        let found = [asked, base]
            .iter()
            .find_map(|want| listed.iter().find(|l| l.eq_ignore_ascii_case(want)));
        match found {
            Some(l) => Ok((l.clone(), l.clone())),
            None => Err(Status::invalid_argument(format!(
                "language {asked:?} is not one {} recognises; use {}, or leave it empty for {}",
                if self.info.model.is_empty() {
                    &self.info.engine
                } else {
                    &self.info.model
                },
                one_of(listed),
                listed.first().map_or("", String::as_str),
            ))),
        }
    }
}

/// The recognition thread ended (its health says why) or the plugin stops.
fn gone() -> Status {
    Status::unavailable(
        "the recognition thread is gone (stt stopping or failed; its health says why); retry \
         when it serves",
    )
}

/// Length of `samples` at [`RATE`] in ms.
fn audio_ms(samples: usize) -> u32 {
    u32::try_from(samples as u64 * 1000 / u64::from(RATE)).unwrap_or(u32::MAX)
}

/// "en" or "one of en, de, fr, … (99)": a long list shortened.
fn one_of(languages: &[String]) -> String {
    match languages {
        [one] => format!("{one:?}"),
        _ if languages.len() <= 12 => format!("one of {}", languages.join(", ")),
        _ => format!(
            "one of {}, … ({} in all; GetInfo lists them)",
            languages[..12].join(", "),
            languages.len()
        ),
    }
}

#[cfg(test)]
#[path = "transcribe_tests.rs"]
mod tests;
