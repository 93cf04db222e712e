//! Ports and gRPC: free ports, channels to 127.0.0.1, what listens and serves on a port
//! (sockets, health, the admin API's service list) and the worker processes behind it.

use std::fs;
use std::net::TcpListener;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use voicehost_proto::loader::v1::loader_service_client::LoaderServiceClient;
use voicehost_proto::loader::v1::{ListServicesRequest, ServiceInfo};

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    // The kernel may give the same free port twice in a row once its listener is gone; a
    // port is handed out once per test process (a CI run gave [stt] the [logger]'s).
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A lazily connecting gRPC channel to 127.0.0.1:`port`.
pub fn channel(port: u16) -> Channel {
    Endpoint::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect_lazy()
}

/// Local addresses of TCP sockets in LISTEN state on `port`, as the kernel's hex
/// (`0100007F` is 127.0.0.1).
pub fn listen_addrs(port: u16) -> Vec<String> {
    voicehost_plugin_runtime::net::listening_sockets(port)
        .into_iter()
        .map(|s| s.addr_hex)
        .collect()
}

/// Whether `grpc.health.v1.Health/Check` (overall, or for `service`) on `port` says SERVING.
pub async fn serving(port: u16, service: &str) -> bool {
    let mut health = HealthClient::new(channel(port));
    health
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .is_ok_and(|r| r.get_ref().status() == ServingStatus::Serving)
}

/// One service's entry from the admin API's `ListServices`.
pub async fn service_info(admin_port: u16, name: &str) -> ServiceInfo {
    let mut admin = LoaderServiceClient::new(channel(admin_port));
    let services = admin
        .list_services(ListServicesRequest {})
        .await
        .unwrap()
        .into_inner()
        .services;
    services
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("ListServices has no {name}"))
}

/// Processes whose command line holds `voicehost`, `worker` and `--port <port>`.
pub fn workers_on_port(port: u16) -> Vec<u32> {
    let needle = "worker\0--service";
    let port_arg = format!("--port\0{port}\0");
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    let c = String::from_utf8_lossy(&c);
                    c.contains(needle) && c.contains(&port_arg)
                })
                .unwrap_or(false)
        })
        .collect()
}
