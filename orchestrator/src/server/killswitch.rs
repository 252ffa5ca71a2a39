//! `GET /api/v1/killswitch` (role viewer) and `PUT /api/v1/killswitch` (role admin, body
//! `{"on": true, "reason": "..."}`; a reason is required to turn it on), and `GET /api/v1/audit`
//! (role viewer). Every change is audited with the caller's identity.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::Utc;
use serde::Deserialize;

use super::AppState;
use super::auth::authorize;
use super::error::ApiError;
use super::extract::{ApiQuery, body_error};
use crate::audit::{AuditEvent, KillSwitch};
use crate::config::Role;

#[derive(Debug, Deserialize)]
pub struct SetKillSwitch {
    on: bool,
    #[serde(default)]
    reason: String,
}

fn unavailable(e: crate::state::StateError) -> ApiError {
    ApiError::Unavailable(e.to_string())
}

/// Whether the kill switch is on (no new fix starts), by whom and why.
#[utoipa::path(get, operation_id = "get_killswitch", path = "/api/v1/killswitch", tag = "killswitch",
    security(("bearer" = ["viewer"])),
    responses((status = 200, description = "The kill switch", body = super::bodies::KillSwitchBody)))]
pub async fn get(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&app.tokens, &headers, Role::Viewer)?;
    let state = app.state.killswitch().await.map_err(unavailable)?;
    Ok(Json(serde_json::json!({"on": state.is_some(), "state": state})))
}

/// Turns the kill switch on (a reason required) or off; audited.
#[utoipa::path(put, operation_id = "set_killswitch", path = "/api/v1/killswitch", tag = "killswitch",
    request_body = super::bodies::KillSwitchRequest,
    security(("bearer" = ["admin"])),
    responses((status = 200, description = "The kill switch as set", body = super::bodies::KillSwitchBody)))]
pub async fn set(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<SetKillSwitch>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let identity = authorize(&app.tokens, &headers, Role::Admin)?;
    let Json(body) = body.map_err(|e| body_error(&app.http, e))?;
    let reason = body.reason.trim().to_string();
    if body.on && reason.is_empty() {
        return Err(ApiError::BadRequest(
            "a reason is required to turn the kill switch on".into(),
        ));
    }
    let now = Utc::now();
    let state = body.on.then(|| KillSwitch {
        by: identity.name.clone(),
        reason: reason.clone(),
        since: now,
    });
    app.state
        .set_killswitch(state.as_ref())
        .await
        .map_err(unavailable)?;
    app.state
        .append_audit(&AuditEvent {
            at: now,
            identity: identity.name,
            action: if body.on {
                "killswitch.on".into()
            } else {
                "killswitch.off".into()
            },
            detail: reason,
        })
        .await
        .map_err(unavailable)?;
    Ok(Json(serde_json::json!({"on": body.on, "state": state})))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Events to answer, newest first (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// The audit trail, newest first: who decided what, when.
#[utoipa::path(get, path = "/api/v1/audit", tag = "killswitch", params(AuditQuery),
    security(("bearer" = ["viewer"])),
    responses((status = 200, description = "Audit events", body = super::bodies::AuditList)))]
pub async fn audit(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&app.tokens, &headers, Role::Viewer)?;
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::BadRequest("limit must be in 1..=1000".into()));
    }
    let events = app.state.audit(limit).await.map_err(unavailable)?;
    Ok(Json(serde_json::json!({"items": events})))
}
