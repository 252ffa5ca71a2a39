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
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::approvals::autonomy;
use super::auth::authorize;
use super::error::ApiError;
use crate::config::Role;
use crate::fix::journal::FixOutcome;

pub async fn journal(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
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

pub async fn run(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<FixBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = authorize(&app.tokens, &headers, Role::Admin)?;
    let Json(body) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
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
