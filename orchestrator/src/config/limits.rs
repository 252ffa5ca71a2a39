//! `limits:`: how many alerts are handled at once, the largest request body, the walk's
//! deadline, when a pending stream entry is claimed, how often the catalog is reloaded, and the
//! alert lifecycle's rules ([`AlertRules`]: `flap_window`, `max_flaps`, `stale_after`), what any
//! HTTP client may hold (`header_timeout`, `body_timeout`, `request_timeout`, `max_connections`,
//! `max_requests`) and the window in which a retried webhook's alerts are recognised
//! (`dedupe_window`).

use std::time::Duration;

use serde::Deserialize;

use crate::alert_rules::AlertRules;
use crate::catalog::report::Reporter;

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub(super) struct LimitsDocument {
    #[serde(default)]
    workers: Option<usize>,
    #[serde(default)]
    max_body_bytes: Option<usize>,
    #[serde(default)]
    walk_deadline: Option<String>,
    #[serde(default)]
    claim_idle: Option<String>,
    #[serde(default)]
    reload_interval: Option<String>,
    #[serde(default)]
    flap_window: Option<String>,
    #[serde(default)]
    max_flaps: Option<u32>,
    #[serde(default)]
    stale_after: Option<String>,
    #[serde(default)]
    header_timeout: Option<String>,
    #[serde(default)]
    body_timeout: Option<String>,
    #[serde(default)]
    request_timeout: Option<String>,
    #[serde(default)]
    max_connections: Option<usize>,
    #[serde(default)]
    max_requests: Option<usize>,
    #[serde(default)]
    dedupe_window: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Limits {
    /// Alerts handled at once (alerts of one fingerprint are always handled in order).
    pub workers: usize,
    pub max_body_bytes: usize,
    pub walk_deadline: Duration,
    /// An entry pending this long on a consumer is taken over (the consumer is presumed dead).
    pub claim_idle: Duration,
    /// How often playbook and action files are checked for changes.
    pub reload_interval: Duration,
    /// How alerts' notifications are ordered into incidents: flaps and staleness.
    pub alert_rules: AlertRules,
    /// A request's headers must arrive within this; an idle keep-alive connection closes after it.
    pub header_timeout: Duration,
    /// The longest wait for the next part of a request body.
    pub body_timeout: Duration,
    /// The longest a whole request may take (408 after it).
    pub request_timeout: Duration,
    /// Connections open at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Requests handled at once; more answer 503 with `Retry-After`.
    pub max_requests: usize,
    /// An alert identical to one stored within this is a retry and is not stored again (0s: off).
    pub dedupe_window: Duration,
}

/// `limits:` with its defaults; `claim_idle` must outlast `walk_deadline`.
pub(super) fn check_limits(doc: &LimitsDocument, r: &mut Reporter<'_>) -> Limits {
    let workers = doc.workers.unwrap_or(32);
    if workers == 0 || workers > 1024 {
        r.at_value("limits.workers", "must be in 1..=1024");
    }
    let max_body_bytes = doc.max_body_bytes.unwrap_or(1 << 20);
    if max_body_bytes < 1024 {
        r.at_value("limits.max_body_bytes", "must be at least 1024");
    }
    let walk_deadline = r.duration(
        "limits.walk_deadline",
        doc.walk_deadline.as_deref(),
        Duration::from_secs(60),
    );
    let claim_idle = r.duration(
        "limits.claim_idle",
        doc.claim_idle.as_deref(),
        Duration::from_secs(120),
    );
    if claim_idle <= walk_deadline {
        r.at_value(
            "limits.claim_idle",
            "must be longer than limits.walk_deadline, or live consumers' alerts would be taken over",
        );
    }
    let reload_interval = r.duration(
        "limits.reload_interval",
        doc.reload_interval.as_deref(),
        Duration::from_secs(1),
    );
    let defaults = AlertRules::default();
    let alert_rules = AlertRules {
        flap_window: r.duration(
            "limits.flap_window",
            doc.flap_window.as_deref(),
            defaults.flap_window,
        ),
        max_flaps: doc.max_flaps.unwrap_or(defaults.max_flaps),
        stale_after: r.duration(
            "limits.stale_after",
            doc.stale_after.as_deref(),
            defaults.stale_after,
        ),
    };
    if alert_rules.stale_after < Duration::from_secs(60) {
        r.at_value(
            "limits.stale_after",
            "must be at least 1m (a few times Alertmanager's repeat_interval), or firing alerts would be closed",
        );
    }
    let header_timeout = r.duration(
        "limits.header_timeout",
        doc.header_timeout.as_deref(),
        Duration::from_secs(10),
    );
    let body_timeout = r.duration(
        "limits.body_timeout",
        doc.body_timeout.as_deref(),
        Duration::from_secs(10),
    );
    let request_timeout = r.duration(
        "limits.request_timeout",
        doc.request_timeout.as_deref(),
        Duration::from_secs(30),
    );
    for (field, value) in [
        ("limits.header_timeout", header_timeout),
        ("limits.body_timeout", body_timeout),
        ("limits.request_timeout", request_timeout),
    ] {
        if value < Duration::from_secs(1) {
            r.at_value(field, "must be at least 1s");
        }
    }
    let max_connections = doc.max_connections.unwrap_or(1024);
    if max_connections == 0 {
        r.at_value("limits.max_connections", "must be at least 1");
    }
    let max_requests = doc.max_requests.unwrap_or(256);
    if max_requests == 0 {
        r.at_value("limits.max_requests", "must be at least 1");
    }
    let dedupe_window = r.duration(
        "limits.dedupe_window",
        doc.dedupe_window.as_deref(),
        Duration::from_secs(60),
    );
    Limits {
        header_timeout,
        body_timeout,
        request_timeout,
        max_connections,
        max_requests,
        dedupe_window,
        alert_rules,
        workers,
        max_body_bytes,
        walk_deadline,
        claim_idle,
        reload_interval,
    }
}
