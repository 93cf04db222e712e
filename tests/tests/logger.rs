//! The host with only the real logger plugin: health, every logger RPC including bad input,
//! loopback-only ports, the admin API, clean shutdown.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use tonic::Code;
use voicehost_proto::loader::v1::loader_service_client::LoaderServiceClient;
use voicehost_proto::loader::v1::{ServiceRequest, ServiceState};
use voicehost_proto::logger::v1::logger_service_client::LoggerServiceClient;
use voicehost_proto::logger::v1::{
    Level, NewDialogRequest, Role, WriteAppRequest, WriteDialogRequest,
};
use voicehost_tests::{Setup, channel, listen_addrs, read, service_info, serving, wait_for_text};

fn dialog(id: &str, role: Role, text: &str) -> WriteDialogRequest {
    WriteDialogRequest {
        dialog_id: id.to_owned(),
        role: role as i32,
        text: text.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logger_serves_every_rpc_and_refuses_bad_input() {
    let setup = Setup::new();
    let mut host = setup.spawn();
    host.wait_ready();

    // Health over grpc.health.v1, overall and for the service.
    for service in ["", "voicehost.logger.v1.LoggerService"] {
        assert!(serving(setup.logger_port, service).await, "{service:?}");
    }

    // Every port is bound on 127.0.0.1 only.
    for port in [setup.logger_port, setup.admin_port] {
        assert_eq!(
            listen_addrs(port),
            vec!["0100007F".to_owned()],
            "port {port}"
        );
    }

    let mut logger = LoggerServiceClient::new(channel(setup.logger_port));
    logger
        .write_app(WriteAppRequest {
            svc: "itest".into(),
            level: Level::Warn as i32,
            event: "itest_event".into(),
            fields: [("answer".to_owned(), "42".to_owned())].into(),
            ts_unix_us: 0,
        })
        .await
        .unwrap();
    let app_log = setup.log_dir().join("app.log");
    let line = read(&app_log)
        .lines()
        .find(|l| l.contains("itest_event"))
        .map(str::to_owned)
        .expect("WriteApp line in app.log");
    assert!(line.starts_with("{\"ts\":\""), "{line}");
    assert!(line.contains("\"svc\":\"itest\",\"level\":\"WARN\",\"event\":\"itest_event\",\"fields\":{\"answer\":\"42\"}"), "{line}");
    // The host's own events reach app.log through the logger (forwarded asynchronously).
    let app = wait_for_text(
        &app_log,
        "\"event\":\"service_serving\"",
        Duration::from_secs(5),
    );
    assert!(app.contains("\"event\":\"host_starting\""), "{app}");

    let created = logger
        .new_dialog(NewDialogRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.dialog_id.len(), 16);
    let id = created.dialog_id;
    logger
        .write_dialog(dialog(&id, Role::User, "What is the capital of France?"))
        .await
        .unwrap();
    logger
        .write_dialog(dialog(&id, Role::Assistant, "Paris.\nIt is lovely."))
        .await
        .unwrap();
    let expected = "USER: What is the capital of France?\nASSISTANT: Paris.\\nIt is lovely.\n";
    assert_eq!(read(std::path::Path::new(&created.path)), expected);

    // Bad input: INVALID_ARGUMENT with a message, files untouched.
    let app_before = read(&app_log);
    let bad_dialogs = [
        dialog("../../etc/passwd", Role::User, "x"),
        dialog("ffffffffffffffff", Role::User, "unknown id"),
        dialog("NOT-HEX-ID-12345", Role::User, "x"),
        dialog(&id, Role::User, ""),
        dialog(&id, Role::User, "   "),
        dialog(&id, Role::Unspecified, "no role"),
        dialog(&id, Role::User, &"x".repeat(20_000)),
    ];
    for bad in bad_dialogs {
        let err = logger.write_dialog(bad.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}: {err}");
        assert!(!err.message().is_empty());
    }
    let mut wrong_role = dialog(&id, Role::User, "x");
    wrong_role.role = 7;
    assert_eq!(
        logger.write_dialog(wrong_role).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    for (svc, event) in [
        ("", "e"),
        ("Host!", "e"),
        ("host", ""),
        ("host", "two words"),
    ] {
        let err = logger
            .write_app(WriteAppRequest {
                svc: svc.into(),
                event: event.into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{svc:?}/{event:?}");
    }
    assert_eq!(read(std::path::Path::new(&created.path)), expected);
    let app_after = read(&app_log);
    assert!(
        !app_after[app_before.len()..].contains("\"svc\":\"Host!\""),
        "bad WriteApp must not be written"
    );

    // The admin API lists the logger and refuses unknown names, listing valid ones.
    let logger_info = service_info(setup.admin_port, "logger").await;
    assert_eq!(logger_info.state(), ServiceState::Serving);
    // isolation = process by default: the logger runs in its own worker process.
    assert_ne!(logger_info.pid, host.pid());
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", logger_info.pid)).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("worker\0--service\0logger"),
        "the logger's pid is a voicehost worker"
    );
    let mut admin = LoaderServiceClient::new(channel(setup.admin_port));
    let err = admin
        .stop_service(ServiceRequest {
            name: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .contains("logger, tts, llm, stt, kwd, wyoming"),
        "{err}"
    );

    let status = host.terminate();
    assert!(status.success(), "{status}: {}", host.output());
    let out = host.output();
    assert!(out.contains("service_stopped service=logger"), "{out}");
    assert!(listen_addrs(setup.logger_port).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_shutdown_stops_the_host() {
    let setup = Setup::new();
    let mut host = setup.spawn();
    host.wait_ready();
    let mut admin = LoaderServiceClient::new(channel(setup.admin_port));
    admin
        .shutdown(voicehost_proto::loader::v1::ShutdownRequest {})
        .await
        .unwrap();
    let status = host.wait_exit(Duration::from_secs(10)).expect("host exits");
    assert!(status.success(), "{}", host.output());
}
