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
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::authorize;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery, body_error};
use super::guard::HttpLimits;
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
fn optional_body<T: Default>(
    limits: &HttpLimits,
    body: Result<Json<T>, JsonRejection>,
) -> Result<T, ApiError> {
    match body {
        Ok(Json(b)) => Ok(b),
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(T::default()),
        Err(e) => Err(body_error(limits, e)),
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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `pending` (the default) or `all`.
    state: Option<String>,
    /// Approvals to answer (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// Approvals, newest first.
#[utoipa::path(get, operation_id = "list_approvals", path = "/api/v1/approvals", tag = "approvals", params(ListQuery),
    security(("bearer" = ["viewer"])),
    responses((status = 200, description = "Approvals", body = super::bodies::ApprovalList)))]
pub async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
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

/// One approval.
#[utoipa::path(get, operation_id = "show_approval", path = "/api/v1/approvals/{id}", tag = "approvals", params(("id" = String, Path, description = "The approval's id")),
    security(("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "The approval", body = crate::record::approval::Approval),
        (status = 404, description = "No such approval", body = super::bodies::ErrorBody)))]
pub async fn show(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
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

/// Approves (twice is a no-op) and starts the fix through the remaining gates.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "approvals", params(("id" = String, Path, description = "The approval's id")),
    security(("bearer" = ["approver"])),
    responses(
        (status = 200, description = "Approved; what became of the fix", body = super::bodies::ApprovedBody),
        (status = 404, description = "No such approval", body = super::bodies::ErrorBody),
        (status = 409, description = "Expired, rejected or cancelled already", body = super::bodies::ErrorBody)))]
pub async fn approve(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
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

/// Rejects; a reason is required.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/reject", tag = "approvals", params(("id" = String, Path, description = "The approval's id")),
    request_body(content = Option<super::bodies::RejectRequest>),
    security(("bearer" = ["approver"])),
    responses(
        (status = 200, description = "Rejected", body = super::bodies::ApprovalBody),
        (status = 404, description = "No such approval", body = super::bodies::ErrorBody),
        (status = 409, description = "Decided already", body = super::bodies::ErrorBody)))]
pub async fn reject(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    body: Result<Json<RejectBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = authorize(&app.tokens, &headers, Role::Approver)?;
    let body = optional_body(&app.http, body)?;
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

/// The SRE's verdict on a fix that ran.
#[utoipa::path(post, operation_id = "confirm_fix", path = "/api/v1/incidents/{id}/confirm", tag = "incidents",
    params(("id" = String, Path, description = "The incident's id")),
    request_body(content = Option<super::bodies::ConfirmRequest>),
    security(("bearer" = ["approver"])),
    responses(
        (status = 200, description = "Confirmed", body = super::bodies::ConfirmedBody),
        (status = 404, description = "No such incident", body = super::bodies::ErrorBody),
        (status = 409, description = "The incident has no fix awaiting a verdict", body = super::bodies::ErrorBody)))]
pub async fn confirm(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
    body: Result<Json<ConfirmBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = authorize(&app.tokens, &headers, Role::Approver)?;
    let body = optional_body(&app.http, body)?;
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

/// Every (action, scope) with its stage and promotion gate.
#[utoipa::path(get, operation_id = "list_stages", path = "/api/v1/stages", tag = "stages",
    security(("bearer" = ["viewer"])),
    responses((status = 200, description = "The stages", body = super::bodies::StageList)))]
pub async fn stages(State(app): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authorize(&app.tokens, &headers, Role::Viewer)?;
    let items = autonomy(&app)?.stage_reports().await?;
    Ok(Json(json!({"items": items})))
}

/// One (action, scope) with its gate and history.
#[utoipa::path(get, operation_id = "show_stage", path = "/api/v1/stages/{action}/{scope}", tag = "stages", params(("action" = String, Path, description = "The action"), ("scope" = String, Path, description = "The scope")),
    security(("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "The stage", body = super::bodies::StageDetail),
        (status = 404, description = "No such pair", body = super::bodies::ErrorBody)))]
pub async fn stage(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiPath((action, scope)): ApiPath<(String, String)>,
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

/// One stage up: the gate met, or `force`; never above the scope's cap.
#[utoipa::path(post, path = "/api/v1/stages/{action}/{scope}/promote", tag = "stages", params(("action" = String, Path, description = "The action"), ("scope" = String, Path, description = "The scope")),
    request_body(content = Option<super::bodies::StageRequest>),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Promoted", body = super::bodies::StageChanged),
        (status = 404, description = "No such action or scope", body = super::bodies::ErrorBody),
        (status = 409, description = "The gate is not met, or at the cap already", body = super::bodies::ErrorBody)))]
pub async fn promote(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiPath((action, scope)): ApiPath<(String, String)>,
    body: Result<Json<StageBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = authorize(&app.tokens, &headers, Role::Admin)?;
    let body = optional_body(&app.http, body)?;
    let state = autonomy(&app)?
        .promote(&action, &scope, &who.name, &body.reason, body.force)
        .await?;
    Ok(Json(json!({"action": action, "scope": scope, "stage": state})))
}

/// Down, to `manual` unless `to` says.
#[utoipa::path(post, path = "/api/v1/stages/{action}/{scope}/demote", tag = "stages", params(("action" = String, Path, description = "The action"), ("scope" = String, Path, description = "The scope")),
    request_body(content = Option<super::bodies::StageRequest>),
    security(("bearer" = ["admin"])),
    responses(
        (status = 200, description = "Demoted", body = super::bodies::StageChanged),
        (status = 404, description = "No such action or scope", body = super::bodies::ErrorBody),
        (status = 409, description = "Not above that stage", body = super::bodies::ErrorBody)))]
pub async fn demote(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiPath((action, scope)): ApiPath<(String, String)>,
    body: Result<Json<StageBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let who = authorize(&app.tokens, &headers, Role::Admin)?;
    let body = optional_body(&app.http, body)?;
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
