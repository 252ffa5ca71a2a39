//! `GET /api/v1/incidents` (filters `state`, `service`, `playbook`; paging `offset`, `limit`) and
//! `GET /api/v1/incidents/{id}`: the incident with its timeline and diagnosis. Role `viewer`.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;

use super::AppState;
use super::auth::authorize;
use super::error::ApiError;
use super::extract::{ApiPath, ApiQuery};
use crate::config::Role;
use crate::incident::{Incident, IncidentFilter, IncidentState};

const MAX_LIMIT: usize = 500;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only incidents in this state (`diagnosing`, `open`, `awaiting-approval`, `fixing`,
    /// `awaiting-confirmation`, `fixed`, `unhandled`, `resolved`, `stale`).
    state: Option<String>,
    /// Only incidents of this service.
    service: Option<String>,
    /// Only incidents matched to this playbook.
    playbook: Option<String>,
    /// Where the page starts (the previous page's `next_offset`).
    #[serde(default)]
    #[param(required = false)]
    offset: usize,
    /// Incidents per page (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<usize>,
}

/// One line of the list: the incident without its diagnosis and timeline.
#[derive(Debug, serde::Serialize)]
struct Summary<'a> {
    id: &'a str,
    state: IncidentState,
    alertname: &'a str,
    fingerprint: &'a str,
    service: Option<&'a str>,
    playbook: Option<&'a str>,
    firings: u32,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    resolved_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Ids of the nodes that hit, in tree order.
    path: Vec<&'a str>,
    /// Remedies that reached their threshold.
    remedies: Vec<&'a str>,
}

fn summary(i: &Incident) -> Summary<'_> {
    Summary {
        id: &i.id,
        state: i.state,
        alertname: &i.alertname,
        fingerprint: &i.fingerprint,
        service: i.service.as_deref(),
        playbook: i.playbook.as_deref(),
        firings: i.firings,
        created_at: i.created_at,
        updated_at: i.updated_at,
        resolved_at: i.resolved_at,
        path: i
            .diagnosis
            .as_ref()
            .map(|d| d.with_outcome(crate::engine::NodeOutcome::Hit))
            .unwrap_or_default(),
        remedies: i
            .diagnosis
            .as_ref()
            .map(|d| d.actionable().map(|r| r.action.as_str()).collect())
            .unwrap_or_default(),
    }
}

/// The incidents, newest first, filtered and paged.
#[utoipa::path(get, operation_id = "list_incidents", path = "/api/v1/incidents", tag = "incidents", params(ListQuery),
    security(("bearer" = ["viewer"])),
    responses((status = 200, description = "A page of incidents", body = super::bodies::IncidentPage)))]
pub async fn list(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&app.tokens, &headers, Role::Viewer)?;
    let state = match q.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(IncidentState::parse(s).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "unknown state `{s}`; expected diagnosing, open, unhandled or resolved"
            ))
        })?),
    };
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadRequest(format!("limit must be in 1..={MAX_LIMIT}")));
    }
    let filter = IncidentFilter {
        state,
        service: q.service.filter(|s| !s.is_empty()),
        playbook: q.playbook.filter(|s| !s.is_empty()),
    };
    let page = app
        .state
        .list_incidents(&filter, q.offset, limit)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let items: Vec<Summary<'_>> = page.items.iter().map(summary).collect();
    Ok(Json(
        serde_json::json!({"items": items, "next_offset": page.next_offset}),
    ))
}

/// One incident with its alert, diagnosis, timeline and fix.
#[utoipa::path(get, operation_id = "show_incident", path = "/api/v1/incidents/{id}", tag = "incidents",
    params(("id" = String, Path, description = "The incident's id")),
    security(("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "The incident", body = super::bodies::IncidentBody),
        (status = 404, description = "No such incident", body = super::bodies::ErrorBody)))]
pub async fn show(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Incident>, ApiError> {
    authorize(&app.tokens, &headers, Role::Viewer)?;
    let incident = app
        .state
        .incident(&id)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    incident
        .map(Json)
        .ok_or(ApiError::NotFound(format!("incident {id}")))
}
