//! Loopback-only binding, with errors that name the port and the process holding it.

use std::fs;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};

use voicehost_plugin_api::abi::{ErrorKind, PluginError};

/// Parses `addr` and refuses anything that is not a loopback address: plugin services are
/// reachable from this machine only.
pub fn loopback_addr(addr: &str) -> Result<IpAddr, PluginError> {
    let ip: IpAddr = addr.trim().parse().map_err(|_| {
        PluginError::new(
            ErrorKind::Bind,
            format!("bind address {addr:?} is not an IP address; use 127.0.0.1"),
        )
    })?;
    if !ip.is_loopback() {
        return Err(PluginError::new(
            ErrorKind::Bind,
            format!(
                "refusing to bind {ip}: voicehost services listen on loopback only \
                 (127.0.0.1 or ::1), so audio and transcripts never leave this machine"
            ),
        ));
    }
    Ok(ip)
}

/// Binds a listening socket on a loopback address. A port in use is an error naming the
/// port and, where /proc tells, the process holding it.
pub fn bind_loopback(ip: IpAddr, port: u16) -> Result<TcpListener, PluginError> {
    let ip = loopback_addr(&ip.to_string())?;
    let addr = SocketAddr::new(ip, port);
    TcpListener::bind(addr).map_err(|e| {
        let message = if e.kind() == io::ErrorKind::AddrInUse {
            let holder = port_holder(port)
                .map(|(pid, name)| format!(" by pid {pid} ({name})"))
                .unwrap_or_default();
            format!(
                "port {port} on {ip} is already in use{holder}; stop that process or choose \
                 another port for this service in the config file"
            )
        } else {
            format!("cannot listen on {addr}: {e}")
        };
        PluginError::new(ErrorKind::Bind, message)
    })
}

/// A TCP socket in LISTEN state, from /proc/net/tcp or /proc/net/tcp6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListeningSocket {
    /// Local address as the kernel prints it, hex: `0100007F` is 127.0.0.1.
    pub addr_hex: String,
    /// Socket inode, to find the owning process under /proc/*/fd.
    pub inode: String,
}

/// Sockets listening on TCP `port` (Linux; empty where /proc is unavailable).
pub fn listening_sockets(port: u16) -> Vec<ListeningSocket> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .flat_map(|table| parse_listening(&table, port))
        .collect()
}

/// Finds the process listening on TCP `port`, from /proc (Linux). None when unknown.
pub fn port_holder(port: u16) -> Option<(u32, String)> {
    let inodes: Vec<String> = listening_sockets(port)
        .into_iter()
        .map(|s| s.inode)
        .collect();
    if inodes.is_empty() {
        return None;
    }
    for proc_entry in fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = proc_entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(fds) = fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            if inodes.iter().any(|i| target == format!("socket:[{i}]")) {
                let name = fs::read_to_string(proc_entry.path().join("comm"))
                    .map(|s| s.trim().to_owned())
                    .unwrap_or_else(|_| "unknown".to_owned());
                return Some((pid, name));
            }
        }
    }
    None
}

/// LISTEN rows (st = 0A) on `port` of a /proc/net/tcp table.
fn parse_listening(table: &str, port: u16) -> Vec<ListeningSocket> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (addr, local_port) = cols.get(1)?.rsplit_once(':')?;
            let state = cols.get(3)?;
            let inode = cols.get(9)?;
            let local_port = u16::from_str_radix(local_port, 16).ok()?;
            (local_port == port && *state == "0A").then(|| ListeningSocket {
                addr_hex: addr.to_owned(),
                inode: (*inode).to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_non_loopback() {
        assert!(loopback_addr("127.0.0.1").is_ok());
        assert!(loopback_addr("::1").is_ok());
        let err = loopback_addr("0.0.0.0").unwrap_err();
        assert!(err.message.contains("loopback only"), "{err}");
        assert!(loopback_addr("example.org").is_err());
    }

    #[test]
    fn port_in_use_names_port_and_holder() {
        let first = bind_loopback("127.0.0.1".parse().unwrap(), 0).unwrap();
        let port = first.local_addr().unwrap().port();
        let err = bind_loopback("127.0.0.1".parse().unwrap(), port).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Bind);
        assert!(err.message.contains(&format!("port {port}")), "{err}");
        assert!(
            err.message.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
    }

    #[test]
    fn parses_proc_net_tcp() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1389 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0 100 0 0 10 0\n   1: 0100007F:1389 0100007F:C000 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0 100 0 0 10 0\n";
        assert_eq!(
            parse_listening(table, 5001),
            vec![ListeningSocket {
                addr_hex: "0100007F".to_owned(),
                inode: "4242".to_owned()
            }]
        );
        assert!(parse_listening(table, 5002).is_empty());
    }
}
