//! `limits:`: how many alerts are handled at once, the largest request body, the walk's
//! deadline, when a pending stream entry is claimed, how often the catalog is reloaded, and the
//! alert lifecycle's rules ([`AlertRules`]: `flap_window`, `max_flaps`, `stale_after`).

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
    Limits {
        alert_rules,
        workers,
        max_body_bytes,
        walk_deadline,
        claim_idle,
        reload_interval,
    }
}
