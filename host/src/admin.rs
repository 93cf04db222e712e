//! The admin API (`voicehost.loader.v1.LoaderService`), served on `[loader] admin_port`
//! with the same serve helper as the plugins (health, reflection, loopback only).

use std::sync::Arc;

use tokio::sync::watch;
use tonic::{Request, Response, Status};
use voicehost_plugin_api::PluginError;
use voicehost_plugin_runtime::{GrpcServer, PluginConfig, PluginContext};
use voicehost_proto::loader::v1::loader_service_server::{LoaderService, LoaderServiceServer};
use voicehost_proto::loader::v1::{
    GetPidsRequest, GetPidsResponse, ListServicesRequest, ListServicesResponse,
    ReloadPluginRequest, ServiceInfo, ServicePid, ServiceRequest, ShutdownRequest,
    ShutdownResponse,
};

use crate::host::{Host, ServiceError};
use crate::service::Service;

struct Admin {
    host: Arc<Host>,
    shutdown: watch::Sender<bool>,
}

/// Starts the admin API on `port` (`[loader] admin_port`) at the host's bind address.
/// `shutdown` is set to true by the `Shutdown` RPC.
pub fn serve(
    host: Arc<Host>,
    port: u16,
    shutdown: watch::Sender<bool>,
) -> Result<GrpcServer, PluginError> {
    let settings = host.settings();
    let ctx = PluginContext::new(
        "loader",
        PluginConfig::default(),
        &settings.bind_addr.to_string(),
        port,
        settings.log_dir.clone(),
        settings.models_dir.clone(),
    )?;
    GrpcServer::builder(&ctx)
        .descriptors(voicehost_proto::FILE_DESCRIPTOR_SET)
        .start(move |services, health| {
            services.add(LoaderServiceServer::new(Admin { host, shutdown }));
            health.set_serving();
            Ok(())
        })
}

fn service_of(name: &str) -> Result<Service, Status> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Status::invalid_argument(
            "service name is empty; valid services: logger, tts, llm, stt, kwd, wyoming",
        ));
    }
    name.parse()
        .map_err(|_| ServiceError::Unknown(name.to_owned()).into())
}

#[tonic::async_trait]
impl LoaderService for Admin {
    async fn list_services(
        &self,
        _: Request<ListServicesRequest>,
    ) -> Result<Response<ListServicesResponse>, Status> {
        Ok(Response::new(ListServicesResponse {
            services: self.host.list().await,
        }))
    }

    async fn start_service(
        &self,
        req: Request<ServiceRequest>,
    ) -> Result<Response<ServiceInfo>, Status> {
        let service = service_of(&req.get_ref().name)?;
        self.host.start(service).await?;
        Ok(Response::new(self.host.info(service).await?))
    }

    async fn stop_service(
        &self,
        req: Request<ServiceRequest>,
    ) -> Result<Response<ServiceInfo>, Status> {
        let service = service_of(&req.get_ref().name)?;
        self.host.stop(service).await?;
        Ok(Response::new(self.host.info(service).await?))
    }

    async fn restart_service(
        &self,
        req: Request<ServiceRequest>,
    ) -> Result<Response<ServiceInfo>, Status> {
        let service = service_of(&req.get_ref().name)?;
        self.host.stop(service).await?;
        self.host.start(service).await?;
        Ok(Response::new(self.host.info(service).await?))
    }

    async fn reload_plugin(
        &self,
        req: Request<ReloadPluginRequest>,
    ) -> Result<Response<ServiceInfo>, Status> {
        let req = req.into_inner();
        let service = service_of(&req.name)?;
        let path = req.library_path.trim();
        let path = if path.is_empty() {
            None
        } else {
            let p = std::path::PathBuf::from(path);
            if !p.is_file() {
                return Err(Status::invalid_argument(format!(
                    "library_path {path:?} is not a file; give the path of a built plugin .so"
                )));
            }
            Some(p)
        };
        let info = crate::swap::reload(&self.host, service, path, req.force).await?;
        Ok(Response::new(info))
    }

    async fn get_pids(
        &self,
        _: Request<GetPidsRequest>,
    ) -> Result<Response<GetPidsResponse>, Status> {
        let services = self
            .host
            .list()
            .await
            .into_iter()
            .filter(|s| s.pid != 0)
            .map(|s| ServicePid {
                name: s.name,
                pid: s.pid,
            })
            .collect();
        Ok(Response::new(GetPidsResponse {
            host_pid: std::process::id(),
            services,
        }))
    }

    async fn shutdown(
        &self,
        _: Request<ShutdownRequest>,
    ) -> Result<Response<ShutdownResponse>, Status> {
        tracing::info!("Shutdown requested over the admin API");
        self.shutdown.send_replace(true);
        Ok(Response::new(ShutdownResponse {}))
    }
}
