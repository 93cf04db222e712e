//! The two stream mechanisms every service needs, written once.
//!
//! - [`forward`]: a server-streaming RPC fed from a `tokio::sync::broadcast` channel — a
//!   spawned task, a bounded `mpsc`, a `ReceiverStream`; a failed send means the client left.
//! - [`Resubscribe`]: a client that keeps a server stream open across restarts of the
//!   service behind it — it reopens the stream after a pause when the stream fails or ends,
//!   and says what happened ([`Follow`]) so the caller can report it.
//! - [`dial`]: a loopback channel, connected before it is returned, with a short connect timeout, for peers that
//!   are addressed by `host:port`.

use std::future::Future;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

/// What [`forward`]'s step function makes of one broadcast item.
#[derive(Debug)]
pub enum Step<U> {
    /// Send this to the client.
    Send(U),
    /// Send this, then end the stream.
    Last(U),
    /// Nothing for this client.
    Skip,
    /// End the stream.
    End,
}

/// What to do when a client falls behind the broadcast channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag {
    /// Go on with the newest items (events, where a gap is harmless or visible in `seq`).
    Skip,
    /// Send RESOURCE_EXHAUSTED naming the gap and end the stream (audio, where a gap would
    /// be heard as a glitch the client did not notice).
    Drop,
}

/// Streams `rx` to a gRPC client: each item goes through `step`, at most `capacity` wait
/// for the client. The task ends when the client leaves, the channel closes, or `step`
/// says so.
pub fn forward<T, U>(
    mut rx: broadcast::Receiver<T>,
    capacity: usize,
    lag: Lag,
    mut step: impl FnMut(T) -> Step<U> + Send + 'static,
) -> ReceiverStream<Result<U, Status>>
where
    T: Clone + Send + 'static,
    U: Send + 'static,
{
    let (tx, out) = tokio::sync::mpsc::channel(capacity.max(1));
    tokio::spawn(async move {
        loop {
            let item = match rx.recv().await {
                Ok(item) => item,
                Err(RecvError::Lagged(n)) => match lag {
                    Lag::Skip => continue,
                    Lag::Drop => {
                        let _ = tx
                            .send(Err(Status::resource_exhausted(format!(
                                "this subscriber fell {n} items behind and was dropped; reconnect"
                            ))))
                            .await;
                        return;
                    }
                },
                Err(RecvError::Closed) => return,
            };
            let (message, end) = match step(item) {
                Step::Send(m) => (Some(m), false),
                Step::Last(m) => (Some(m), true),
                Step::Skip => (None, false),
                Step::End => (None, true),
            };
            if let Some(m) = message
                && tx.send(Ok(m)).await.is_err()
            {
                return; // the client left
            }
            if end {
                return;
            }
        }
    });
    ReceiverStream::new(out)
}

/// What [`Resubscribe::next`] saw.
#[derive(Debug)]
pub enum Follow<T> {
    /// The stream is (again) open.
    Connected,
    /// One message of it.
    Item(T),
    /// The open stream failed or ended, with why; the next call reopens it after a pause.
    Lost(String),
    /// Opening it failed, with why; the next call tries again after a pause.
    Unavailable(String),
}

/// A server stream kept open across restarts of its service.
///
/// `open` opens the stream (dial, call the RPC); between failed attempts [`Self::next`]
/// waits `first_retry`, doubling up to `max_retry`, and back to `first_retry` once a stream
/// stands.
#[derive(Debug)]
pub struct Resubscribe<T, Open> {
    open: Open,
    stream: Option<Streaming<T>>,
    first_retry: Duration,
    max_retry: Duration,
    retry: Duration,
    /// Whether the next open must wait first (it failed or was lost before).
    pause: bool,
}

impl<T, Open, Fut> Resubscribe<T, Open>
where
    Open: FnMut() -> Fut,
    Fut: Future<Output = Result<Streaming<T>, String>>,
{
    /// A follower that waits a fixed `retry` between attempts.
    pub fn new(open: Open, retry: Duration) -> Self {
        Self::with_backoff(open, retry, retry)
    }

    /// A follower that backs off from `first_retry` to `max_retry`.
    pub fn with_backoff(open: Open, first_retry: Duration, max_retry: Duration) -> Self {
        Self {
            open,
            stream: None,
            first_retry,
            max_retry: max_retry.max(first_retry),
            retry: first_retry,
            pause: false,
        }
    }

    /// Whether a stream is open now.
    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    /// Closes the open stream (its messages are of no use to the caller); the next call
    /// reopens it after a pause.
    pub fn drop_stream(&mut self) {
        if self.stream.take().is_some() {
            self.pause = true;
        }
    }

    /// The next thing that happens: an item, or a change of connection.
    pub async fn next(&mut self) -> Follow<T> {
        if let Some(stream) = &mut self.stream {
            let why = match stream.message().await {
                Ok(Some(item)) => return Follow::Item(item),
                Ok(None) => "the stream ended".to_owned(),
                Err(status) => status.message().to_owned(),
            };
            self.stream = None;
            self.pause = true;
            return Follow::Lost(why);
        }
        if self.pause {
            tokio::time::sleep(self.retry).await;
            self.retry = (self.retry * 2).min(self.max_retry);
        }
        match (self.open)().await {
            Ok(stream) => {
                self.stream = Some(stream);
                self.retry = self.first_retry;
                self.pause = false;
                Follow::Connected
            }
            Err(why) => {
                self.pause = true;
                Follow::Unavailable(why)
            }
        }
    }
}

/// A channel to a loopback peer at `addr` (`host:port`), connected now, with a 1 s connect
/// timeout.
pub async fn dial(addr: &str) -> Result<tonic::transport::Channel, String> {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| format!("{addr} is not an address: {e}"))?
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn forward_applies_the_step_and_ends_on_last() {
        let (tx, rx) = broadcast::channel(8);
        let mut out = forward(rx, 4, Lag::Skip, |n: u32| match n {
            0 => Step::Skip,
            3 => Step::Last(n * 10),
            n => Step::Send(n * 10),
        });
        for n in 0..5 {
            tx.send(n).unwrap();
        }
        let mut got = Vec::new();
        while let Some(item) = out.next().await {
            got.push(item.unwrap());
        }
        assert_eq!(got, vec![10, 20, 30]);
    }

    #[tokio::test]
    async fn forward_drops_a_lagging_client_with_the_gap() {
        let (tx, rx) = broadcast::channel(2);
        for n in 0..5u32 {
            tx.send(n).unwrap();
        }
        let mut out = forward(rx, 4, Lag::Drop, Step::Send);
        let err = out.next().await.unwrap().unwrap_err();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        assert!(err.message().contains("fell 3 items behind"), "{err}");
        assert!(out.next().await.is_none());
    }

    #[tokio::test]
    async fn resubscribe_reports_unavailable_and_backs_off() {
        let mut attempts = 0;
        let mut follow = Resubscribe::<u32, _>::with_backoff(
            || {
                attempts += 1;
                async { Err("nobody there".to_owned()) }
            },
            Duration::from_millis(1),
            Duration::from_millis(4),
        );
        for _ in 0..4 {
            match follow.next().await {
                Follow::Unavailable(why) => assert_eq!(why, "nobody there"),
                other => panic!("expected Unavailable, got {other:?}"),
            }
        }
        assert!(!follow.is_connected());
        assert_eq!(follow.retry, Duration::from_millis(4));
        drop(follow);
        assert_eq!(attempts, 4);
    }
}
