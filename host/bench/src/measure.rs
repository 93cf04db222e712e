//! One benchmark in this process: the assistant started with its speaker looped back into
//! stt's capture, the user's lines spoken `runs` times (each once the assistant stopped
//! talking), processes sampled meanwhile, then the report.

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
use crate::lines::{LINES, espeak};
use crate::report::report;
use crate::sampler::Sampler;

/// Runs the happy path `runs` times on `assistant` with stt's `endpoint` = `mode`, writing
/// into `out`.
pub(super) fn run(
    mut assistant: impl Assistant,
    out: &Path,
    runs: u32,
    mode: &str,
) -> Result<(), String> {
    assistant.set_plugin_key(Service::Stt, "endpoint", mode);
    let mut speech_ms = Vec::new();
    for (name, text) in LINES {
        speech_ms.push(espeak(text, &out.join(format!("{name}.wav")))?);
    }
    let log_dir = out.join("logs");
    let _ = std::fs::remove_dir_all(&log_dir);
    let app_log = log_dir.join("app.log");
    assistant.set_log_dir(log_dir);
    assistant.set_plugin_key(Service::Stt, "input", "null");
    assistant.set_plugin_key(Service::Stt, "input_echo", "0.5@80");
    assistant.set_plugin_key(
        Service::Tts,
        "output",
        &format!("wav:{}", out.join("assistant.wav").display()),
    );
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
        let mut stt = SttServiceClient::new(channel(Service::Stt));
        let mut playback = TtsServiceClient::new(channel(Service::Tts))
            .playback_events(DialogRef {
                dialog_id: String::new(),
            })
            .await
            .map_err(|s| format!("tts PlaybackEvents: {}", s.message()))?
            .into_inner();
        let started = Instant::now();
        for run in 1..=runs {
            let say = |name: &str| SetInputRequest {
                input: format!("wav:{}", out.join(format!("{name}.wav")).display()),
            };
            stt.set_input(say("wake"))
                .await
                .map_err(|s| s.message().to_owned())?;
            finished(&mut playback, false).await?;
            stt.set_input(say("question"))
                .await
                .map_err(|s| s.message().to_owned())?;
            finished(&mut playback, true).await?;
            for line in ["follow_up", "skill"] {
                tokio::time::sleep(Duration::from_millis(800)).await;
                stt.set_input(say(line))
                    .await
                    .map_err(|s| s.message().to_owned())?;
                finished(&mut playback, true).await?;
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
        let _ = admin.shutdown(ShutdownRequest {}).await;
        let _ = host.await;
        report(&app_log, &usage, out, runs, mode, &speech_ms)
    })
}

/// Waits for the next FINISHED playback event in a dialog (`in_dialog`) or outside one.
async fn finished(
    events: &mut tonic::Streaming<PlaybackEvent>,
    in_dialog: bool,
) -> Result<(), String> {
    let wait = async {
        while let Some(ev) = events.next().await {
            let ev = ev.map_err(|s| format!("tts playback events: {}", s.message()))?;
            if ev.kind() == PlaybackEventKind::Finished && ev.dialog_id.is_empty() != in_dialog {
                return Ok(());
            }
        }
        Err("tts playback events ended".to_owned())
    };
    tokio::time::timeout(Duration::from_secs(90), wait)
        .await
        .map_err(|_| {
            "the assistant did not answer within 90 s; see the app.log in --out".to_owned()
        })?
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
