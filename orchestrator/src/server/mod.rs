//! The HTTP server (axum): routes, shared state, and `serve`, which wires the server, the event
//! loop and the catalog watcher together and shuts them down in order. `ui` is the SREs' web
//! page under `/ui/` (server-rendered, cookie sessions); everything under `/api/v1/` is JSON.
//! `fixes` holds an incident's journal and an operator's fix. `listen` is the listener (connection
//! cap, header timeout, the start-up routes until the full router is in), `guard` the limits every
//! request meets (requests at once, timeouts, credentials before the body), `readiness` the
//! start-up phase and the event loop's probe that `/readyz` reports.

pub mod approvals;
pub mod auth;
pub mod chat;
pub mod error;
pub mod fixes;
pub mod guard;
pub mod incidents;
pub mod ingest;
pub mod killswitch;
pub mod listen;
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
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            guard::credentials_first,
        ))
        .layer(guard)
        .with_state(app)
}
