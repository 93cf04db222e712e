//! What the admin API shows for a slot, and the names of the isolation modes.

use voicehost_plugin_api::HealthStatus;
use voicehost_proto::loader::v1::{Isolation as ProtoIsolation, ServiceInfo, ServiceState};

use super::{Slot, SlotState};
use crate::instance::Running;
use crate::slot::Isolation;

/// What `ListServices` shows for one slot.
pub fn info_of(slot: &Slot, state: &SlotState) -> ServiceInfo {
    let status = match (&state.running, state.state) {
        _ if !slot.config.enabled => ServiceState::Disabled,
        (Some(running), ServiceState::Serving) => match running.health().status {
            HealthStatus::Serving => ServiceState::Serving,
            HealthStatus::Starting => ServiceState::Starting,
            HealthStatus::NotServing => ServiceState::NotServing,
            HealthStatus::Stopped => ServiceState::Stopped,
        },
        (_, s) => s,
    };
    let info = state.info.clone().unwrap_or_default();
    ServiceInfo {
        name: slot.config.service.name().to_owned(),
        state: status as i32,
        phase: u32::from(slot.config.service.phase()),
        version: info.version,
        library_path: state.library_path.display().to_string(),
        library_sha256: state.sha256.clone(),
        isolation: match slot.config.isolation {
            Isolation::Process => ProtoIsolation::Process,
            Isolation::InProcess => ProtoIsolation::InProcess,
        } as i32,
        port: u32::from(slot.config.port),
        restarts: state.restarts,
        last_error: state.last_error.clone(),
        pid: state.running.as_ref().map_or(0, Running::pid),
        proto_package: info.proto_package,
        features: info.features,
    }
}

pub fn isolation_name(isolation: Isolation) -> &'static str {
    match isolation {
        Isolation::Process => "process",
        Isolation::InProcess => "in_process",
    }
}
