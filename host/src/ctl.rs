//! `voicehost ctl`: a command-line client of the admin API (LoaderService).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use tonic::transport::Endpoint;
use voicehost_proto::loader::v1::loader_service_client::LoaderServiceClient;
use voicehost_proto::loader::v1::{
    GetPidsRequest, ListServicesRequest, ReloadPluginRequest, ServiceInfo, ServiceRequest,
    ShutdownRequest,
};

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// Admin API address [default: 127.0.0.1 and `[loader] admin_port` of --config, else 5002].
    #[arg(long, global = true)]
    pub admin: Option<String>,
    /// Config file to read the admin port from.
    #[arg(long, global = true, default_value = "config/config.txt")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Every service: state, phase, version, isolation, pid, port, restarts, last error.
    Status,
    /// Start a service (also one marked failed).
    Start { name: String },
    /// Stop a service; the supervisor leaves it stopped.
    Stop { name: String },
    /// Stop and start a service.
    Restart { name: String },
    /// Hot-swap a service's plugin: the configured library again, or --path.
    Reload {
        name: String,
        /// The new plugin library.
        #[arg(long)]
        path: Option<PathBuf>,
        /// Swap even while a dialog is active.
        #[arg(long)]
        force: bool,
    },
    /// Process ids of the host and every running service.
    Pids,
    /// Stop every service and the host.
    Shutdown,
}

fn admin_addr(args: &CtlArgs) -> String {
    if let Some(a) = &args.admin {
        return a.clone();
    }
    let port = std::fs::read_to_string(&args.config)
        .ok()
        .and_then(|text| crate::config::Config::parse(&text, &args.config).ok())
        .map_or(5002, |c| c.loader.admin_port);
    format!("127.0.0.1:{port}")
}

fn state_name(info: &ServiceInfo) -> &'static str {
    use voicehost_proto::loader::v1::ServiceState as S;
    match info.state() {
        S::Unspecified => "?",
        S::Stopped => "stopped",
        S::Starting => "starting",
        S::Serving => "serving",
        S::NotServing => "not_serving",
        S::Restarting => "restarting",
        S::Failed => "FAILED",
        S::Disabled => "disabled",
    }
}

fn isolation_name(info: &ServiceInfo) -> &'static str {
    use voicehost_proto::loader::v1::Isolation as I;
    match info.isolation() {
        I::Process => "process",
        I::InProcess => "in_process",
        I::Unspecified => "?",
    }
}

/// The `status` table.
pub fn render_status(services: &[ServiceInfo]) -> String {
    let mut out = format!(
        "{:<7} {:<12} {:>5} {:<10} {:<10} {:>7} {:>5} {:>8}  {}\n",
        "SERVICE",
        "STATE",
        "PHASE",
        "VERSION",
        "ISOLATION",
        "PID",
        "PORT",
        "RESTARTS",
        "LAST ERROR"
    );
    for s in services {
        let pid = if s.pid == 0 {
            "-".to_owned()
        } else {
            s.pid.to_string()
        };
        out.push_str(&format!(
            "{:<7} {:<12} {:>5} {:<10} {:<10} {:>7} {:>5} {:>8}  {}\n",
            s.name,
            state_name(s),
            s.phase,
            if s.version.is_empty() {
                "-"
            } else {
                &s.version
            },
            isolation_name(s),
            pid,
            s.port,
            s.restarts,
            s.last_error
        ));
    }
    out
}

/// Runs `voicehost ctl …`.
pub fn main(args: CtlArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("voicehost ctl: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = admin_addr(&args);
    match runtime.block_on(run(&addr, args.command)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("voicehost ctl: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(addr: &str, command: CtlCommand) -> Result<String, String> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("bad admin address {addr:?}: {e}; use --admin HOST:PORT"))?
        .connect_timeout(Duration::from_secs(2));
    let channel = endpoint.connect().await.map_err(|_| {
        format!(
            "no voicehost is running at {addr} (connection failed); start it with \
             `voicehost run`, or pass --admin / --config for another admin port"
        )
    })?;
    let mut client = LoaderServiceClient::new(channel);
    let status = |e: tonic::Status| e.message().to_owned();
    let one = |info: ServiceInfo| render_status(&[info]);
    Ok(match command {
        CtlCommand::Status => {
            let list = client
                .list_services(ListServicesRequest {})
                .await
                .map_err(status)?;
            render_status(&list.into_inner().services)
        }
        CtlCommand::Start { name } => one(client
            .start_service(ServiceRequest { name })
            .await
            .map_err(status)?
            .into_inner()),
        CtlCommand::Stop { name } => one(client
            .stop_service(ServiceRequest { name })
            .await
            .map_err(status)?
            .into_inner()),
        CtlCommand::Restart { name } => one(client
            .restart_service(ServiceRequest { name })
            .await
            .map_err(status)?
            .into_inner()),
        CtlCommand::Reload { name, path, force } => {
            let library_path = match path {
                Some(p) => std::fs::canonicalize(&p)
                    .map_err(|e| format!("--path {}: {e}", p.display()))?
                    .display()
                    .to_string(),
                None => String::new(),
            };
            one(client
                .reload_plugin(ReloadPluginRequest {
                    name,
                    library_path,
                    force,
                })
                .await
                .map_err(status)?
                .into_inner())
        }
        CtlCommand::Pids => {
            let pids = client
                .get_pids(GetPidsRequest {})
                .await
                .map_err(status)?
                .into_inner();
            let mut out = format!("host {}\n", pids.host_pid);
            for s in pids.services {
                out.push_str(&format!("{} {}\n", s.name, s.pid));
            }
            out
        }
        CtlCommand::Shutdown => {
            client.shutdown(ShutdownRequest {}).await.map_err(status)?;
            "shutting down\n".to_owned()
        }
    })
}
