//! The listener: hyper's HTTP/1 connection builder with a header read timeout, at most
//! `limits.max_connections` connections at once (further ones wait in the kernel's backlog), and
//! a graceful shutdown (in-flight requests finish, idle connections close). It opens before Redis
//! is reached: [`Switch`] serves the start-up routes (`/healthz`, `/readyz` with the phase, 503 for
//! the rest) until `serve` installs the full router.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::routing::future::RouteFuture;
use axum::routing::get;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, info, warn};

use super::error::ApiError;
use super::readiness::Readiness;

/// What one connection may hold.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A request's headers must arrive within this (also closes an idle keep-alive connection).
    pub header_timeout: Duration,
    pub max_connections: usize,
}

/// The service of every connection: the start-up routes until [`Switch::install`] is called,
/// then the full router — decided per request, so a keep-alive connection opened early moves on.
#[derive(Clone)]
pub struct Switch {
    startup: Router,
    full: Arc<OnceLock<Router>>,
}

impl Switch {
    pub fn new(readiness: Arc<Readiness>) -> Self {
        let startup = Router::new()
            .route("/healthz", get(super::ops::healthz))
            .route("/readyz", get(startup_readyz))
            .fallback(starting)
            .with_state(readiness);
        Self {
            startup,
            full: Arc::default(),
        }
    }

    /// Serves `router` from now on (once; a second call is ignored).
    pub fn install(&self, router: Router) {
        let _ = self.full.set(router);
    }
}

impl tower::Service<Request<hyper::body::Incoming>> for Switch {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = RouteFuture<Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<hyper::body::Incoming>) -> Self::Future {
        let mut router = self.full.get().cloned().unwrap_or_else(|| self.startup.clone());
        tower::Service::call(&mut router, request)
    }
}

async fn startup_readyz(
    axum::extract::State(readiness): axum::extract::State<Arc<Readiness>>,
) -> impl axum::response::IntoResponse {
    let phase = readiness.phase();
    let reason = phase
        .not_ready_because()
        .unwrap_or_else(|| "starting".to_string());
    (
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({
            "ready": false,
            "reasons": [reason],
            "phase": phase,
        })),
    )
}

async fn starting(axum::extract::State(readiness): axum::extract::State<Arc<Readiness>>) -> ApiError {
    let why = readiness
        .phase()
        .not_ready_because()
        .unwrap_or_else(|| "starting".to_string());
    ApiError::Starting(why)
}

/// Accepts connections until `stop`, then lets in-flight requests finish for up to `grace`.
pub async fn run(
    listener: TcpListener,
    service: Switch,
    limits: ConnectionLimits,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let mut warned_full = false;
    loop {
        if permits.available_permits() == 0 && !warned_full {
            warn!(
                max_connections = limits.max_connections,
                "limits.max_connections reached: new connections wait until one closes"
            );
            warned_full = true;
        }
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = stop.wait_for(|s| *s) => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait a little instead of spinning.
                warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        warned_full = false;
        let _ = stream.set_nodelay(true);
        let connection = graceful
            .watch(builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service.clone())));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    info!("shutdown requested: no new requests");
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        warn!(?grace, "requests still in flight at shutdown were cut off");
    }
}
