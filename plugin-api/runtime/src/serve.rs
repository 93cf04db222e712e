//! The one gRPC serve helper every plugin uses.
//!
//! [`GrpcServer::builder`] binds the plugin's loopback port synchronously (so a port in use
//! is reported by `start()`), then runs a tonic server on a dedicated thread with its own
//! tokio runtime. Every server gets `grpc.health.v1` and server reflection (v1 and v1alpha,
//! so `grpcurl -plaintext 127.0.0.1:PORT list` works without proto files), a tracing span
//! per request, HTTP/2 keep-alive, a per-connection concurrency limit, tonic's 4 MiB
//! decoding limit (see [`MAX_DECODING_MESSAGE_BYTES`]) and graceful shutdown with a bound.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use abi_stable::std_types::RString;
use tokio::sync::watch;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::{Request, Response};
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::server::TcpIncoming;

use crate::context::PluginContext;
use crate::net;
use builtin::{mirror_health, reflection};
use decode_errors::DecodeErrorsAreInvalidArgument;
use voicehost_plugin_api::abi::{ErrorKind, HealthReport, HealthStatus, PluginError};
use voicehost_plugin_api::panic_message;

mod builtin;
mod decode_errors;

/// Largest request message a service decodes (tonic's default, stated here so plugins
/// that set their own limit use the same figure).
pub const MAX_DECODING_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Requests served concurrently per client connection.
const CONCURRENCY_PER_CONNECTION: usize = 64;

/// After a stop is requested, how long open streams get to finish before they are cut.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// The services a plugin registers in [`ServerBuilder::start`].
#[derive(Debug, Default)]
pub struct Services {
    routes: RoutesBuilder,
    names: Vec<&'static str>,
}

impl Services {
    /// Adds a generated tonic server (e.g. `LoggerServiceServer::new(svc)`).
    pub fn add<S>(&mut self, svc: S) -> &mut Self
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(DecodeErrorsAreInvalidArgument(svc));
        self
    }
}

/// Sets the health a plugin reports, both over `grpc.health.v1` (for the overall server,
/// `""`, and each registered service) and through the ABI `health()` call.
#[derive(Debug, Clone)]
pub struct HealthHandle {
    state: Arc<Mutex<HealthReport>>,
    updates: watch::Sender<HealthStatus>,
}

impl HealthHandle {
    fn new() -> (Self, watch::Receiver<HealthStatus>) {
        let (updates, rx) = watch::channel(HealthStatus::Starting);
        let state = Arc::new(Mutex::new(HealthReport {
            status: HealthStatus::Starting,
            detail: RString::from("starting"),
        }));
        (Self { state, updates }, rx)
    }

    /// Reports SERVING.
    pub fn set_serving(&self) {
        self.set(HealthStatus::Serving, "");
    }

    /// Reports NOT_SERVING with the reason (shown by the host and in app.log).
    pub fn set_not_serving(&self, reason: impl Into<String>) {
        self.set(HealthStatus::NotServing, reason);
    }

    fn set(&self, status: HealthStatus, detail: impl Into<String>) {
        if let Ok(mut state) = self.state.lock() {
            *state = HealthReport {
                status,
                detail: RString::from(detail.into()),
            };
        }
        self.updates.send_replace(status);
    }

    /// The current report.
    pub fn report(&self) -> HealthReport {
        self.state
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|_| HealthReport {
                status: HealthStatus::NotServing,
                detail: RString::from("health state poisoned"),
            })
    }
}

/// Configures a [`GrpcServer`].
#[derive(Debug)]
pub struct ServerBuilder {
    service: String,
    addr: SocketAddr,
    descriptor_sets: Vec<&'static [u8]>,
    worker_threads: usize,
}

impl ServerBuilder {
    /// Registers an encoded `FileDescriptorSet` for reflection (e.g.
    /// `voicehost_proto::FILE_DESCRIPTOR_SET`). Only the services added in `start` are
    /// advertised.
    pub fn descriptors(mut self, encoded: &'static [u8]) -> Self {
        self.descriptor_sets.push(encoded);
        self
    }

    /// Tokio worker threads of the plugin's runtime (default 2).
    pub fn worker_threads(mut self, n: usize) -> Self {
        self.worker_threads = n.max(1);
        self
    }

    /// Binds the port, starts the runtime thread, runs `setup` on it (inside the runtime,
    /// so it may spawn tasks) and starts serving. Returns once the port is accepting
    /// connections; health stays NOT_SERVING until the plugin calls
    /// [`HealthHandle::set_serving`].
    pub fn start<F>(self, setup: F) -> Result<GrpcServer, PluginError>
    where
        F: FnOnce(&mut Services, &HealthHandle) -> Result<(), PluginError> + Send + 'static,
    {
        let listener = net::bind_loopback(self.addr.ip(), self.addr.port())?;
        let addr = listener.local_addr().map_err(|e| {
            PluginError::new(ErrorKind::Bind, format!("cannot read bound address: {e}"))
        })?;
        listener.set_nonblocking(true).map_err(|e| {
            PluginError::new(ErrorKind::Bind, format!("cannot configure {addr}: {e}"))
        })?;

        let (ready_tx, ready_rx) = std_mpsc::channel::<Result<HealthHandle, PluginError>>();
        let (stop_tx, stop_rx) = watch::channel(false);
        let service = self.service.clone();
        let thread = std::thread::Builder::new()
            .name(format!("vh-{service}"))
            .spawn(move || run_server(self, listener, setup, ready_tx, stop_rx))
            .map_err(|e| PluginError::internal(format!("cannot spawn server thread: {e}")))?;

        let health = match ready_rx.recv() {
            Ok(Ok(health)) => health,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(PluginError::internal(format!(
                    "{service} server thread ended during setup"
                )));
            }
        };
        tracing::info!(service = %service, %addr, "gRPC server listening");
        Ok(GrpcServer {
            service,
            addr,
            health,
            stop_tx,
            thread: Some(thread),
        })
    }
}

/// The connections `listener` accepts, each with TCP_NODELAY set. The server builder's
/// `tcp_nodelay` does not reach connections from an incoming stream; with Nagle's algorithm
/// on, a small write behind one not yet acknowledged (a second reply on the connection, a
/// stream's next message) waited for the client's delayed ACK: 40 ms on Linux.
fn incoming(listener: tokio::net::TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

fn run_server<F>(
    builder: ServerBuilder,
    listener: std::net::TcpListener,
    setup: F,
    ready_tx: std_mpsc::Sender<Result<HealthHandle, PluginError>>,
    mut stop_rx: watch::Receiver<bool>,
) where
    F: FnOnce(&mut Services, &HealthHandle) -> Result<(), PluginError> + Send + 'static,
{
    let service = builder.service.clone();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(builder.worker_threads)
        .thread_name(format!("vh-{service}-rt"))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready_tx.send(Err(PluginError::internal(format!(
                "cannot build tokio runtime: {e}"
            ))));
            return;
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready_tx.send(Err(PluginError::new(ErrorKind::Bind, e.to_string())));
                return;
            }
        };
        let (health, status_rx) = HealthHandle::new();
        let mut services = Services::default();
        let setup_result = catch_unwind(AssertUnwindSafe(|| setup(&mut services, &health)))
            .unwrap_or_else(|p| {
                Err(PluginError::new(
                    ErrorKind::Panic,
                    format!("plugin panicked in server setup: {}", panic_message(&*p)),
                ))
            });
        if let Err(e) = setup_result {
            let _ = ready_tx.send(Err(e));
            return;
        }

        let (reporter, health_service) = tonic_health::server::health_reporter();
        let mut names = services.names.clone();
        names.push(tonic_health::pb::health_server::HealthServer::<()>::NAME);
        let mirror = mirror_health(reporter, services.names.clone(), status_rx).await;
        tokio::spawn(mirror);

        names.push("grpc.reflection.v1.ServerReflection");
        names.push("grpc.reflection.v1alpha.ServerReflection");
        let sets = &builder.descriptor_sets;
        let reflection = reflection(sets, &names)
            .build_v1()
            .and_then(|v1| Ok((v1, reflection(sets, &names).build_v1alpha()?)));
        let (reflection_v1, reflection_v1alpha) = match reflection {
            Ok(r) => r,
            Err(e) => {
                let _ = ready_tx.send(Err(PluginError::internal(format!(
                    "bad descriptor set for reflection: {e}"
                ))));
                return;
            }
        };

        let mut routes = services.routes;
        routes
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha);
        let trace_service = service.clone();
        let server = tonic::transport::Server::builder()
            .concurrency_limit_per_connection(CONCURRENCY_PER_CONNECTION)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .trace_fn(move |req| {
                tracing::debug_span!("grpc", service = %trace_service, path = %req.uri().path())
            })
            .add_routes(routes.routes());

        let _ = ready_tx.send(Ok(health.clone()));
        let mut drain_rx = stop_rx.clone();
        let shutdown = async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        };
        let serve = server.serve_with_incoming_shutdown(incoming(listener), shutdown);
        let cut_off = async move {
            let _ = drain_rx.wait_for(|stop| *stop).await;
            tokio::time::sleep(DRAIN_GRACE).await;
        };
        tokio::select! {
            result = serve => {
                if let Err(e) = result {
                    tracing::error!(service = %service, error = %e, "gRPC server failed");
                    health.set_not_serving(format!("gRPC server failed: {e}"));
                }
            }
            () = cut_off => {
                tracing::debug!(service = %service, "Open streams cut after drain grace");
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
}

/// A running gRPC server on its own thread and tokio runtime.
#[derive(Debug)]
pub struct GrpcServer {
    service: String,
    addr: SocketAddr,
    health: HealthHandle,
    stop_tx: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl GrpcServer {
    /// Starts configuring a server for the plugin described by `ctx`.
    pub fn builder(ctx: &PluginContext) -> ServerBuilder {
        ServerBuilder {
            service: ctx.service.clone(),
            addr: SocketAddr::new(ctx.bind_addr, ctx.port),
            descriptor_sets: Vec::new(),
            worker_threads: 2,
        }
    }

    /// The address actually bound (useful with port 0 in tests).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Handle to set the reported health.
    pub fn health(&self) -> &HealthHandle {
        &self.health
    }

    /// Health as reported through the ABI.
    pub fn report(&self) -> HealthReport {
        self.health.report()
    }

    /// Stops accepting, lets open calls drain briefly, shuts the runtime down and joins the
    /// thread, waiting at most `timeout`. Idempotent.
    pub fn stop(&mut self, timeout: Duration) -> Result<(), PluginError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        self.health.set_not_serving("stopping");
        self.stop_tx.send_replace(true);
        let deadline = Instant::now() + timeout;
        while !thread.is_finished() {
            if Instant::now() >= deadline {
                self.thread = Some(thread);
                return Err(PluginError::new(
                    ErrorKind::Timeout,
                    format!(
                        "{} did not stop within {} ms",
                        self.service,
                        timeout.as_millis()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = thread.join();
        tracing::info!(service = %self.service, "gRPC server stopped");
        Ok(())
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        // A plugin dropped without stop(): never leave a thread serving a stale port.
        let _ = self.stop(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt as _;

    #[tokio::test]
    async fn accepted_connections_send_small_writes_at_once() {
        let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
            panic!("no loopback port");
        };
        let Ok(addr) = listener.local_addr() else {
            panic!("no address");
        };
        let mut accepted = super::incoming(listener);
        let client = tokio::net::TcpStream::connect(addr).await;
        assert!(client.is_ok(), "cannot connect: {client:?}");
        match accepted.next().await {
            Some(Ok(stream)) => assert!(
                stream.nodelay().unwrap_or(false),
                "TCP_NODELAY is off on an accepted connection"
            ),
            other => panic!("no connection accepted: {other:?}"),
        }
    }
}
