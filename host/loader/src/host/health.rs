//! A plugin's `grpc.health.v1`: the endpoint of its port, one health check, and the wait
//! for SERVING after a start.

use std::time::{Duration, Instant};

use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use voicehost_plugin_api::HealthStatus;

use crate::instance::Running;

pub fn endpoint(bind_addr: &str, port: u16) -> Endpoint {
    let host = if bind_addr.contains(':') {
        format!("[{bind_addr}]")
    } else {
        bind_addr.to_owned()
    };
    // The address is a validated IP, so the URI is always well-formed.
    Endpoint::from_shared(format!("http://{host}:{port}"))
        .unwrap_or_else(|_| Endpoint::from_static("http://127.0.0.1:1"))
        .connect_timeout(Duration::from_millis(500))
}

/// One `grpc.health.v1.Health/Check` on `port`: Ok when SERVING, else why not.
pub async fn check_health(
    client: &mut HealthClient<Channel>,
    timeout: Duration,
) -> Result<(), String> {
    let call = client.check(HealthCheckRequest {
        service: String::new(),
    });
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(resp)) if resp.get_ref().status == ServingStatus::Serving as i32 => Ok(()),
        Ok(Ok(resp)) => Err(format!("health status {:?}", resp.get_ref().status())),
        Ok(Err(status)) => Err(format!("health check failed: {}", status.message())),
        Err(_) => Err(format!(
            "health check got no answer within {} ms",
            timeout.as_millis()
        )),
    }
}

/// Polls `grpc.health.v1.Health/Check` on the plugin's port until SERVING. A plugin that
/// reports NOT_SERVING itself, or whose worker ends, fails at once with the reason.
pub(super) async fn wait_serving(
    bind_addr: &str,
    port: u16,
    running: &mut Running,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut client = HealthClient::new(endpoint(bind_addr, port).connect_lazy());
    loop {
        if let Some(why) = running.exited() {
            return Err(format!("its worker process {why}"));
        }
        let report = running.health();
        if report.status == HealthStatus::NotServing {
            return Err(format!("reported NOT_SERVING: {}", report.detail));
        }
        let last = match check_health(&mut client, Duration::from_secs(1)).await {
            Ok(()) => return Ok(()),
            Err(why) => why,
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "not SERVING within {} ms on port {port} ({last}; plugin says {:?} {})",
                timeout.as_millis(),
                report.status,
                report.detail
            ));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
