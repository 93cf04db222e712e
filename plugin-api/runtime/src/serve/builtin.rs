//! The built-in services' contents: server reflection over the plugin's descriptor sets,
//! and the task that copies [`HealthHandle`](super::HealthHandle)'s status into
//! `grpc.health.v1`.

use tokio::sync::watch;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use voicehost_plugin_api::abi::HealthStatus;

/// Reflection over the health descriptors, the plugin's sets, advertising `names` only.
pub(super) fn reflection(
    sets: &[&'static [u8]],
    names: &[&'static str],
) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for set in sets {
        builder = builder.register_encoded_file_descriptor_set(set);
    }
    for name in names {
        builder = builder.with_service_name(*name);
    }
    builder
}

/// Copies the plugin's health into the `grpc.health.v1` reporter, in order.
pub(super) async fn mirror_health(
    reporter: HealthReporter,
    names: Vec<&'static str>,
    mut status_rx: watch::Receiver<HealthStatus>,
) {
    loop {
        let status = match *status_rx.borrow_and_update() {
            HealthStatus::Serving => ServingStatus::Serving,
            _ => ServingStatus::NotServing,
        };
        reporter.set_service_status("", status).await;
        for name in &names {
            reporter.set_service_status(*name, status).await;
        }
        if status_rx.changed().await.is_err() {
            return;
        }
    }
}
