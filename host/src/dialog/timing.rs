//! Turn timing: when a reply was asked for, generated and played, logged per turn
//! (`turn_timing`), and the millisecond arithmetic the dialog's log events share.

use voicehost_proto::stt::v1::SttResult;

/// When one reply was produced and played.
#[derive(Debug, Default)]
pub(super) struct ReplyTiming {
    pub(super) request_us: i64,
    pub(super) first_token_us: Option<i64>,
    pub(super) first_chunk_us: Option<i64>,
    pub(super) first_audio_us: Option<i64>,
    pub(super) finished_us: i64,
    pub(super) chars: usize,
    /// tts's id of the utterance that played it (its `tts_first_audio` line).
    pub(super) utterance: Option<u64>,
}

/// Logs one turn's timings (`turn_timing`): from the end of the user's speech to the text,
/// to the first token and to the first audio, and how long the reply played.
pub(super) fn log_turn(dialog: &str, turn: u32, said: &SttResult, t: &ReplyTiming) {
    tracing::info!(
        event = "turn_timing",
        dialog,
        turn,
        speech_end_to_text_ms = ms(said.speech_end_unix_us, said.ts_unix_us),
        request_to_first_token_ms = ms_to(t.request_us, t.first_token_us),
        first_chunk_to_first_audio_ms = t.first_chunk_us.and_then(|c| ms_to(c, t.first_audio_us)),
        speech_end_to_first_audio_ms = ms_to(said.speech_end_unix_us, t.first_audio_us),
        reply_chars = t.chars,
        reply_play_ms = t.first_audio_us.map(|s| ms(s, t.finished_us)),
        "Turn timings"
    );
}

/// Milliseconds from `from` to `to`, both in µs since the Unix epoch.
pub(super) fn ms(from: i64, to: i64) -> f64 {
    (to - from) as f64 / 1000.0
}

/// Milliseconds from `from` to `to`, if `to` happened.
pub(super) fn ms_to(from: i64, to: Option<i64>) -> Option<f64> {
    to.map(|to| ms(from, to))
}
