//! `GET /api/v1/incidents` (filters `state`, `service`, `playbook`; paging `offset`, `limit`),
//! `GET /api/v1/incidents/{id}`: the incident with its timeline and diagnosis, and
//! `GET /api/v1/incidents/export` (`since`, `playbook`): every incident as a JSON line, the corpus
//! `rootfix backtest` replays. Role `viewer`.

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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only incidents created within this past window (`7d`, `36h`) or since this RFC 3339
    /// instant; default: every incident stored.
    since: Option<String>,
    /// Only incidents matched to this playbook.
    playbook: Option<String>,
}

/// Incidents read per round trip while exporting.
const EXPORT_PAGE: usize = 200;

/// The earliest creation time `since` asks for, as of `now`.
pub(crate) fn since_cutoff(
    since: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(since) {
        return Ok(at.with_timezone(&chrono::Utc));
    }
    let window = humantime::parse_duration(since)
        .map_err(|e| format!("since must be a duration (7d, 36h) or an RFC 3339 time, not `{since}`: {e}"))?;
    let window = chrono::Duration::from_std(window).map_err(|_| format!("since `{since}` is too long"))?;
    Ok(now
        .checked_sub_signed(window)
        .unwrap_or(chrono::DateTime::UNIX_EPOCH))
}

/// Every incident (with its diagnosis, evidence, timeline, fix and verdict) as JSON lines
/// `{"incident": {...}}`, newest first: the corpus `rootfix backtest` replays. Streamed, one
/// page of incidents at a time; a state error mid-way cuts the stream, so a client that got it
/// whole knows it is complete.
#[utoipa::path(get, operation_id = "export_incidents", path = "/api/v1/incidents/export", tag = "incidents", params(ExportQuery),
    security(("bearer" = ["viewer"])),
    responses((status = 200, description = "One JSON line per incident, newest first", content_type = "application/x-ndjson", body = String)))]
pub async fn export(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<axum::response::Response, ApiError> {
    authorize(&app.tokens, &headers, Role::Viewer)?;
    let cutoff = match q.since.as_deref().filter(|s| !s.is_empty()) {
        Some(since) => Some(since_cutoff(since, chrono::Utc::now()).map_err(ApiError::BadRequest)?),
        None => None,
    };
    let filter = IncidentFilter {
        state: None,
        service: None,
        playbook: q.playbook.filter(|s| !s.is_empty()),
    };
    // The first page is read before answering, so an unreachable store is a 503, not a cut stream.
    let first = app
        .state
        .list_incidents(&filter, 0, EXPORT_PAGE)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    let pages = futures::stream::unfold(
        (Some(first), 0usize, std::collections::HashSet::new(), false),
        move |(page, offset, mut seen, done)| {
            let (state, filter) = (app.state.clone(), filter.clone());
            async move {
                if done {
                    return None;
                }
                let page = match page {
                    Some(p) => p,
                    None => match state.list_incidents(&filter, offset, EXPORT_PAGE).await {
                        Ok(p) => p,
                        Err(e) => {
                            tracing::warn!(error = %e, "incident export cut: the state store failed");
                            let err = std::io::Error::other(e.to_string());
                            return Some((Err(err), (None, offset, seen, true)));
                        }
                    },
                };
                let mut text = String::new();
                let mut older = false;
                for incident in &page.items {
                    if cutoff.is_some_and(|c| incident.created_at < c) {
                        older = true;
                        break;
                    }
                    // Paging by offset while incidents arrive can show one twice.
                    if seen.insert(incident.id.clone()) {
                        text.push_str(&crate::backtest::corpus::corpus_line(incident));
                    }
                }
                let next = page.next_offset.filter(|_| !older);
                let done = next.is_none();
                Some((
                    Ok::<_, std::io::Error>(bytes::Bytes::from(text)),
                    (None, next.unwrap_or(offset), seen, done),
                ))
            }
        },
    );
    axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "application/x-ndjson")
        .body(axum::body::Body::from_stream(pages))
        .map_err(|e| ApiError::Unavailable(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::since_cutoff;
    use chrono::TimeZone;

    #[test]
    fn since_is_a_window_or_an_instant() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap();
        assert_eq!(
            since_cutoff("7d", now).unwrap(),
            chrono::Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
        );
        assert_eq!(
            since_cutoff("2026-12-01T00:00:00+01:00", now).unwrap(),
            chrono::Utc.with_ymd_and_hms(2026, 11, 30, 23, 0, 0).unwrap()
        );
        let err = since_cutoff("last week", now).unwrap_err();
        assert!(
            err.starts_with("since must be a duration (7d, 36h) or an RFC 3339 time, not `last week`"),
            "{err}"
        );
    }
}
