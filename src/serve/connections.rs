//! Accepting connections within [`ServerLimits`]: header and body read
//! timeouts, and a cap on open connections that sheds idle ones first.
//!
//! `axum::serve` has neither a header read timeout (hyper has one, but only
//! with a timer, which it does not set) nor a connection cap, so clients that
//! send half a header could hold every file descriptor. Here each connection
//! is served by hyper's HTTP/1 server with a timer:
//!
//! - headers must arrive within `header_timeout`, counted from when the
//!   server waits for them (also between requests of a kept-alive connection);
//! - a handler reading a body gets [`BodyReadTimeout`] when the client sends
//!   nothing for `body_read_timeout`;
//! - at most `max_connections` are open. A connection is *busy* from its
//!   request's headers until its response body is sent or dropped, *idle*
//!   otherwise (a half-sent header, keep-alive). When the cap is reached, a
//!   new connection closes the oldest idle one; when all are busy, it is
//!   closed itself. So half-open connections never lock out a client that
//!   sends its request at once.
//!
//! HTTP/1 only: every client we serve (apk, curl, CI, reverse proxies) speaks
//! it, and hyper's HTTP/2 preface detection has no timeout of its own.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::config::ServerLimits;

/// The error a request body gives when the client sent nothing for the body
/// read timeout (handlers answer 408).
#[derive(Debug, thiserror::Error)]
#[error("the client sent no request body data for {} s", .0.as_secs())]
pub struct BodyReadTimeout(pub Duration);

/// Whether `error` or one of its sources is a [`BodyReadTimeout`].
pub fn is_body_read_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<BodyReadTimeout>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// A request body that fails with [`BodyReadTimeout`] when the next frame
/// takes longer than the timeout. The clock runs only while a handler waits
/// for the body, so a handler busy elsewhere never times its client out.
struct TimedBody {
    inner: Incoming,
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.sleep = None;
                        Poll::Ready(Some(Err(Box::new(BodyReadTimeout(timeout)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// One open connection, as the cap sees it.
struct Conn {
    /// Requests in progress (headers read, response body not yet done).
    busy: AtomicUsize,
    /// Cancelled to close the connection.
    close: CancellationToken,
}

/// Marks its connection busy while it lives (moved into the response body).
struct Busy(Arc<Conn>);

impl Busy {
    fn new(conn: &Arc<Conn>) -> Self {
        conn.busy.fetch_add(1, Ordering::SeqCst);
        Busy(conn.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its connection busy until it is sent or dropped.
struct BusyBody {
    inner: Body,
    _busy: Busy,
}

impl hyper::body::Body for BusyBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The open connections, oldest first.
#[derive(Default)]
struct Registry {
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
}

impl Registry {
    /// Registers connection `id`, first closing the oldest idle one when
    /// `max` are open; `None` when all are busy (the new one must go).
    fn admit(&self, id: u64, max: usize) -> Option<Arc<Conn>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= max {
            let oldest_idle = open
                .iter()
                .find(|(_, c)| c.busy.load(Ordering::SeqCst) == 0)
                .map(|(id, _)| *id)?;
            if let Some(evicted) = open.remove(&oldest_idle) {
                evicted.close.cancel();
            }
        }
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            close: CancellationToken::new(),
        });
        open.insert(id, conn.clone());
        Some(conn)
    }

    fn remove(&self, id: u64) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes,
/// then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let max = limits.max_connections_within(crate::config::open_file_limit());
    if max < limits.max_connections {
        tracing::warn!(
            max_connections = max,
            asked = limits.max_connections,
            "connection cap lowered to fit the open-file limit"
        );
    }
    let registry = Arc::new(Registry::default());
    let stopping = CancellationToken::new();
    // Every connection task holds a receiver; shutdown waits until all are gone.
    let (tasks_tx, tasks_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    let mut next_id = 0u64;
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning; the
                // cap should make this rare.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        next_id += 1;
        let id = next_id;
        let Some(conn) = registry.admit(id, max) else {
            tracing::debug!("connection refused: every connection is busy");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve_connection(
            stream,
            peer,
            router.clone(),
            limits,
            Connection {
                id,
                conn,
                registry: registry.clone(),
                stopping: stopping.clone(),
                _task: tasks_rx.clone(),
            },
        ));
    }
    drop(listener);
    stopping.cancel();
    drop(tasks_rx);
    tasks_tx.closed().await;
}

/// What a connection task owns besides its socket.
struct Connection {
    id: u64,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    stopping: CancellationToken,
    _task: watch::Receiver<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

/// How long a closing connection keeps reading what the client still sends.
const LINGER_TIME: Duration = Duration::from_secs(2);

/// How much a closing connection reads (and drops) at most.
const LINGER_BYTES: usize = 1 << 20;

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<hyper::Response<BusyBody>, Infallible>> + Send>>;

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    router: Router,
    limits: ServerLimits,
    connection: Connection,
) {
    let conn = connection.conn.clone();
    let body_timeout = limits.body_read_timeout;
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let router = router.clone();
        let busy = Busy::new(&conn);
        let respond: ResponseFuture = Box::pin(async move {
            let mut request = request.map(|inner| TimedBody {
                inner,
                timeout: body_timeout,
                sleep: None,
            });
            // The peer, for the audit log (`crate::api::auth::client_address`).
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(infallible) => match infallible {},
            };
            Ok(response.map(|inner| BusyBody { inner, _busy: busy }))
        });
        respond
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut served = builder.serve_connection(TokioIo::new(stream), service);
    let mut shutting_down = false;
    let result = loop {
        tokio::select! {
            result = std::future::poll_fn(|cx| served.poll_without_shutdown(cx)) => break result,
            () = connection.conn.close.cancelled() => {
                tracing::debug!("idle connection closed to admit a new one");
                return;
            }
            () = connection.stopping.cancelled(), if !shutting_down => {
                // Finish the request in flight, take no other.
                shutting_down = true;
                Pin::new(&mut served).graceful_shutdown();
            }
        }
    };
    match result {
        Ok(()) => linger(served.into_parts().io.into_inner()).await,
        Err(e) => tracing::debug!(error = %e, "connection ended"),
    }
}

/// Closes a connection whose client may still be sending (a request refused
/// before its body was read): the response is followed by end-of-stream, and
/// what arrives meanwhile is read and dropped for a moment, so that the
/// client reads the answer instead of a reset.
async fn linger(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut buffer = [0u8; 8192];
    let mut left = LINGER_BYTES;
    let deadline = tokio::time::sleep(LINGER_TIME);
    let mut deadline = std::pin::pin!(deadline);
    while left > 0 {
        tokio::select! {
            () = &mut deadline => return,
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_closes_the_oldest_idle_connection() {
        let registry = Registry::default();
        let first = registry.admit(1, 2).unwrap();
        let second = registry.admit(2, 2).unwrap();
        let busy = Busy::new(&first);
        // Full: the oldest idle one (2; 1 is busy) makes room.
        let third = registry.admit(3, 2).unwrap();
        assert!(second.close.is_cancelled() && !first.close.is_cancelled());
        // Full again, both busy: the newcomer is refused.
        let _busy_third = Busy::new(&third);
        assert!(registry.admit(4, 2).is_none());
        // Once a request ends its connection is idle, so it may be closed.
        drop(busy);
        assert!(registry.admit(5, 2).is_some());
        assert!(first.close.is_cancelled());
        registry.remove(3);
        registry.remove(5);
        assert!(registry.open.lock().unwrap().is_empty());
    }
}
