//! The HTTP server (axum): routes, shared state, and `serve`, which wires the server, the event
//! loop and the catalog watcher together and shuts them down in order. `ui` is the SREs' web
//! page under `/ui/` (server-rendered, cookie sessions); everything under `/api/v1/` is JSON.
//! `fixes` holds an incident's journal and an operator's fix. `listen` is the listener (connection
//! cap, header timeout, the start-up routes until the full router is in), `guard` the limits every
//! request meets (requests at once, timeouts, credentials before the body), `readiness` the
//! start-up phase and the event loop's probe that `/readyz` reports. `openapi` builds the API's
//! OpenAPI document (served at `/api/v1/openapi.json`) from the handlers' annotations and
//! `bodies`; `extract` holds the query and path extractors that answer JSON errors.

pub mod approvals;
pub mod auth;
pub mod bodies;
pub mod chat;
pub mod error;
pub mod extract;
pub mod fixes;
pub mod guard;
pub mod incidents;
pub mod ingest;
pub mod killswitch;
pub mod listen;
pub mod openapi;
pub mod ops;
pub mod readiness;
pub mod serve;
pub mod ui;

use std::sync::Arc;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tower::ServiceBuilder;

use crate::config::Token;
use crate::metrics::Metrics;
use crate::reload::CatalogHandle;
use crate::state::StateStore;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub state: Arc<dyn StateStore>,
    pub catalog: CatalogHandle,
    pub tokens: Arc<Vec<Token>>,
    pub metrics: Arc<Metrics>,
    /// Body size, timeouts, requests at once, the ingest's dedupe window.
    pub http: guard::HttpLimits,
    /// The start-up phase and the event loop's probe (`/readyz`).
    pub readiness: Arc<readiness::Readiness>,
    /// Approvals, confirmations and stages; `None` answers those routes 503.
    pub autonomy: Option<Arc<crate::autonomy::controller::Autonomy>>,
    /// The chat platforms' callbacks (`ChatState::disabled()` answers them 404).
    pub chat: Arc<chat::ChatState>,
}

/// The routes.
pub fn router(app: AppState) -> Router {
    let limits = app.http;
    let guard = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(move |e| {
            guard::overloaded_or_timed_out(limits, e)
        }))
        .load_shed()
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            limits.max_requests.max(1),
        ))
        .timeout(limits.request_timeout)
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            limits.body_timeout,
        ));
    Router::new()
        .route("/api/v1/alerts/alertmanager", post(ingest::alertmanager))
        .route("/api/v1/incidents", get(incidents::list))
        .route("/api/v1/incidents/export", get(incidents::export))
        .route("/api/v1/incidents/{id}", get(incidents::show))
        .route("/api/v1/incidents/{id}/confirm", post(approvals::confirm))
        .route("/api/v1/incidents/{id}/journal", get(fixes::journal))
        .route("/api/v1/incidents/{id}/fix", post(fixes::run))
        .route("/api/v1/approvals", get(approvals::list))
        .route("/api/v1/approvals/{id}", get(approvals::show))
        .route("/api/v1/approvals/{id}/approve", post(approvals::approve))
        .route("/api/v1/approvals/{id}/reject", post(approvals::reject))
        .route("/api/v1/stages", get(approvals::stages))
        .route("/api/v1/stages/{action}/{scope}", get(approvals::stage))
        .route(
            "/api/v1/stages/{action}/{scope}/promote",
            post(approvals::promote),
        )
        .route("/api/v1/stages/{action}/{scope}/demote", post(approvals::demote))
        .route("/api/v1/chat/slack", post(chat::slack))
        .route("/api/v1/chat/feishu", post(chat::feishu))
        .route("/api/v1/killswitch", get(killswitch::get).put(killswitch::set))
        .route("/api/v1/audit", get(killswitch::audit))
        .route("/ui", get(ui::root))
        .route("/ui/", get(ui::dashboard))
        .route("/ui/login", get(ui::login_form).post(ui::login))
        .route("/ui/logout", post(ui::logout))
        .route("/ui/approvals/{id}/approve", post(ui::approve))
        .route("/ui/approvals/{id}/reject", post(ui::reject))
        .route("/ui/incidents/{id}", get(ui::incident))
        .route("/ui/incidents/{id}/confirm", post(ui::confirm))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/api/v1/openapi.json", get(openapi::document_route))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            guard::credentials_first,
        ))
        .layer(guard)
        .with_state(app)
}

/// An unknown path: 404 with the JSON error every other refusal has.
async fn no_route(uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::NotFound(format!("route {}", uri.path()))
}

/// A known path with a method it does not serve: 405 JSON.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::MethodNotAllowed(format!("{method} {}", uri.path()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use tower::ServiceExt;

    use crate::config::Role;

    const ADMIN: &str = "admin-token-for-router-tests";

    fn app() -> Router {
        router(AppState {
            state: Arc::new(crate::state::memory::MemoryStateStore::new()),
            catalog: CatalogHandle::new(crate::catalog::Catalog::default()),
            tokens: Arc::new(vec![Token {
                name: "admin".into(),
                role: Role::Admin,
                secret: ADMIN.into(),
            }]),
            metrics: Arc::new(Metrics::new()),
            http: guard::HttpLimits {
                max_body_bytes: 64,
                ..Default::default()
            },
            readiness: Default::default(),
            autonomy: None,
            chat: chat::ChatState::disabled(),
        })
    }

    /// Status, content type and the JSON error of a request to the router.
    async fn answer(request: Request<Body>) -> (StatusCode, String, String) {
        let response = app().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let error: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        (
            status,
            content_type,
            error["error"].as_str().unwrap_or_default().to_string(),
        )
    }

    fn get(uri: &str) -> Request<Body> {
        Request::get(uri)
            .header(header::AUTHORIZATION, format!("bearer {ADMIN}"))
            .body(Body::empty())
            .unwrap()
    }

    // Found by schemathesis: axum's Query and Path rejections answered text/plain.
    #[tokio::test]
    async fn query_and_path_errors_are_400_json() {
        for uri in [
            "/api/v1/incidents?offset=-1",
            "/api/v1/incidents?limit=x",
            "/api/v1/approvals?limit=1.5",
            "/api/v1/audit?limit=",
            "/api/v1/incidents/%FF",
            "/api/v1/approvals/%C3%28",
        ] {
            let (status, content_type, error) = answer(get(uri)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(content_type, "application/json", "{uri}");
            assert!(!error.is_empty(), "{uri}");
        }
    }

    // An unknown route or method answered an empty body.
    #[tokio::test]
    async fn unknown_routes_and_methods_are_json() {
        let (status, content_type, error) = answer(get("/api/v1/no-such-thing")).await;
        assert_eq!(
            (status, content_type.as_str()),
            (StatusCode::NOT_FOUND, "application/json")
        );
        assert!(error.contains("/api/v1/no-such-thing"), "{error}");
        let (status, content_type, _) = answer(get("/api/v1/incidents/x/fix")).await;
        assert_eq!(
            (status, content_type.as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, "application/json")
        );
    }

    // A JSON body over the limit answered 400 (killswitch, fixes, approvals, stages), and a chat
    // callback's 413 was text.
    #[tokio::test]
    async fn a_body_over_the_limit_is_413_json_on_every_route() {
        let big = format!(r#"{{"on": false, "reason": "{}"}}"#, "x".repeat(100));
        for (method, uri) in [
            ("PUT", "/api/v1/killswitch"),
            ("POST", "/api/v1/incidents/i/fix"),
            ("POST", "/api/v1/approvals/a/reject"),
            ("POST", "/api/v1/stages/a/s/promote"),
        ] {
            let request = Request::builder()
                .method(method)
                .uri(uri)
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(big.clone()))
                .unwrap();
            let (status, content_type, _) = answer(request).await;
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{method} {uri}");
            assert_eq!(content_type, "application/json", "{method} {uri}");
        }
    }

    #[tokio::test]
    async fn the_document_is_served_without_a_token() {
        let request = Request::get("/api/v1/openapi.json").body(Body::empty()).unwrap();
        let response = app().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 22).await.unwrap();
        assert_eq!(String::from_utf8_lossy(&body), openapi::render());
    }
}
