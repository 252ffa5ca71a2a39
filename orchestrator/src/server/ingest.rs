//! `POST /api/v1/alerts/alertmanager`: Alertmanager's webhook.
//!
//! Role `ingest`. The body is validated as a version-4 payload; every alert is appended to the
//! stream in one atomic pipeline; only then 200. A malformed body is 400 with the reason, a body
//! over the limit 413, and in both cases nothing is stored. If Redis is unreachable: 503, and
//! Alertmanager retries.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use tracing::{debug, warn};

use super::AppState;
use super::auth::authorize;
use super::error::ApiError;
use crate::alert::WebhookPayload;
use crate::config::Role;

pub async fn alertmanager(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let result = accept(&app, &headers, body).await;
    if let Err(e) = &result {
        app.metrics.alert_rejected(match e {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::TooLarge { .. } => "too_large",
            ApiError::Unavailable(_) => "unavailable",
            _ => "malformed",
        });
        warn!(error = %e, "webhook refused");
    }
    result
}

async fn accept(
    app: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let identity = authorize(&app.tokens, headers, Role::Ingest)?;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge {
                limit: app.max_body_bytes,
            }
        } else {
            ApiError::BadRequest(format!("cannot read the body: {rejection}"))
        }
    })?;
    let payload = WebhookPayload::parse(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let ids = app
        .state
        .append_alerts(&payload.alerts, Utc::now())
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    app.metrics.alerts_received(ids.len() as u64);
    debug!(sender = %identity.name, alerts = ids.len(), group = %payload.group_key, "alerts stored");
    Ok(Json(serde_json::json!({"accepted": ids.len(), "ids": ids})))
}
