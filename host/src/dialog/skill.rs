//! A turn the built-in skills answer: stt's final text goes to them before the model
//! (`crate::skills`); a match is spoken through tts `Speak` in the dialog, like a model's
//! reply (transcript line, barge-in, follow-up window), and logged as `skill_matched`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use voicehost_plugin_runtime::now_us;
use voicehost_proto::stt::v1::SttResult;
use voicehost_proto::tts::v1::{SpeakRequest, Wait};

use crate::skills::{self, Matched, SkillContext};

use super::faults::{Fault, why};
use super::relay::wait_played;
use super::session::Dialogs;
use super::timing::{ReplyTiming, ms, ms_to};
use super::{Metrics, REPLY_LIMIT};

/// A skill's answer to one turn.
#[derive(Debug)]
pub(super) struct SkillTurn {
    pub(super) matched: Matched,
    /// Final text → match.
    pub(super) match_time: Duration,
    /// When it matched, µs since the Unix epoch.
    pub(super) matched_us: i64,
}

impl Dialogs {
    /// The skills' answer to `text`, if one has it (and skills are on).
    pub(super) fn ask_skills(&self, text: &str) -> Option<SkillTurn> {
        if !self.cfg.skills {
            return None;
        }
        let asked = Instant::now();
        let matched = skills::answer(text, &SkillContext::now(&self.timers))?;
        let match_time = asked.elapsed();
        Metrics::bump(&self.metrics.skill_answers);
        Some(SkillTurn {
            matched,
            match_time,
            matched_us: now_us(),
        })
    }

    /// Speaks the skill's reply in the dialog (nothing for an empty one), its text added to
    /// `said`; returns once played.
    pub(super) async fn play_skill(
        &self,
        dialog: &str,
        skill: &SkillTurn,
        said: &Mutex<String>,
    ) -> Result<ReplyTiming, Fault> {
        let text = skill.matched.reply.text.trim();
        let mut t = ReplyTiming {
            request_us: skill.matched_us,
            finished_us: skill.matched_us,
            chars: text.chars().count(),
            ..ReplyTiming::default()
        };
        if let Ok(mut said) = said.lock() {
            said.push_str(text);
        }
        if text.is_empty() {
            return Ok(t);
        }
        let mut events = self.playback.subscribe();
        let mut tts = self
            .tts()
            .ok_or_else(|| Fault::Tts("tts is not enabled".to_owned()))?;
        let spoken = tts
            .speak(SpeakRequest {
                text: text.to_owned(),
                dialog_id: dialog.to_owned(),
                voice: String::new(),
                wait: Wait::Queued as i32,
            })
            .await
            .map_err(|s| Fault::Tts(why("tts Speak", &s)))?
            .into_inner();
        let (started, finished) =
            wait_played(&mut events, spoken.utterance_id, |_| false, REPLY_LIMIT)
                .await
                .map_err(Fault::Tts)?;
        t.first_audio_us = started;
        t.finished_us = finished;
        t.utterance = Some(spoken.utterance_id);
        Ok(t)
    }
}

/// Logs a skill's turn (`skill_matched`): which skill, final text → match (µs), match →
/// first audio and end of speech → first audio (ms; absent when nothing played), and tts's
/// utterance id (tts logs Speak → first audio for it as `tts_first_audio`).
pub(super) fn log_skill(
    dialog: &str,
    turn: u32,
    said: &SttResult,
    skill: &SkillTurn,
    played: Option<&ReplyTiming>,
) {
    let first_audio = played.and_then(|t| t.first_audio_us);
    tracing::info!(
        event = "skill_matched",
        dialog,
        turn,
        skill = skill.matched.skill,
        reply = %skill.matched.reply.text,
        ends_dialog = skill.matched.reply.ends_dialog,
        text_to_match_us = skill.match_time.as_micros() as u64,
        match_to_first_audio_ms = ms_to(skill.matched_us, first_audio),
        speech_end_to_first_audio_ms = ms_to(said.speech_end_unix_us, first_audio),
        reply_play_ms = played.and_then(|t| t.first_audio_us.map(|s| ms(s, t.finished_us))),
        utterance = played.and_then(|t| t.utterance),
        "A built-in skill answered"
    );
}
