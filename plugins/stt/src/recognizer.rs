//! Whisper through whisper-rs (whisper.cpp), with guards against transcribing silence or
//! noise into text ("Thank you.", "[BLANK_AUDIO]", …).

use std::ffi::{c_int, c_void};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::cpu::{self, IdleCores};
use crate::whisper_log;

use voicehost_stt_sdk::Transcript;
use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperSysContext,
    WhisperSysState, WhisperTokenData,
};

/// How many threads a transcription takes.
#[derive(Debug, Clone)]
enum Threads {
    /// This many (`threads = N`).
    Fixed(usize),
    /// One per core idle at the moment (`threads = 0`); 1 where that cannot be measured.
    Idle(Option<IdleCores>),
}

impl Threads {
    fn now(&self) -> usize {
        match self {
            Threads::Fixed(n) => *n,
            Threads::Idle(idle) => idle
                .as_ref()
                .and_then(IdleCores::now)
                .map_or(1, cpu::threads_for),
        }
    }
}

/// What Whisper makes of noise or silence; dropped when the audio is quiet or the model is
/// unsure there was speech.
const HALLUCINATIONS: &[&str] = &[
    "thank you",
    "thanks for watching",
    "thank you for watching",
    "you",
    "bye",
    "subtitles by the amara org community",
];

pub struct Recognizer {
    ctx: WhisperContext,
    /// Shrink the encoder's window to the utterance (whisper.cpp's `audio_ctx`).
    pub fit_audio_ctx: bool,
    threads: Threads,
    language: String,
    no_speech_threshold: f32,
    /// Whisper passes run so far (a transcription takes one, more when it loops).
    passes: AtomicUsize,
    /// Tokens sampled so far, over every pass and fallback temperature.
    tokens: AtomicUsize,
}

impl std::fmt::Debug for Recognizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recognizer")
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

fn normalized(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The narrowest encoder window tried first (in 20 ms steps: 5.12 s).
const MIN_AUDIO_CTX: usize = 256;
/// Whisper's whole encoder window (30 s).
const FULL_AUDIO_CTX: usize = 1500;

/// The encoder window (in 20 ms steps, 1500 = 30 s) for `samples` of 16 kHz audio: the
/// utterance plus a margin, at least `min`. The encoder's cost follows it, so short
/// utterances are transcribed several times faster than with the full 30 s window.
fn audio_ctx_for(samples: usize, min: usize) -> i32 {
    let steps = samples.div_ceil(320) + 64;
    steps.clamp(min, FULL_AUDIO_CTX) as i32
}

/// The most tokens (words, punctuation, timestamps) a decode of `samples` of 16 kHz audio
/// may take before it counts as a loop: about three times what fast speech needs (some
/// 4 words a second, 1-2 tokens each).
fn max_tokens(samples: usize) -> usize {
    24 + samples * 12 / 16_000
}

/// The token bound of one Whisper pass, shared by its two callbacks.
struct TokenBound {
    max: usize,
    /// Set once a decoder's sequence outgrows `max`.
    over: Arc<AtomicBool>,
    /// Tokens sampled in the pass.
    sampled: AtomicUsize,
}

/// whisper.cpp's logits filter, called before each token is sampled with the tokens so far:
/// counts it, and notes a sequence longer than the bound.
unsafe extern "C" fn count_tokens(
    _ctx: *mut WhisperSysContext,
    _state: *mut WhisperSysState,
    _tokens: *const WhisperTokenData,
    n_tokens: c_int,
    _logits: *mut f32,
    user_data: *mut c_void,
) {
    // SAFETY: `user_data` is the `TokenBound` that `Recognizer::run` set, alive for the call.
    let bound = unsafe { &*user_data.cast::<TokenBound>() };
    bound.sampled.fetch_add(1, Ordering::Relaxed);
    if usize::try_from(n_tokens).unwrap_or(0) > bound.max {
        bound.over.store(true, Ordering::Relaxed);
    }
}

/// whisper.cpp's (and ggml's) abort check: stop the pass once the bound is passed.
unsafe extern "C" fn abort_when_over(user_data: *mut c_void) -> bool {
    // SAFETY: as in `count_tokens`.
    let bound = unsafe { &*user_data.cast::<TokenBound>() };
    bound.over.load(Ordering::Relaxed)
}

impl Recognizer {
    /// Loads `model`; each transcription takes `threads` threads, or with 0 one per core
    /// idle at that moment (see [`crate::cpu`]).
    pub fn load(
        model: &Path,
        threads: usize,
        language: &str,
        no_speech_threshold: f32,
    ) -> Result<Recognizer, String> {
        if !model.is_file() {
            return Err(format!(
                "Whisper model {} not found; `voicehost models fetch` makes the default ones (`voicehost models list` names the rest), or point [stt] whisper_model at a ggml file",
                model.display()
            ));
        }
        crate::whisper_log::install();
        let path = model.to_str().ok_or("the model path is not UTF-8")?;
        let ctx = WhisperContext::new_with_params(path, WhisperContextParameters::default())
            .map_err(|e| format!("{}: not a whisper.cpp ggml model ({e})", model.display()))?;
        let threads = match threads {
            0 => Threads::Idle(IdleCores::start()),
            n => Threads::Fixed(n),
        };
        Ok(Recognizer {
            ctx,
            fit_audio_ctx: true,
            threads,
            language: language.to_owned(),
            no_speech_threshold,
            passes: AtomicUsize::new(0),
            tokens: AtomicUsize::new(0),
        })
    }

    /// How many Whisper passes this recognizer has run: one per transcription, more for
    /// one that looped and was tried again with a wider audio context.
    pub fn passes(&self) -> usize {
        self.passes.load(Ordering::Relaxed)
    }

    /// How many tokens this recognizer's passes have sampled, whisper.cpp's fallbacks
    /// at higher temperatures included: what a transcription cost, less the encoder.
    pub fn tokens(&self) -> usize {
        self.tokens.load(Ordering::Relaxed)
    }

    /// Transcribes 16 kHz mono audio; `None` when it holds no speech.
    pub fn transcribe(&self, samples: &[f32]) -> Result<Option<Transcript>, String> {
        self.transcribe_in(samples, "")
    }

    /// As [`transcribe`](Self::transcribe), in `language` (a Whisper language code; empty:
    /// the configured one).
    pub fn transcribe_in(
        &self,
        samples: &[f32],
        language: &str,
    ) -> Result<Option<Transcript>, String> {
        let language = if language.is_empty() {
            self.language.as_str()
        } else {
            language
        };
        let seconds = samples.len() as f32 / 16_000.0;
        let loops = |text: &str| looping(text) || too_many_words(text, seconds);
        // A shortened audio context now and then sends Whisper into a loop ("... ... ...",
        // "What time is it? What time is it? …"). whisper.cpp then decodes up to 224 tokens
        // at each of its six fallback temperatures: "What time is it?" took 4.5 s instead
        // of 0.16 s, and a sampled pass can add a word ("Set a timer for 10 minutes Drac").
        // So a pass that decodes more tokens than the audio can hold is stopped at once,
        // and the next, wider context tried; a loop is rare with twice the context and
        // rarer with the full 30 s (at several times the cost: 1.6 s for a short request
        // with tiny.en on 2 cores).
        let mut contexts = if self.fit_audio_ctx {
            vec![
                audio_ctx_for(samples.len(), MIN_AUDIO_CTX),
                audio_ctx_for(samples.len(), 2 * MIN_AUDIO_CTX),
                FULL_AUDIO_CTX as i32,
            ]
        } else {
            vec![FULL_AUDIO_CTX as i32]
        };
        // A long utterance's fitted window is as wide as the next one already.
        contexts.dedup();
        for audio_ctx in contexts {
            match self.run(samples, language, audio_ctx)? {
                Some(pass) if !loops(&pass.0) => return Ok(self.judge(samples, pass)),
                pass => tracing::debug!(
                    audio_ctx,
                    text = pass.as_ref().map(|p| p.0.as_str()),
                    "Transcript loops; again with a wider audio context"
                ),
            }
        }
        Ok(None)
    }

    /// One Whisper pass in `language` with an encoder window of `audio_ctx` steps: the text
    /// and the highest no-speech probability of its segments; `None` when it was stopped
    /// for decoding more tokens than `samples` can hold ([`max_tokens`]).
    fn run(
        &self,
        samples: &[f32],
        language: &str,
        audio_ctx: i32,
    ) -> Result<Option<(String, f32)>, String> {
        self.passes.fetch_add(1, Ordering::Relaxed);
        let mut state = self.ctx.create_state().map_err(|e| e.to_string())?;
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_language(Some(language));
        let threads = self.threads.now();
        tracing::debug!(threads, samples = samples.len(), audio_ctx, "Whisper pass");
        params.set_n_threads(threads as i32);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        params.set_single_segment(false);
        params.set_no_context(true);
        params.set_audio_ctx(audio_ctx);
        let bound = TokenBound {
            max: max_tokens(samples.len()),
            over: Arc::new(AtomicBool::new(false)),
            sampled: AtomicUsize::new(0),
        };
        let user_data = std::ptr::from_ref(&bound).cast_mut().cast::<c_void>();
        // SAFETY: both callbacks only read `bound` through `user_data` (its flag is
        // atomic: ggml may ask from several threads), and `bound` outlives `state.full`,
        // the only call that runs them; `params` is consumed by it.
        unsafe {
            params.set_filter_logits_callback(Some(count_tokens));
            params.set_filter_logits_callback_user_data(user_data);
            params.set_abort_callback(Some(abort_when_over));
            params.set_abort_callback_user_data(user_data);
        }
        // Whisper works on 30 s windows; pad short audio so it is not cut off.
        let mut audio = samples.to_vec();
        if audio.len() < 16_000 {
            audio.resize(16_000, 0.0);
        }
        let done = whisper_log::stopping(&bound.over, || state.full(params, &audio));
        self.tokens
            .fetch_add(bound.sampled.load(Ordering::Relaxed), Ordering::Relaxed);
        if bound.over.load(Ordering::Relaxed) {
            return Ok(None);
        }
        done.map_err(|e| e.to_string())?;
        let mut text = String::new();
        let mut no_speech: f32 = 0.0;
        for segment in state.as_iter() {
            let piece = segment.to_string();
            // Whisper tags a stretch without speech ("[BLANK_AUDIO]") as a segment of its
            // own, rated as no speech: it is not part of what was said, nor is its rating
            // the utterance's (with a fitted audio_ctx it often follows the speech).
            if is_marker(&piece) {
                continue;
            }
            no_speech = no_speech.max(segment.no_speech_probability());
            text.push_str(&piece);
        }
        Ok(Some((without_repeats(text.trim()), no_speech)))
    }

    /// `None` for a transcript that is not speech.
    fn judge(&self, samples: &[f32], (text, no_speech): (String, f32)) -> Option<Transcript> {
        let plain = normalized(&text);
        let rms = (samples.iter().map(|s| s * s).sum::<f32>() / samples.len().max(1) as f32).sqrt();
        let bracketed = text.starts_with('[') || text.starts_with('(');
        if plain.is_empty()
            || bracketed
            || no_speech > self.no_speech_threshold
            || (HALLUCINATIONS.contains(&plain.as_str()) && (rms < 0.02 || no_speech > 0.3))
        {
            tracing::debug!(text = %text, no_speech, rms, "Dropped: no speech");
            return None;
        }
        Some(Transcript {
            text,
            no_speech_prob: no_speech,
        })
    }
}

/// Whether a segment is only a bracketed tag, such as "[BLANK_AUDIO]" or "(silence)".
fn is_marker(segment: &str) -> bool {
    let s = segment.trim();
    (s.starts_with('[') && s.ends_with(']')) || (s.starts_with('(') && s.ends_with(')'))
}

/// The fewest words a repeated phrase has for [`without_repeats`] to drop it.
const MIN_REPEAT_WORDS: usize = 4;

/// `text` without a phrase of [`MIN_REPEAT_WORDS`] or more words that it repeats at its end
/// (case and punctuation aside): Whisper sometimes transcribes an utterance, or its last
/// sentence, twice or more over ("Ask not what your country can do for you. … Ask not what
/// your country can do for you. …"). The first of the copies stays.
fn without_repeats(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let plain: Vec<String> = words.iter().map(|w| normalized(w)).collect();
    let mut len = words.len();
    'shorter: loop {
        for n in MIN_REPEAT_WORDS..=len / 2 {
            if plain[len - n..len] == plain[len - 2 * n..len - n] {
                len -= n;
                continue 'shorter;
            }
        }
        break;
    }
    if len == words.len() {
        return text.to_owned();
    }
    words[..len].join(" ")
}

/// Whether `text` has more words than anyone says in `seconds`: a loop with variations
/// ("Test 1-2-3 In Test 1-2-3 10 Test 1-2-3. Test 1-1-2-3. …", 60 words for a 1.2 s clip in
/// a CI run), which [`looping`] and [`without_repeats`] do not catch. Fast speech is about
/// 4 words a second.
fn too_many_words(text: &str, seconds: f32) -> bool {
    text.split_whitespace().count() as f32 > 8.0 + 6.0 * seconds
}

/// Whether `text` is a decoding loop: mostly one repeated token (such as "...").
fn looping(text: &str) -> bool {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    if tokens.len() < 8 {
        return false;
    }
    let mut counts = std::collections::HashMap::new();
    for t in &tokens {
        *counts.entry(*t).or_insert(0usize) += 1;
    }
    counts.values().max().is_some_and(|m| m * 2 > tokens.len())
}

#[cfg(test)]
mod loop_tests {
    use super::{is_marker, looping};

    #[test]
    fn bracketed_tags_are_told_from_speech() {
        assert!(is_marker(" [BLANK_AUDIO]"));
        assert!(is_marker("(silence) "));
        assert!(!is_marker(" Tell me a short story."));
        assert!(!is_marker(" [Music] and then he said"));
        assert!(!is_marker(""));
    }

    #[test]
    fn a_phrase_repeated_at_the_end_is_kept_once() {
        use super::without_repeats;
        let once =
            "Ask not what your country can do for you. Ask what you can do for your country.";
        assert_eq!(without_repeats(&format!("{once} {once}")), once);
        assert_eq!(without_repeats(&format!("{once} {once} {once}")), once);
        assert_eq!(
            without_repeats(
                "and watch them out, join them in the comments and watch them out, join them in the comments,"
            ),
            "and watch them out, join them in the comments"
        );
        // Speech that repeats a word or a short phrase, or nothing, is left alone.
        for text in [
            "No, no, no, no.",
            "Turn it off, turn it off.",
            "What is the capital of France?",
            "",
        ] {
            assert_eq!(without_repeats(text), text);
        }
    }

    #[test]
    fn more_words_than_anyone_says_are_a_loop() {
        use super::too_many_words;
        let looped = "Test 1-2-3 In Test 1-2-3 10 Test 1-2-3. Test 1-1-2-3. Test 1-2-3. test \
            1-2-3. Test 1-2-3. Test 1-2-3 test 1-2-3. Test 1-2-2-3. Test 1-2-3 Test 1-2-2-3";
        assert!(too_many_words(looped, 1.2));
        assert!(!too_many_words("Test 1, 2, 3.", 1.2));
        // JFK's 11 s: 22 words.
        assert!(!too_many_words(
            "And so my fellow Americans ask not what your country can do for you ask what you can do for your country.",
            11.0
        ));
        // A short word said quickly.
        assert!(!too_many_words("Stop.", 0.3));
    }

    #[test]
    fn loops_are_told_from_speech() {
        assert!(looping("... ... ... ... - ...ius ... ... ... ... ... ..."));
        assert!(!looping(
            "And so my fellow Americans ask not what your country can do for you"
        ));
        assert!(!looping("... ..."));
    }
}
