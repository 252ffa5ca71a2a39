//! `POST /api/v1/alerts/alertmanager`: Alertmanager's webhook.
//!
//! Role `ingest`. The body is validated as a version-4 payload; every alert is appended to the
//! stream in one atomic script; only then 200. The token is checked before the body is read. A
//! malformed body is 400 with the reason, a body over the limit 413, a stalled body 408, and in
//! those cases nothing is stored. If Redis is unreachable: 503 "nothing was stored"; if it did not
//! answer in time: 503 "may have been stored" — either way Alertmanager retries, and an alert whose
//! identical content was stored within `limits.dedupe_window` is not stored again (`duplicates`).

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::Utc;
use tracing::{debug, warn};

use super::AppState;
use super::auth::authorize;
use super::error::ApiError;
use super::guard::is_body_timeout;
use crate::alert::WebhookPayload;
use crate::config::Role;

/// Alertmanager's webhook: every alert stored in one atomic script, then 200.
#[utoipa::path(post, path = "/api/v1/alerts/alertmanager", tag = "alerts",
    request_body = super::bodies::WebhookBody,
    security(("bearer" = ["ingest"])),
    responses((status = 200, description = "Stored (retries within the dedupe window counted as duplicates)", body = super::bodies::IngestBody)))]
pub async fn alertmanager(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let result = accept(&app, &headers, body).await;
    if let Err(e) = &result {
        app.metrics.alert_rejected(match e {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::TooLarge { .. } => "too_large",
            ApiError::Unavailable(_) | ApiError::MaybeStored(_) => "unavailable",
            ApiError::BodyTimedOut(_) => "body_timeout",
            _ => "malformed",
        });
        warn!(error = %e, "webhook refused");
    }
    result
}

async fn accept(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    // The token first: a caller without the role never gets its body read.
    let identity = authorize(&app.tokens, headers, Role::Ingest)?;
    let limit = app.http.max_body_bytes;
    let body = axum::body::to_bytes(body, limit).await.map_err(|e| {
        if is_body_timeout(&e) {
            ApiError::BodyTimedOut(app.http.body_timeout)
        } else if is_length_limit(&e) {
            ApiError::TooLarge { limit }
        } else {
            ApiError::BadRequest(format!("cannot read the body: {e}"))
        }
    })?;
    let payload = WebhookPayload::parse(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let appended = app
        .state
        .append_new_alerts(&payload.alerts, Utc::now(), app.http.dedupe_window)
        .await?;
    app.metrics.alerts_received(appended.ids.len() as u64);
    debug!(
        sender = %identity.name,
        alerts = appended.ids.len(),
        duplicates = appended.duplicates,
        group = %payload.group_key,
        "alerts stored"
    );
    Ok(Json(serde_json::json!({
        "accepted": appended.ids.len(),
        "duplicates": appended.duplicates,
        "ids": appended.ids,
    })))
}

fn is_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        current = e.source();
    }
    false
}
