//! What the benchmark needs of the assistant it measures, so that this crate does not
//! depend on the `voicehost` crate (which depends on it for `voicehost bench`): the
//! `voicehost` crate implements [`Assistant`] for its loaded `Config`.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;

use voicehost_loader::service::Service;

/// Why the assistant's run ended with an error.
pub type AssistantError = Box<dyn std::error::Error + Send + Sync>;

/// The assistant under test: a loaded config that the benchmark adjusts (its scenario's
/// plugin keys, where the logs go), reads the addresses of, and then runs in this process.
pub trait Assistant: Send + 'static {
    /// Sets `key` to `value` in `service`'s plugin section, replacing any value it had
    /// (nothing happens if the config has no such plugin).
    fn set_plugin_key(&mut self, service: Service, key: &str, value: &str);

    /// Sets `[system] log_dir`, where the assistant writes its `app.log`.
    fn set_log_dir(&mut self, dir: PathBuf);

    /// The port each plugin of the config serves its gRPC API on.
    fn service_ports(&self) -> BTreeMap<Service, u16>;

    /// `[loader] bind_addr`: the address the plugins and the admin API serve on.
    fn bind_addr(&self) -> IpAddr;

    /// `[loader] admin_port`: the port of the loader's admin API.
    fn admin_port(&self) -> u16;

    /// Runs the assistant until the admin API's `Shutdown` (or a signal).
    fn run(self) -> Pin<Box<dyn Future<Output = Result<(), AssistantError>> + Send>>;
}
