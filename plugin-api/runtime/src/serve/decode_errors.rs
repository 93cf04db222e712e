//! The tower wrapper [`Services::add`](super::Services::add) puts around every service:
//! tonic's INTERNAL for a request it cannot decode becomes INVALID_ARGUMENT.

use std::convert::Infallible;

use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::{Request, Response};
use tonic::server::NamedService;

/// A request a service cannot decode (e.g. a `string` field that is not UTF-8) is the
/// client's mistake: tonic reports it as INTERNAL; this reports INVALID_ARGUMENT instead,
/// with tonic's message naming the field. (Unary calls and the first message of a stream;
/// a later bad stream message ends the stream with tonic's code.)
#[derive(Debug, Clone)]
pub(super) struct DecodeErrorsAreInvalidArgument<S>(pub(super) S);

impl<S: NamedService> NamedService for DecodeErrorsAreInvalidArgument<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

impl<S> Service<Request<Body>> for DecodeErrorsAreInvalidArgument<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Body>, Infallible>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let call = self.0.call(req);
        Box::pin(async move {
            let mut resp = call.await?;
            let headers = resp.headers_mut();
            let internal = headers.get("grpc-status").is_some_and(|v| v == "13");
            let decode = headers
                .get("grpc-message")
                .and_then(|m| m.to_str().ok())
                .is_some_and(|m| m.starts_with("failed%20to%20decode"));
            if internal && decode {
                headers.insert(
                    "grpc-status",
                    tonic::codegen::http::HeaderValue::from_static("3"),
                );
            }
            Ok(resp)
        })
    }
}
