//! One benchmark in this process: the assistant started with its speaker looped back into
//! stt's capture, the user's lines spoken `runs` times (each once the assistant stopped
//! talking), processes sampled meanwhile, then the report.
//!
//! Two rooms: WAV files (stt reads each line with `SetInput`, tts writes a WAV, the echo
//! path is simulated), or with `acoustic` a sound server this process was pointed at
//! (`acoustic.rs`): the assistant on its default devices, each line played into the
//! microphone, one recording of the microphone and the speaker measured after.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio_stream::StreamExt;
use voicehost_proto::common::v1::DialogRef;
use voicehost_proto::loader::v1::ShutdownRequest;
use voicehost_proto::loader::v1::loader_service_client::LoaderServiceClient;
use voicehost_proto::stt::v1::SetInputRequest;
use voicehost_proto::stt::v1::stt_service_client::SttServiceClient;
use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;
use voicehost_proto::tts::v1::{PlaybackEvent, PlaybackEventKind};

use voicehost_loader::host::endpoint;
use voicehost_loader::service::Service;

use crate::Assistant;
use crate::acoustic::{self, Line, Played};
use crate::lines::{BARGE_IN_LINES, LINES, espeak};
use crate::report::{Outcome, report};
use crate::sampler::Sampler;
use crate::sound_server::{Client, MIC};

/// How the user's lines reach the assistant.
enum Room {
    /// stt reads each line's WAV (`SetInput`).
    Wav(SttServiceClient<tonic::transport::Channel>),
    /// Each line is played into the sound server's microphone while one recording runs.
    Acoustic {
        client: Client,
        recording_started: Instant,
        played: Vec<Played>,
        players: Vec<std::process::Child>,
    },
}

impl Room {
    /// Starts saying the line `name` (its WAV in `out`).
    async fn say(&mut self, out: &Path, name: &str, line: Line) -> Result<(), String> {
        let wav = out.join(format!("{name}.wav"));
        match self {
            Room::Wav(stt) => stt
                .set_input(SetInputRequest {
                    input: format!("wav:{}", wav.display()),
                })
                .await
                .map(drop)
                .map_err(|s| s.message().to_owned()),
            Room::Acoustic {
                client,
                recording_started,
                played,
                players,
            } => {
                let at_ms = recording_started.elapsed().as_millis() as u64;
                let unix_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
                players.push(client.play(MIC, &wav)?);
                played.push(Played {
                    line,
                    wav,
                    at_ms,
                    unix_ms,
                });
                Ok(())
            }
        }
    }
}

/// Runs the happy path `runs` times on `assistant` with stt's `endpoint` = `mode`, writing
/// into `out`.
/// With `acoustic`, on the sound server this process was pointed at.
pub(super) fn run(
    mut assistant: impl Assistant,
    out: &Path,
    runs: u32,
    mode: &str,
    acoustic: bool,
) -> Result<(), String> {
    assistant.set_plugin_key(Service::Stt, "endpoint", mode);
    let lines = if acoustic {
        [&LINES[..], &BARGE_IN_LINES[..]].concat()
    } else {
        LINES.to_vec()
    };
    let mut speech_ms = Vec::new();
    for (name, text) in &lines {
        speech_ms.push(espeak(text, &out.join(format!("{name}.wav")))?);
    }
    let log_dir = out.join("logs");
    let _ = std::fs::remove_dir_all(&log_dir);
    let app_log = log_dir.join("app.log");
    assistant.set_log_dir(log_dir);
    let sound = if acoustic {
        // The devices a user has: the default capture device and output, a real echo.
        assistant.set_plugin_key(Service::Stt, "input", "auto");
        assistant.set_plugin_key(Service::Stt, "input_echo", "off");
        assistant.set_plugin_key(Service::Tts, "output", "auto");
        Some(acoustic::client()?)
    } else {
        assistant.set_plugin_key(Service::Stt, "input", "null");
        assistant.set_plugin_key(Service::Stt, "input_echo", "0.5@80");
        assistant.set_plugin_key(
            Service::Tts,
            "output",
            &format!("wav:{}", out.join("assistant.wav").display()),
        );
        None
    };
    assistant.set_plugin_key(Service::Tts, "output_pacing", "realtime");
    let ports = assistant.service_ports();
    let bind = assistant.bind_addr().to_string();
    let admin_port = assistant.admin_port();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let host = tokio::spawn(assistant.run());
        wait_log(&app_log, "host_ready", 1, Duration::from_secs(300)).await?;
        let channel =
            |svc: Service| endpoint(&bind, ports.get(&svc).copied().unwrap_or(0)).connect_lazy();
        let mut admin = LoaderServiceClient::new(endpoint(&bind, admin_port).connect_lazy());
        let sampler = Sampler::start(admin.clone());
        let mut playback = TtsServiceClient::new(channel(Service::Tts))
            .playback_events(DialogRef {
                dialog_id: String::new(),
            })
            .await
            .map_err(|s| format!("tts PlaybackEvents: {}", s.message()))?
            .into_inner();
        let recording = out.join("acoustic.wav");
        let (mut room, recorder) = match sound {
            Some(client) => {
                let recorder = client.record_probe(&recording, acoustic::RATE)?;
                let room = Room::Acoustic {
                    client,
                    recording_started: Instant::now(),
                    played: Vec::new(),
                    players: Vec::new(),
                };
                (room, Some(recorder))
            }
            None => (
                Room::Wav(SttServiceClient::new(channel(Service::Stt))),
                None,
            ),
        };
        let started = Instant::now();
        let mut unanswered = Vec::new();
        for run in 1..=runs {
            if let Some(line) = scenario(&mut room, &mut playback, out, acoustic).await? {
                eprintln!("run {run}: no reply to the {line} line; on to the next run");
                unanswered.push(format!("run {run}: no reply to the {line} line"));
            }
            wait_log(
                &app_log,
                "dialog_ended",
                run as usize,
                Duration::from_secs(30),
            )
            .await?;
            eprintln!("run {run}/{runs} done ({} s)", started.elapsed().as_secs());
        }
        let usage = sampler.stop().await;
        let timings = match (room, recorder) {
            (
                Room::Acoustic {
                    played, players, ..
                },
                Some(recorder),
            ) => {
                recorder.stop()?;
                for mut p in players {
                    let _ = p.wait();
                }
                Some(acoustic::analyse(&recording, &played)?)
            }
            _ => None,
        };
        let _ = admin.shutdown(ShutdownRequest {}).await;
        let _ = host.await;
        let outcome = Outcome {
            runs,
            endpoint: mode,
            speech_ms: &speech_ms,
            acoustic: timings.as_ref(),
            unanswered: &unanswered,
        };
        report(&app_log, &usage, out, &outcome)
    })
}

/// One run of the scenario: each line said once the assistant stopped talking. Returns the
/// line that got no reply (the run's remaining lines are then skipped: its dialog ended),
/// or `None`.
async fn scenario(
    room: &mut Room,
    playback: &mut tonic::Streaming<PlaybackEvent>,
    out: &Path,
    acoustic: bool,
) -> Result<Option<&'static str>, String> {
    use PlaybackEventKind::{Finished, Started};
    room.say(out, "wake", Line::Wake).await?;
    if !wait_for(playback, Finished, false).await? {
        return Ok(Some("wake"));
    }
    room.say(out, "question", Line::Question).await?;
    if !wait_for(playback, Finished, true).await? {
        return Ok(Some("question"));
    }
    for line in ["follow_up", "skill"] {
        tokio::time::sleep(Duration::from_millis(800)).await;
        room.say(out, line, Line::Question).await?;
        if !wait_for(playback, Finished, true).await? {
            return Ok(Some(line));
        }
    }
    if acoustic {
        // A long answer, and a question spoken over its first words (the line's 1 s of
        // leading silence after the reply starts), when the echo guard has had least time
        // to learn the room.
        let [(story, _), (barge_in, _)] = BARGE_IN_LINES;
        tokio::time::sleep(Duration::from_millis(800)).await;
        room.say(out, story, Line::Question).await?;
        if !wait_for(playback, Started, true).await? {
            return Ok(Some(story));
        }
        room.say(out, barge_in, Line::BargeIn).await?;
        if !wait_for(playback, Finished, true).await? {
            return Ok(Some(barge_in));
        }
    }
    Ok(None)
}

/// How long a line may wait for its reply (or the acknowledgement) before it counts as not
/// answered.
const ANSWER_WITHIN: Duration = Duration::from_secs(45);

/// Waits for the next playback event of `kind` in a dialog (`in_dialog`) or outside one;
/// false if none came within [`ANSWER_WITHIN`].
async fn wait_for(
    events: &mut tonic::Streaming<PlaybackEvent>,
    kind: PlaybackEventKind,
    in_dialog: bool,
) -> Result<bool, String> {
    let wait = async {
        while let Some(ev) = events.next().await {
            let ev = ev.map_err(|s| format!("tts playback events: {}", s.message()))?;
            if ev.kind() == kind && ev.dialog_id.is_empty() != in_dialog {
                return Ok(());
            }
        }
        Err("tts playback events ended".to_owned())
    };
    match tokio::time::timeout(ANSWER_WITHIN, wait).await {
        Ok(result) => result.map(|()| true),
        Err(_) => Ok(false),
    }
}

/// Waits until `path` (app.log) holds `count` `event` lines; fails at a `fatal` event or
/// after `limit`.
async fn wait_log(path: &Path, event: &str, count: usize, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    let needle = format!("\"event\":\"{event}\"");
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.matches(&needle).count() >= count {
            return Ok(());
        }
        if text.contains("\"event\":\"fatal\"") || Instant::now() > deadline {
            return Err(format!(
                "no {event} #{count} in {} within {} s",
                path.display(),
                limit.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
