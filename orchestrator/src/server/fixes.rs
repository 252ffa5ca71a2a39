//! An incident's fix journal and an operator's fix over HTTP:
//!
//! | route | role | does |
//! |---|---|---|
//! | `GET /api/v1/incidents/{id}/journal` | viewer | every journal event of the incident's fixes, oldest first |
//! | `POST /api/v1/incidents/{id}/fix` `{"action", "params": {"k": "v"}}` | admin | runs the action now (an operator's decision: stages not consulted; the kill switch, the runner, the params and the lock are) and answers when it ended |
//!
//! The fix is audited under the token's name (`fix.started`, every `fix.phase`, `fix.finished`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::approvals::autonomy;
use super::auth::authorize;
use super::error::ApiError;
use super::extract::{ApiPath, body_error};
use crate::config::Role;
use crate::fix::journal::FixOutcome;

/// Every journal event of the incident's fixes, oldest first.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/journal", tag = "fixes",
    params(("id" = String, Path, description = "The incident's id")),
    security(("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "The journal", body = super::bodies::JournalBody),
        (status = 404, description = "No such incident", body = super::bodies::ErrorBody)))]
pub async fn journal(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&app.tokens, &headers, Role::Viewer)?;
    let unavailable = |e: crate::state::StateError| ApiError::Unavailable(e.to_string());
    let items = app.state.journal(&id).await.map_err(unavailable)?;
    if items.is_empty() && app.state.incident(&id).await.map_err(unavailable)?.is_none() {
        return Err(ApiError::NotFound(format!("incident {id}")));
    }
    Ok(Json(json!({"incident": id, "items": items})))
}

#[derive(Debug, Deserialize)]
pub struct FixBody {
    action: String,
    #[serde(default)]
    params: BTreeMap<String, String>,
}

/// Runs an action on the incident now: an operator's decision (the stages are not consulted; the
/// kill switch, the runner, the params and the lock are). Answers when the fix ended.
#[utoipa::path(post, operation_id = "run_fix", path = "/api/v1/incidents/{id}/fix", tag = "fixes",
    params(("id" = String, Path, description = "The incident's id")),
    request_body = super::bodies::FixRequest,
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "The fix ran; how it ended", body = super::bodies::FixBodyOut),
        (status = 404, description = "No such incident or action", body = super::bodies::ErrorBody),
        (status = 409, description = "Refused: the kill switch is on, another fix holds the target, the runner cannot run, the params are refused", body = super::bodies::ErrorBody)))]
pub async fn run(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    body: Result<Json<FixBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = authorize(&app.tokens, &headers, Role::Admin)?;
    let Json(body) = body.map_err(|e| body_error(&app.http, e))?;
    let report = autonomy(&app)?
        .operator_fix(&id, &body.action, body.params, &who.name)
        .await?;
    if let FixOutcome::Refused(reason) = &report.outcome {
        // Nothing ran (another fix holds the target, or it could not start).
        return Err(ApiError::Conflict(reason.clone()));
    }
    let phases: Vec<Value> = report
        .phases
        .iter()
        .map(|(phase, attempt, exit)| json!({"phase": phase.as_str(), "attempt": attempt, "exit": exit}))
        .collect();
    Ok(Json(json!({
        "incident": id,
        "fix": report.fix,
        "by": who.name,
        "outcome": report.outcome,
        "text": report.outcome.to_string(),
        "phases": phases,
    })))
}
