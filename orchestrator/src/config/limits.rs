//! `limits:`: how many alerts are handled at once, the largest request body, the walk's
//! deadline, when a pending stream entry is claimed, and how often the catalog is reloaded.

use std::time::Duration;

use serde::Deserialize;

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
}

/// `limits:` with its defaults; `claim_idle` must outlast `walk_deadline`.
pub(super) fn check_limits(doc: &LimitsDocument, r: &mut Reporter<'_>) -> Limits {
    let workers = doc.workers.unwrap_or(8);
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
    Limits {
        workers,
        max_body_bytes,
        walk_deadline,
        claim_idle,
        reload_interval,
    }
}
