#![allow(clippy::unwrap_used)]
//! The example plugin `plugins/examples/tts-espeak`, as a third party would use the SDK:
//! built as a cargo project of its own (a path dependency on plugin-api only), dropped into
//! a running host with `voicehost ctl reload tts --path …`, and heard — stt transcribes its
//! speech from the simulated speaker → microphone path.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tokio_stream::StreamExt;
use voicehost_proto::common::v1::DialogRef;
use voicehost_proto::stt::v1::StartRequest;
use voicehost_proto::stt::v1::stt_service_client::SttServiceClient;
use voicehost_proto::tts::v1::tts_service_client::TtsServiceClient;
use voicehost_proto::tts::v1::{SpeakRequest, Wait};
use voicehost_tests::{
    Setup, artefact, build_out_of_tree, channel, dependency_tree, free_port, plugin_info_json,
    service_info, stt_keys, tts_keys, wait_app_events, words, workspace_root,
};

/// Packages that mean a sound card library (cpal → ALSA) or the AEC3 build (meson, abseil).
const HEAVY: &[&str] = &["cpal", "alsa", "alsa-sys", "webrtc-audio-processing-sys"];

/// `project`'s packages, printed; fails if one of `HEAVY` is among them.
fn assert_light(project: &str) {
    let packages = dependency_tree(project);
    eprintln!("{project}: {} packages", packages.len());
    let heavy: Vec<&String> = packages
        .iter()
        .filter(|p| HEAVY.iter().any(|h| p.split(' ').next() == Some(h)))
        .collect();
    assert!(heavy.is_empty(), "{project} pulls in {heavy:?}");
}

#[test]
fn an_stt_plugin_without_aec_or_sound_card_builds_with_cargo_alone() {
    // The stt SDK with default-features = false: no AEC3 (meson, abseil), no cpal (ALSA).
    assert_light("plugins/fixtures/stt-no-aec");
    let library = build_out_of_tree(
        "plugins/fixtures/stt-no-aec",
        "libvoicehost_fixture_stt_no_aec.so",
        false,
    );
    let (_, json) = plugin_info_json(&library);
    assert_eq!(json["loadable"], true, "{json}");
    assert_eq!(json["plugin"]["kind"], "stt", "{json}");
    let features = json["plugin"]["features"].as_array().unwrap();
    assert!(features.iter().any(|f| f == "silero_vad"), "{json}");
    assert!(!features.iter().any(|f| f == "webrtc_aec3"), "{json}");
}

#[test]
fn the_example_stays_small() {
    let source = workspace_root().join("plugins/examples/tts-espeak/src/lib.rs");
    let lines = std::fs::read_to_string(source).unwrap().lines().count();
    assert!(
        lines < 150,
        "the example has {lines} lines; keep it under 150"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_is_built_out_of_tree_hot_swapped_in_and_heard() {
    // As a third party builds it: a cargo project of its own, on the tts SDK only, which
    // writes WAV files without linking a sound card library.
    assert_light("plugins/examples/tts-espeak");
    let library = build_out_of_tree(
        "plugins/examples/tts-espeak",
        "libvoicehost_tts_espeak.so",
        false,
    );
    // `voicehost plugin info` says what it is and that this host can load it.
    let (exit_ok, json) = plugin_info_json(&library);
    assert!(exit_ok, "{json}");
    assert_eq!(json["loadable"], true, "{json}");
    let plugin = &json["plugin"];
    assert_eq!(plugin["name"], "voicehost-tts-espeak", "{json}");
    assert_eq!(plugin["kind"], "tts", "{json}");
    assert_eq!(plugin["proto_package"], "voicehost.tts.v1", "{json}");
    assert_eq!(
        plugin["plugin_api_version"],
        voicehost_plugin_api::abi::PLUGIN_API_VERSION,
        "{json}"
    );
    assert_eq!(plugin["features"][0], "espeak-ng", "{json}");
    let features = plugin["features"].as_array().unwrap();
    for sdk in voicehost_tts_sdk::SDK_FEATURES {
        assert!(features.iter().any(|f| f == sdk), "the SDK's {sdk}: {json}");
    }

    // A host with the built-in Kokoro tts, and stt hearing whatever tts plays.
    let mut setup = Setup::new();
    let (tts, stt) = (free_port(), free_port());
    let spoken = setup.dir.path().join("spoken.wav");
    setup.section_with("tts", tts_keys(tts, &spoken), &[("x_espeak_wpm", "150")]);
    let mut keys = stt_keys(stt, Path::new("unused"));
    keys.retain(|(k, _)| k != "render_reference" && k != "input");
    setup.section_with(
        "stt",
        keys,
        &[
            ("input", "null"),
            ("input_echo", "1.0@0"),
            ("aec_enabled", "false"),
        ],
    );
    let mut host = setup.spawn();
    host.wait_for("host_ready", Duration::from_secs(120));
    assert_eq!(service_info(setup.admin_port, "tts").await.version, "0.1.0");

    // The third-party plugin replaces Kokoro without a restart.
    let reload = Command::new(artefact("voicehost"))
        .args(["ctl", "--admin", &format!("127.0.0.1:{}", setup.admin_port)])
        .args(["reload", "tts", "--path"])
        .arg(&library)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&reload.stdout);
    assert!(
        reload.status.success(),
        "ctl reload failed: {said}{}",
        String::from_utf8_lossy(&reload.stderr)
    );
    let info = service_info(setup.admin_port, "tts").await;
    assert!(
        info.library_path.contains("libvoicehost_tts_espeak"),
        "{info:?}"
    );
    let log = setup.log_dir().join("app.log");
    let swapped = wait_app_events(&log, &["swap_done"], Duration::from_secs(10));
    eprintln!("ctl reload: {}", said.trim());
    assert!(
        swapped
            .iter()
            .any(|l| l.event == "tts_ready" && l.field("engine") == "voicehost-tts-espeak"),
        "the example reported ready in app.log"
    );
    // stt's render-reference link to tts reconnects to the new plugin by itself.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut stt_client = SttServiceClient::new(channel(stt));
    let dialog = "example".to_owned();
    stt_client
        .start(StartRequest {
            dialog_id: dialog.clone(),
            barge_in_min_ms: 0,
        })
        .await
        .unwrap();
    let mut results = stt_client
        .results(DialogRef {
            dialog_id: dialog.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let sentence = "Please turn on the lights in the kitchen.";
    let reply = TtsServiceClient::new(channel(tts))
        .speak(SpeakRequest {
            text: sentence.into(),
            dialog_id: dialog.clone(),
            voice: String::new(),
            wait: Wait::Finished as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.finished && reply.audio_ms > 1000, "{reply:?}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut heard = String::new();
    while let Ok(Some(Ok(r))) = tokio::time::timeout_at(deadline, results.next()).await {
        if r.is_final && !r.text.is_empty() {
            heard = r.text;
            break;
        }
    }
    eprintln!("espeak-ng said {sentence:?}; stt heard {heard:?}");
    let expected = words(sentence);
    let got = words(&heard);
    let found = expected.iter().filter(|w| got.contains(w)).count();
    assert!(
        found * 3 >= expected.len() * 2,
        "stt heard {heard:?} for {sentence:?}"
    );
    host.terminate();
}
