//! The paging services' bodies: PagerDuty Events API v2 and Opsgenie's Alert API, one alert per
//! incident (dedup key / alias `rootfix-<incident>`), resolved or closed by `incident_resolved`.
//! Pure.

use chrono::SecondsFormat;
use serde_json::{Value, json};

use super::format::truncate_chars;
use super::{Notification, NotificationKind};

/// PagerDuty's limit on `payload.summary` (characters).
const PAGERDUTY_SUMMARY_MAX: usize = 1024;
/// Opsgenie's limits on `message` and `description` (characters).
const OPSGENIE_MESSAGE_MAX: usize = 130;
const OPSGENIE_DESCRIPTION_MAX: usize = 15000;

/// The dedup key (PagerDuty) or alias (Opsgenie) of an incident: one alert per incident.
pub fn paging_key(n: &Notification) -> Option<String> {
    n.incident.as_ref().map(|i| format!("rootfix-{i}"))
}

/// PagerDuty Events API v2 (`POST /v2/enqueue`): `incident_resolved` resolves the incident's
/// alert, anything else triggers (or updates) it. See
/// <https://developer.pagerduty.com/docs/events-api-v2/trigger-events/>.
pub(super) fn pagerduty(n: &Notification, routing_key: &str) -> Value {
    let dedup_key = paging_key(n);
    if n.kind == NotificationKind::IncidentResolved {
        return json!({"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key});
    }
    let severity = if n.urgent() {
        "critical"
    } else if matches!(
        n.kind,
        NotificationKind::FixRolledBack | NotificationKind::FixRecurred
    ) {
        "error"
    } else {
        "warning"
    };
    let mut body = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "payload": {
            "summary": truncate_chars(&n.title, PAGERDUTY_SUMMARY_MAX),
            "source": "rootfix",
            "severity": severity,
            "timestamp": n.at.to_rfc3339_opts(SecondsFormat::Secs, true),
            "component": n.scope,
            "group": n.action,
            "class": n.kind.as_str(),
            "custom_details": {"text": n.text, "incident": n.incident, "action": n.action, "scope": n.scope},
        },
        "client": "rootfix",
    });
    if let Some(key) = dedup_key {
        body["dedup_key"] = json!(key);
    }
    if let Some(link) = &n.link {
        body["client_url"] = json!(link);
        body["links"] = json!([{"href": link, "text": "rootfix"}]);
    }
    body
}

/// Opsgenie's "create alert" body (`POST /v2/alerts`); closing is `POST
/// /v2/alerts/{alias}/close?identifierType=alias` with [`opsgenie_close`]. See
/// <https://docs.opsgenie.com/docs/alert-api>.
pub(super) fn opsgenie(n: &Notification) -> Value {
    let mut body = json!({
        "message": truncate_chars(&n.title, OPSGENIE_MESSAGE_MAX),
        "description": truncate_chars(&n.text, OPSGENIE_DESCRIPTION_MAX),
        "priority": if n.urgent() { "P1" } else { "P3" },
        "source": "rootfix",
        "tags": ["rootfix", n.kind.as_str()],
        "details": {
            "kind": n.kind.as_str(),
            "incident": n.incident.clone().unwrap_or_default(),
            "action": n.action.clone().unwrap_or_default(),
            "scope": n.scope.clone().unwrap_or_default(),
            "link": n.link.clone().unwrap_or_default(),
        },
    });
    if let Some(alias) = paging_key(n) {
        body["alias"] = json!(alias);
    }
    body
}

/// Opsgenie's "close alert" body.
pub fn opsgenie_close(n: &Notification) -> Value {
    json!({"source": "rootfix", "note": n.title})
}
