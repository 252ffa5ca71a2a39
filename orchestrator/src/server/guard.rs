//! What any client may cost, as tower layers around every route: at most `limits.max_requests`
//! requests at once (the rest answer 503 at once instead of queueing), `limits.request_timeout`
//! for a whole request (408), `limits.body_timeout` between a body's chunks (a stalled upload is
//! dropped), and the caller's credentials checked *before* a body is read ([`credentials_first`]).

use std::time::Duration;

use axum::BoxError;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::{identify, session_secret};
use super::error::ApiError;

/// The HTTP limits of `limits:` that the routes and the listener apply.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub body_timeout: Duration,
    pub max_requests: usize,
    /// Identical alerts stored again within this are recognised as a retry (0: off).
    pub dedupe_window: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
            max_requests: 256,
            dedupe_window: Duration::from_secs(60),
        }
    }
}

impl HttpLimits {
    pub fn from_config(limits: &crate::config::Limits) -> Self {
        Self {
            max_body_bytes: limits.max_body_bytes,
            request_timeout: limits.request_timeout,
            body_timeout: limits.body_timeout,
            max_requests: limits.max_requests,
            dedupe_window: limits.dedupe_window,
        }
    }
}

/// Maps the load-shed and timeout layers' errors to the API's JSON errors.
pub async fn overloaded_or_timed_out(limits: HttpLimits, error: BoxError) -> ApiError {
    if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::TimedOut(limits.request_timeout)
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        ApiError::Overloaded(limits.max_requests)
    } else {
        ApiError::Unavailable(error.to_string())
    }
}

/// Routes whose body is read before the caller is known, because the body is the credential:
/// the chat platforms' signed callbacks and the web page's sign-in form.
fn body_is_the_credential(path: &str) -> bool {
    path.starts_with("/api/v1/chat/") || path == "/ui/login"
}

/// A request that carries a body must name a known caller first — a bearer token under
/// `/api/v1/`, the session cookie under `/ui/` — or it is answered 401 without its body being
/// read, so a client without a token cannot make rootfix buffer anything. The route then checks
/// the role as always.
pub async fn credentials_first(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let has_body = request.method() != Method::GET
        && request.method() != Method::HEAD
        && (request.headers().contains_key(header::TRANSFER_ENCODING)
            || request
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim() != "0"));
    let path = request.uri().path();
    if !has_body || body_is_the_credential(path) {
        return next.run(request).await;
    }
    let known = if path.starts_with("/ui/") {
        session_secret(request.headers()).is_some_and(|s| identify(&app.tokens, &s).is_some())
    } else {
        super::auth::bearer(request.headers()).is_some_and(|s| identify(&app.tokens, s).is_some())
    };
    if known {
        next.run(request).await
    } else {
        if path == "/api/v1/alerts/alertmanager" {
            app.metrics.alert_rejected("unauthorized");
        }
        ApiError::Unauthorized.into_response()
    }
}

/// Whether a body read failed because the client stalled (the body timeout layer's error).
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        current = e.source();
    }
    false
}
