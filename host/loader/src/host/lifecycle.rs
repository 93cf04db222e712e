//! Starting and stopping services: start (in the host or in a worker process) gated on
//! `grpc.health.v1` SERVING, stop with the configured timeout, and the shutdown order.

use std::time::Instant;

use voicehost_proto::loader::v1::ServiceState;

use super::health::wait_serving;
use super::{Host, ServiceError, Slot, SlotState, isolation_name, verify};
use crate::instance::{Running, WorkerProc};
use crate::service::Service;
use crate::slot::Isolation;
use crate::worker::LibInfo;

impl Host {
    /// Starts `service` and waits until it is SERVING over `grpc.health.v1`.
    pub async fn start(&self, service: Service) -> Result<(), ServiceError> {
        let slot = self.slot(service)?;
        if !slot.config.enabled {
            return Err(ServiceError::Disabled(service.name().to_owned()));
        }
        let mut state = slot.state.lock().await;
        if state.running.is_some() {
            return Ok(());
        }
        self.start_locked(slot, &mut state).await
    }

    /// Starts the slot's current library; on failure the slot is FAILED with the reason.
    pub async fn start_locked(
        &self,
        slot: &Slot,
        state: &mut SlotState,
    ) -> Result<(), ServiceError> {
        let result = self.try_start(slot, state).await;
        if let Err(e) = &result {
            state.state = ServiceState::Failed;
            state.last_error = e.to_string();
            tracing::error!(service = slot.config.service.name(), error = %e, "Service failed");
        }
        result
    }

    async fn try_start(&self, slot: &Slot, state: &mut SlotState) -> Result<(), ServiceError> {
        let name = slot.config.service.name();
        let path = state.library_path.clone();
        state.state = ServiceState::Starting;
        let started = Instant::now();
        tracing::info!(
            service = name,
            phase = slot.config.service.phase(),
            isolation = isolation_name(slot.config.isolation),
            "Service starting"
        );
        let start_error = |reason: String| ServiceError::Start {
            service: name.to_owned(),
            reason,
        };
        let mut running = match slot.config.isolation {
            Isolation::InProcess => {
                let library = match state.library.clone() {
                    Some(library) => library,
                    None => verify(&slot.config, &path)
                        .await?
                        .0
                        .ok_or_else(|| start_error("library not loaded".to_owned()))?,
                };
                let running =
                    Running::start_in_process(&library, &slot.config, &self.env, self.log)
                        .await
                        .map_err(start_error)?;
                state.info = Some(LibInfo::of(&library));
                state.library = Some(library);
                running
            }
            Isolation::Process => {
                let (proc, info) = WorkerProc::spawn(
                    &slot.config,
                    &path,
                    &self.env,
                    self.settings.stop_timeout,
                    self.log,
                )
                .await
                .map_err(start_error)?;
                state.info = Some(info);
                Running::Worker(proc)
            }
        };
        let port = slot.config.port;
        let gate = wait_serving(
            &self.env.bind_addr,
            port,
            &mut running,
            slot.config.start_timeout,
        )
        .await;
        state.running = Some(running);
        if let Err(reason) = gate {
            self.stop_locked(slot, state).await;
            return Err(ServiceError::Health {
                service: name.to_owned(),
                reason,
            });
        }
        state.state = ServiceState::Serving;
        state.serving_since = Some(Instant::now());
        state.last_error.clear();
        tracing::info!(
            service = name,
            port,
            pid = state.running.as_ref().map_or(0, Running::pid),
            ms = started.elapsed().as_millis() as u64,
            "Service serving"
        );
        Ok(())
    }

    /// Stops `service` if it runs; the supervisor leaves a stopped service alone.
    pub async fn stop(&self, service: Service) -> Result<(), ServiceError> {
        let slot = self.slot(service)?;
        let mut state = slot.state.lock().await;
        self.stop_locked(slot, &mut state).await;
        Ok(())
    }

    pub async fn stop_locked(&self, slot: &Slot, state: &mut SlotState) {
        let Some(running) = state.running.take() else {
            return;
        };
        let name = slot.config.service.name();
        let started = Instant::now();
        let result = running.stop(self.settings.stop_timeout).await;
        if state.state != ServiceState::Failed {
            state.state = ServiceState::Stopped;
        }
        match result {
            Ok(()) => tracing::info!(
                service = name,
                ms = started.elapsed().as_millis() as u64,
                "Service stopped"
            ),
            Err(e) => {
                state.last_error = e.clone();
                tracing::warn!(service = name, error = %e, "Service stop failed");
            }
        }
    }

    /// Stops every running service in reverse startup order (kwd, stt, llm, tts); runs
    /// `before_last` (the app log flush) and then stops the logger last.
    pub async fn stop_all(&self, before_last: impl std::future::Future<Output = ()>) {
        self.begin_shutdown();
        for slot in self
            .slots
            .iter()
            .rev()
            .filter(|s| s.config.service.phase() > 0)
        {
            let mut state = slot.state.lock().await;
            self.stop_locked(slot, &mut state).await;
        }
        before_last.await;
        for slot in self.slots.iter().filter(|s| s.config.service.phase() == 0) {
            let mut state = slot.state.lock().await;
            self.stop_locked(slot, &mut state).await;
        }
    }
}
