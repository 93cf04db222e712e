//! `Synthesize` and `ListVoices`: audio and voices for another program (the Wyoming server),
//! played nowhere.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use voicehost_proto::tts::v1::{ListVoicesResponse, SynthesizeRequest, SynthesizedAudio};

use super::Synthesizer;
use super::service::{MAX_PIECE_CHARS, Tts};
use super::synth::{Job, ReturnJob};
use super::text::{ClauseBuffer, sentences, validate};
use super::voices::with_default;

/// Clause messages waiting for a slow reader; the next clause is synthesised meanwhile.
const STREAM_BUFFER: usize = 2;

/// The clauses of `text`, as `SpeakStream` cuts a reply (so the first comes after a few
/// words), none longer than [`MAX_PIECE_CHARS`].
fn clauses(text: &str, first_words: usize) -> Vec<String> {
    let mut buffer = ClauseBuffer::new(first_words);
    let mut clauses = buffer.push(text);
    clauses.extend(buffer.flush());
    clauses
        .iter()
        .flat_map(|clause| sentences(clause, MAX_PIECE_CHARS))
        .collect()
}

/// Checks the request and starts streaming its audio, clause by clause.
#[allow(clippy::result_large_err)]
pub fn synthesize<S: Synthesizer>(
    tts: &Tts<S>,
    req: SynthesizeRequest,
) -> Result<ReceiverStream<Result<SynthesizedAudio, Status>>, Status> {
    let inner = &tts.inner;
    validate(&req.text, inner.settings.max_text_bytes).map_err(Status::invalid_argument)?;
    let voice = tts.voice(&req.voice)?;
    let ready = tts.ready()?;
    let jobs = ready
        .jobs
        .lock()
        .map_err(|_| Status::internal("synthesis queue poisoned"))?
        .clone();
    let text = req.text.trim();
    let cached = ready
        .cache
        .get(text)
        .filter(|_| voice == inner.default_voice)
        .cloned();
    let pieces = match cached {
        Some(pcm) => vec![Piece::Cached(pcm)],
        None => clauses(text, inner.settings.first_chunk_words)
            .into_iter()
            .map(Piece::Text)
            .collect(),
    };
    let request = Request {
        pieces,
        voice,
        sample_rate: ready.sample_rate,
        jobs,
    };
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(request.run(tx));
    Ok(ReceiverStream::new(rx))
}

/// What one message of a `Synthesize` call is made of.
enum Piece {
    /// A clause for the engine.
    Text(String),
    /// The whole text, a phrase from the phrase cache.
    Cached(Vec<f32>),
}

/// One `Synthesize` call being answered.
struct Request {
    pieces: Vec<Piece>,
    voice: String,
    sample_rate: u32,
    jobs: std::sync::mpsc::Sender<Job>,
}

/// How a `Synthesize` call ended, for its log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Complete,
    /// The caller went away; the rest was not synthesised.
    CallerLeft,
    Failed,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            End::Complete => "complete",
            End::CallerLeft => "caller_left",
            End::Failed => "failed",
        }
    }
}

type Reply = mpsc::Sender<Result<SynthesizedAudio, Status>>;

impl Request {
    /// Sends one clause at a time to the synthesis thread (the next once the previous one's
    /// audio is back, so speech queued meanwhile is not held behind a long text) and each
    /// clause's audio to `tx`.
    async fn run(mut self, tx: Reply) {
        let started = Instant::now();
        let mut first_audio_ms = None;
        let mut samples = 0u64;
        let mut returned = 0usize;
        let pieces = std::mem::take(&mut self.pieces);
        let total = pieces.len();
        let mut end = End::Complete;
        for piece in pieces {
            let pcm = match piece {
                Piece::Cached(pcm) => pcm,
                Piece::Text(clause) => match self.clause(clause, &tx).await {
                    Ok(pcm) => pcm,
                    Err(e) => {
                        end = e;
                        break;
                    }
                },
            };
            if pcm.is_empty() {
                continue;
            }
            samples += pcm.len() as u64;
            let message = SynthesizedAudio {
                pcm_s16le: voicehost_audio::to_s16le(&pcm),
                sample_rate: self.sample_rate,
            };
            if tx.send(Ok(message)).await.is_err() {
                end = End::CallerLeft;
                break;
            }
            first_audio_ms.get_or_insert(started.elapsed().as_millis() as u64);
            returned += 1;
        }
        tracing::info!(
            event = "tts_synthesized",
            clauses = total,
            returned,
            end = end.as_str(),
            audio_ms = samples * 1000 / u64::from(self.sample_rate.max(1)),
            first_audio_ms = first_audio_ms.unwrap_or_default(),
            ms = started.elapsed().as_millis() as u64,
            "Audio returned"
        );
    }

    /// The audio of `clause` from the synthesis thread; the error is how the call ends (an
    /// engine failure is sent to the caller first).
    async fn clause(&self, clause: String, tx: &Reply) -> Result<Vec<f32>, End> {
        let (reply, audio) = oneshot::channel();
        let job = Job::Return(ReturnJob {
            text: clause.clone(),
            voice: self.voice.clone(),
            reply,
        });
        if self.jobs.send(job).is_err() {
            let stopped = Status::unavailable("the synthesis thread has stopped; restart tts");
            let _ = tx.send(Err(stopped)).await;
            return Err(End::Failed);
        }
        // Dropping `audio` when the caller goes away tells the synthesis thread to skip it.
        let result = tokio::select! {
            result = audio => result,
            () = tx.closed() => return Err(End::CallerLeft),
        };
        let failed = match result {
            Ok(Ok(pcm)) => return Ok(pcm),
            Ok(Err(e)) => Status::internal(e),
            Err(_) => Status::unavailable("the synthesis thread has stopped; restart tts"),
        };
        tracing::error!(event = "tts_error", error = %failed.message(), text = %clause, "Synthesis failed");
        let _ = tx.send(Err(failed)).await;
        Err(End::Failed)
    }
}

/// The engine's voices (read on a blocking thread: an engine may list files), its default
/// voice and sample rate.
pub async fn list_voices<S: Synthesizer>(tts: &Tts<S>) -> Result<ListVoicesResponse, Status> {
    let sample_rate = tts.ready()?.sample_rate;
    let inner = Arc::clone(&tts.inner);
    let voices = tokio::task::spawn_blocking(move || S::voices(&inner.engine))
        .await
        .map_err(|e| Status::internal(format!("listing the voices failed: {e}")))?
        .map_err(|e| Status::internal(format!("{} cannot list its voices: {e}", S::META.name)))?;
    let default_voice = tts.inner.default_voice.clone();
    Ok(ListVoicesResponse {
        voices: with_default(voices, &default_voice)
            .into_iter()
            .map(Into::into)
            .collect(),
        default_voice,
        sample_rate,
        engine: S::META.name.to_owned(),
        engine_version: S::META.version.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_into_clauses_of_at_most_the_piece_length() {
        assert_eq!(clauses("Test 1 2 3.", 4), ["Test 1 2 3."]);
        assert_eq!(
            clauses("It is sunny. Take a hat, and some water! Bye", 4),
            ["It is sunny.", "Take a hat,", "and some water!", "Bye"]
        );
        let long = "word ".repeat(200);
        let pieces = clauses(&long, 4);
        assert!(pieces.iter().all(|p| p.chars().count() <= MAX_PIECE_CHARS));
        assert_eq!(pieces.join(" "), long.trim());
    }
}
