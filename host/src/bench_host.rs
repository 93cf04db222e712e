//! The assistant `voicehost bench` measures: a loaded [`Config`] as a
//! [`voicehost_bench::Assistant`], run in this process by [`run::run`]. The benchmark's
//! scenario (which keys it sets, and to what) is the bench crate's; this is only the
//! mapping onto the config.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;

use voicehost_bench::{Assistant, AssistantError};

use crate::config::Config;
use crate::run;
use crate::service::Service;

impl Assistant for Config {
    fn set_plugin_key(&mut self, service: Service, key: &str, value: &str) {
        Config::set_plugin_key(self, service, key, value);
    }

    fn set_log_dir(&mut self, dir: PathBuf) {
        self.system.log_dir = dir;
    }

    fn service_ports(&self) -> BTreeMap<Service, u16> {
        self.plugins.iter().map(|p| (p.service, p.port)).collect()
    }

    fn bind_addr(&self) -> IpAddr {
        self.loader.bind_addr
    }

    fn admin_port(&self) -> u16 {
        self.loader.admin_port
    }

    fn run(self) -> Pin<Box<dyn Future<Output = Result<(), AssistantError>> + Send>> {
        Box::pin(async move { run::run(self, None).await.map_err(AssistantError::from) })
    }
}
