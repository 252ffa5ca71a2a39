//! Approvals, confirmations and stages over HTTP:
//!
//! | route | role | does |
//! |---|---|---|
//! | `GET /api/v1/approvals?state=pending\|all&limit=` | viewer | approvals, newest first |
//! | `GET /api/v1/approvals/{id}` | viewer | one approval |
//! | `POST /api/v1/approvals/{id}/approve` | approver | approves (twice is a no-op; expired, rejected or cancelled: 409) and starts the fix through the remaining gates |
//! | `POST /api/v1/approvals/{id}/reject` `{"reason"}` | approver | rejects; a reason is required |
//! | `POST /api/v1/incidents/{id}/confirm` `{"verdict": "correct"\|"misfix", "severity": "P0".."P3", "comment"}` | approver | the SRE's verdict on a fix that ran |
//! | `GET /api/v1/stages` | viewer | every (action, scope) with its stage and gate |
//! | `GET /api/v1/stages/{action}/{scope}` | viewer | one pair with its gate and history |
//! | `POST /api/v1/stages/{action}/{scope}/promote` `{"reason", "force"}` | admin | one stage up (gate met, or `force`; never above the scope's cap) |
//! | `POST /api/v1/stages/{action}/{scope}/demote` `{"reason", "to"}` | admin | down (to `manual` unless `to` says) |
//!
//! The identity of the token is recorded with every decision.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::authorize;
use super::error::ApiError;
use crate::autonomy::controller::{Autonomy, Decided};
use crate::autonomy::outcome::Severity;
use crate::autonomy::stage::Stage;
use crate::config::Role;

pub(crate) fn autonomy(app: &AppState) -> Result<&Arc<Autonomy>, ApiError> {
    app.autonomy
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("autonomy is not running in this process".into()))
}

/// A JSON body that may be absent (an empty body is `{}`).
fn optional_body<T: Default>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    match body {
        Ok(Json(b)) => Ok(b),
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(T::default()),
        Err(e) => Err(ApiError::BadRequest(e.body_text())),
    }
}

pub fn decided_json(d: &Decided) -> Value {
    match d {
        Decided::Nothing => json!({"kind": "nothing"}),
        Decided::Refused { gate, reason } => json!({"kind": "refused", "gate": gate, "reason": reason}),
        Decided::AwaitingApproval(id) => json!({"kind": "awaiting-approval", "approval": id}),
        Decided::Started { dry_run } => json!({"kind": "started", "dry_run": dry_run}),
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    limit: Option<usize>,
}

pub async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    authorize(&app.tokens, &headers, Role::Viewer)?;
    let pending_only = match q.state.as_deref() {
        None | Some("pending") => true,
        Some("all") => false,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "unknown state `{other}`; expected pending or all"
            )));
        }
    };
    let limit = q.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(ApiError::BadRequest("limit must be in 1..=1000".into()));
    }
    let items = app
        .state
        .list_approvals(pending_only, limit)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(json!({"items": items})))
}

pub async fn show(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    authorize(&app.tokens, &headers, Role::Viewer)?;
    let approval = app
        .state
        .approval(&id)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?
        .ok_or_else(|| ApiError::NotFound(format!("approval {id}")))?;
    Ok(Json(json!(approval)))
}

pub async fn approve(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let who = authorize(&app.tokens, &headers, Role::Approver)?;
    let done = autonomy(&app)?.approve(&id, &who.name).await?;
    Ok(Json(json!({
        "approval": done.approval,
        "already_approved": !done.newly,
        "fix": done.decided.as_ref().map(decided_json),
    })))
}

#[derive(Debug, Default, Deserialize)]
pub struct RejectBody {
    #[serde(default)]
    reason: String,
}

pub async fn reject(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<RejectBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = authorize(&app.tokens, &headers, Role::Approver)?;
    let body = optional_body(body)?;
    let approval = autonomy(&app)?.reject(&id, &who.name, &body.reason).await?;
    Ok(Json(json!({"approval": approval})))
}

#[derive(Debug, Default, Deserialize)]
pub struct ConfirmBody {
    #[serde(default)]
    verdict: String,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    comment: String,
}

pub async fn confirm(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<ConfirmBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = authorize(&app.tokens, &headers, Role::Approver)?;
    let body = optional_body(body)?;
    let (correct, severity) = parse_verdict(&body.verdict, body.severity.as_deref())?;
    let incident = autonomy(&app)?
        .confirm(&id, &who.name, correct, severity, &body.comment)
        .await?;
    Ok(Json(
        json!({"incident": incident.id, "state": incident.state, "fix": incident.fix}),
    ))
}

/// A confirmation's verdict (`correct` or `misfix`) and optional severity (`P0`..`P3`), as the
/// API and the web page receive them.
pub(crate) fn parse_verdict(
    verdict: &str,
    severity: Option<&str>,
) -> Result<(bool, Option<Severity>), ApiError> {
    let correct = match verdict {
        "correct" => true,
        "misfix" => false,
        other => {
            return Err(ApiError::BadRequest(format!(
                "verdict `{other}`: expected correct or misfix"
            )));
        }
    };
    let severity = match severity.map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(
            Severity::parse(s)
                .ok_or_else(|| ApiError::BadRequest(format!("severity `{s}`: expected P0, P1, P2 or P3")))?,
        ),
    };
    Ok((correct, severity))
}

pub async fn stages(State(app): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authorize(&app.tokens, &headers, Role::Viewer)?;
    let items = autonomy(&app)?.stage_reports().await?;
    Ok(Json(json!({"items": items})))
}

pub async fn stage(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((action, scope)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    authorize(&app.tokens, &headers, Role::Viewer)?;
    let autonomy = autonomy(&app)?;
    let report = autonomy
        .stage_reports()
        .await?
        .into_iter()
        .find(|r| r.entry.action == action && r.entry.scope == scope)
        .ok_or_else(|| ApiError::NotFound(format!("stage of {action} in scope {scope}")))?;
    let history = app
        .state
        .stage_history(&action, &scope)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(json!({"stage": report, "history": history})))
}

#[derive(Debug, Default, Deserialize)]
pub struct StageBody {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    to: Option<String>,
}

pub async fn promote(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((action, scope)): Path<(String, String)>,
    body: Result<Json<StageBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = authorize(&app.tokens, &headers, Role::Admin)?;
    let body = optional_body(body)?;
    let state = autonomy(&app)?
        .promote(&action, &scope, &who.name, &body.reason, body.force)
        .await?;
    Ok(Json(json!({"action": action, "scope": scope, "stage": state})))
}

pub async fn demote(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path((action, scope)): Path<(String, String)>,
    body: Result<Json<StageBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = authorize(&app.tokens, &headers, Role::Admin)?;
    let body = optional_body(body)?;
    let to = match body.to.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            Stage::parse(s)
                .ok_or_else(|| ApiError::BadRequest(format!("stage `{s}`: expected manual or silent")))?,
        ),
    };
    let state = autonomy(&app)?
        .demote(&action, &scope, &who.name, &body.reason, to)
        .await?;
    Ok(Json(json!({"action": action, "scope": scope, "stage": state})))
}
