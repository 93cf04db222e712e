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

/// Copies the plugin's health into the `grpc.health.v1` reporter, in order, from its
/// current status on. The caller awaits the first copy before the server answers:
/// tonic-health's reporter starts with the server (`""`) SERVING, which a host probing a
/// plugin that is still loading (or just failed to) must not see.
pub(super) async fn mirror_health(
    reporter: HealthReporter,
    names: Vec<&'static str>,
    mut status_rx: watch::Receiver<HealthStatus>,
) -> impl Future<Output = ()> {
    let first = *status_rx.borrow_and_update();
    publish(&reporter, &names, first).await;
    async move {
        while status_rx.changed().await.is_ok() {
            let status = *status_rx.borrow_and_update();
            publish(&reporter, &names, status).await;
        }
    }
}

/// Sets the server's (`""`) and every service's status to `status`.
async fn publish(reporter: &HealthReporter, names: &[&'static str], status: HealthStatus) {
    let status = match status {
        HealthStatus::Serving => ServingStatus::Serving,
        _ => ServingStatus::NotServing,
    };
    reporter.set_service_status("", status).await;
    for name in names {
        reporter.set_service_status(*name, status).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    /// The server's status as a client sees it.
    async fn status(client: &mut HealthClient<tonic::transport::Channel>) -> i32 {
        let request = HealthCheckRequest {
            service: String::new(),
        };
        match client.check(request).await {
            Ok(response) => response.into_inner().status,
            Err(e) => panic!("health check failed: {e}"),
        }
    }

    #[tokio::test]
    async fn a_loading_plugin_is_never_seen_serving() {
        let (reporter, service) = tonic_health::server::health_reporter();
        let (updates, status_rx) = watch::channel(HealthStatus::Starting);
        let mirror = mirror_health(reporter, vec!["voicehost.test.v1.Test"], status_rx).await;
        tokio::spawn(mirror);
        let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
            panic!("no loopback port");
        };
        let Ok(addr) = listener.local_addr() else {
            panic!("no address");
        };
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let Ok(channel) = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map(|e| e.connect_lazy())
        else {
            panic!("bad address");
        };
        let mut client = HealthClient::new(channel);
        // The very first answer, before the plugin reported anything: not serving.
        assert_eq!(status(&mut client).await, ServingStatus::NotServing as i32);
        updates.send_replace(HealthStatus::Serving);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while status(&mut client).await != ServingStatus::Serving as i32 {
            assert!(std::time::Instant::now() < deadline, "never SERVING");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        updates.send_replace(HealthStatus::NotServing);
        while status(&mut client).await != ServingStatus::NotServing as i32 {
            assert!(
                std::time::Instant::now() < deadline,
                "never NOT_SERVING again"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
