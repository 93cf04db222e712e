//! Advertises the server as `_wyoming._tcp.local.` by mDNS, so Home Assistant finds it
//! without an address typed in. Only when the server is bound beyond loopback: a loopback
//! server is for this machine alone and announces nothing on the network.

use std::net::IpAddr;

use mdns_sd::{ServiceDaemon, ServiceInfo};

/// The service type Home Assistant browses for.
pub const SERVICE_TYPE: &str = "_wyoming._tcp.local.";

/// A registration; unregistered when dropped.
pub struct Advert {
    daemon: ServiceDaemon,
    fullname: String,
}

impl std::fmt::Debug for Advert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Advert")
            .field("fullname", &self.fullname)
            .finish_non_exhaustive()
    }
}

/// `voicehost-<host name>` unless `name` is set.
pub fn instance_name(name: &str) -> String {
    if !name.trim().is_empty() {
        return name.trim().to_owned();
    }
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("voicehost-{host}")
}

/// Registers `instance` for `bind:port`; an unspecified `bind` (0.0.0.0, ::) advertises
/// every address of the machine, kept up to date.
pub fn advertise(instance: &str, bind: IpAddr, port: u16) -> Result<Advert, String> {
    let daemon = ServiceDaemon::new().map_err(|e| format!("cannot start mDNS: {e}"))?;
    let host = format!("{instance}.local.");
    let properties: &[(&str, &str)] = &[];
    let info = if bind.is_unspecified() {
        ServiceInfo::new(SERVICE_TYPE, instance, &host, "", port, properties)
            .map(ServiceInfo::enable_addr_auto)
    } else {
        ServiceInfo::new(SERVICE_TYPE, instance, &host, bind, port, properties)
    }
    .map_err(|e| format!("bad mDNS record for {instance:?}: {e}"))?;
    let fullname = info.get_fullname().to_owned();
    daemon
        .register(info)
        .map_err(|e| format!("cannot advertise {fullname}: {e}"))?;
    Ok(Advert { daemon, fullname })
}

impl Drop for Advert {
    fn drop(&mut self) {
        let _ = self.daemon.unregister(&self.fullname);
        let _ = self.daemon.shutdown();
    }
}
