//! `/healthz` (the process answers), `/readyz` (start-up done, Redis reachable, a catalog loaded
//! and the event loop actually reading the stream — its last read and the stream's lag and
//! pending entries —: why not, when not; and the actions whose runner cannot run here, which
//! degrade rootfix without making it unready) and `/metrics` (Prometheus text format). No token: these are for probes and
//! scrapers.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;

use super::AppState;
use super::readiness::Phase;

/// The process answers (from the first moment, before Redis is reached).
#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain")))]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: serving, Redis answers, a catalog is loaded, the event loop reads. 503 with the reasons
/// otherwise (also while starting: then only `ready`, `reasons`, `phase`).
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, description = "Ready", body = super::bodies::ReadyBody),
        (status = 503, description = "Not ready, and why", body = super::bodies::ReadyBody)))]
pub async fn readyz(State(app): State<AppState>) -> impl IntoResponse {
    let mut reasons = Vec::new();
    let phase = app.readiness.phase();
    if let Some(why) = phase.not_ready_because() {
        reasons.push(why);
    }
    if let Err(e) = app.state.ping().await {
        reasons.push(format!("redis: {e}"));
    }
    let catalog = app.catalog.current();
    if catalog.playbooks.is_empty() {
        reasons.push("no playbooks loaded".to_string());
    }
    let events = app.readiness.events();
    if phase == Phase::Serving
        && let Some(why) = events.as_ref().and_then(|e| e.reason.clone())
    {
        reasons.push(why);
    }
    let stream = app.state.stream_stats().await.ok();
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    // An action that cannot run is a degraded capability, not unreadiness: still 200.
    let cannot_run = app
        .autonomy
        .as_ref()
        .map(|a| a.availability.cannot_run(&catalog.actions))
        .unwrap_or_default();
    (
        status,
        Json(serde_json::json!({
            "ready": reasons.is_empty(),
            "reasons": reasons,
            "playbooks": catalog.playbooks.len(),
            "actions": catalog.actions.len(),
            "cannot_run": cannot_run,
            "phase": phase,
            "event_loop": events,
            "stream": stream.map(|s| serde_json::json!({
                "length": s.length,
                "pending": s.pending,
                "lag": s.lag,
            })),
        })),
    )
}

/// rootfix's counters, histogram and gauges.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "The Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let incidents = app.state.incident_counts().await.ok();
    let stream = app.state.stream_stats().await.ok();
    let mut text = app.metrics.render(incidents.as_ref(), stream);
    if let Some(autonomy) = &app.autonomy
        && let Ok(reports) = autonomy.stage_reports().await
    {
        text.push_str(&crate::metrics::render_fix_table(&reports));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
