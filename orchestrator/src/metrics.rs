//! rootfix's own metrics, rendered in the Prometheus text format at `/metrics`.
//!
//! A handful of counters and one histogram do not need a metrics library: atomics and a mutex
//! for the labelled ones.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::incident::IncidentState;
use crate::state::StreamStats;

/// Why an alert was applied to no incident: a resolve older than the firing it would close, a
/// firing older than the last resolve, a firing already over by its `endsAt`, a resolve with no
/// open incident.
pub const IGNORED_REASONS: [&str; 4] = [
    "stale-resolved",
    "stale-firing",
    "firing-over",
    "resolved-without-incident",
];

/// Upper bounds (seconds) of the walk duration histogram.
const WALK_BUCKETS: [f64; 11] = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

#[derive(Debug, Default)]
pub struct Metrics {
    alerts_received: AtomicU64,
    alerts_rejected: Mutex<BTreeMap<&'static str, u64>>,
    alerts_handled: AtomicU64,
    /// Alerts applied to no incident, by reason (see [`IGNORED_REASONS`]).
    alerts_ignored: Mutex<BTreeMap<&'static str, u64>>,
    walk_buckets: [AtomicU64; WALK_BUCKETS.len()],
    walk_count: AtomicU64,
    /// Sum of walk durations in microseconds.
    walk_sum_micros: AtomicU64,
    evidence_errors: Mutex<BTreeMap<String, u64>>,
    reloads: Mutex<BTreeMap<&'static str, u64>>,
    /// Notifications by receiver and result (`sent`, `failed`, `dropped`).
    notifications: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Gate refusals by gate.
    gate_refusals: Mutex<BTreeMap<&'static str, u64>>,
    /// Finished fixes by outcome.
    fixes_finished: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn alerts_received(&self, n: u64) {
        self.alerts_received.fetch_add(n, Ordering::Relaxed);
    }

    /// A webhook refused; `reason` is one of a small fixed set (`unauthorized`, `forbidden`,
    /// `malformed`, `too_large`, `unavailable`).
    pub fn alert_rejected(&self, reason: &'static str) {
        if let Ok(mut m) = self.alerts_rejected.lock() {
            *m.entry(reason).or_default() += 1;
        }
    }

    /// An alert the lifecycle rules applied to no incident; `reason` is one of
    /// [`IGNORED_REASONS`].
    pub fn alert_ignored(&self, reason: &'static str) {
        if let Ok(mut m) = self.alerts_ignored.lock() {
            *m.entry(reason).or_default() += 1;
        }
    }

    /// How many alerts were ignored for `reason`.
    pub fn ignored(&self, reason: &str) -> u64 {
        self.alerts_ignored
            .lock()
            .map(|m| m.get(reason).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    pub fn alert_handled(&self) {
        self.alerts_handled.fetch_add(1, Ordering::Relaxed);
    }

    pub fn walk_finished(&self, seconds: f64) {
        for (i, bound) in WALK_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.walk_buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.walk_count.fetch_add(1, Ordering::Relaxed);
        self.walk_sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    pub fn evidence_error(&self, kind: &str) {
        if let Ok(mut m) = self.evidence_errors.lock() {
            *m.entry(kind.to_string()).or_default() += 1;
        }
    }

    /// A catalog reload: `ok` or `rejected`.
    pub fn reload(&self, outcome: &'static str) {
        if let Ok(mut m) = self.reloads.lock() {
            *m.entry(outcome).or_default() += 1;
        }
    }

    /// A notification's end for `receiver`: `sent`, `failed` or `dropped` (queue full).
    pub fn notification(&self, receiver: &str, result: &'static str) {
        if let Ok(mut m) = self.notifications.lock() {
            *m.entry((receiver.to_string(), result)).or_default() += 1;
        }
    }

    pub fn gate_refused(&self, gate: &'static str) {
        if let Ok(mut m) = self.gate_refusals.lock() {
            *m.entry(gate).or_default() += 1;
        }
    }

    pub fn fix_finished(&self, outcome: &'static str) {
        if let Ok(mut m) = self.fixes_finished.lock() {
            *m.entry(outcome).or_default() += 1;
        }
    }

    pub fn received(&self) -> u64 {
        self.alerts_received.load(Ordering::Relaxed)
    }

    /// The text format, with the gauges read from the state store by the caller.
    pub fn render(
        &self,
        incidents: Option<&BTreeMap<IncidentState, u64>>,
        stream: Option<StreamStats>,
    ) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        };
        counter(
            &mut out,
            "rootfix_alerts_received_total",
            "Alerts accepted from Alertmanager webhooks.",
        );
        let _ = writeln!(
            out,
            "rootfix_alerts_received_total {}",
            self.alerts_received.load(Ordering::Relaxed)
        );
        counter(
            &mut out,
            "rootfix_alerts_rejected_total",
            "Webhooks refused, by reason.",
        );
        for reason in [
            "unauthorized",
            "forbidden",
            "malformed",
            "too_large",
            "unavailable",
        ] {
            let n = self
                .alerts_rejected
                .lock()
                .map(|m| m.get(reason).copied().unwrap_or(0))
                .unwrap_or(0);
            let _ = writeln!(out, "rootfix_alerts_rejected_total{{reason=\"{reason}\"}} {n}");
        }
        counter(
            &mut out,
            "rootfix_alerts_handled_total",
            "Stream entries handled to a durable state and acknowledged.",
        );
        let _ = writeln!(
            out,
            "rootfix_alerts_handled_total {}",
            self.alerts_handled.load(Ordering::Relaxed)
        );

        counter(
            &mut out,
            "rootfix_alerts_ignored_total",
            "Alerts applied to no incident by the lifecycle rules (README \"Incidents\"), by reason.",
        );
        for reason in IGNORED_REASONS {
            let _ = writeln!(
                out,
                "rootfix_alerts_ignored_total{{reason=\"{reason}\"}} {}",
                self.ignored(reason)
            );
        }

        let _ = writeln!(
            out,
            "# HELP rootfix_walk_duration_seconds Diagnosis walk duration.\n# TYPE rootfix_walk_duration_seconds histogram"
        );
        for (i, bound) in WALK_BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "rootfix_walk_duration_seconds_bucket{{le=\"{bound}\"}} {}",
                self.walk_buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.walk_count.load(Ordering::Relaxed);
        let _ = writeln!(out, "rootfix_walk_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "rootfix_walk_duration_seconds_sum {}",
            self.walk_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "rootfix_walk_duration_seconds_count {count}");

        counter(
            &mut out,
            "rootfix_evidence_errors_total",
            "Evidence fetches that failed, by signal kind.",
        );
        if let Ok(m) = self.evidence_errors.lock() {
            for (kind, n) in m.iter() {
                let _ = writeln!(out, "rootfix_evidence_errors_total{{kind=\"{kind}\"}} {n}");
            }
        }
        counter(
            &mut out,
            "rootfix_catalog_reloads_total",
            "Playbook and action reloads, by outcome.",
        );
        for outcome in ["ok", "rejected"] {
            let n = self
                .reloads
                .lock()
                .map(|m| m.get(outcome).copied().unwrap_or(0))
                .unwrap_or(0);
            let _ = writeln!(out, "rootfix_catalog_reloads_total{{outcome=\"{outcome}\"}} {n}");
        }

        counter(
            &mut out,
            "rootfix_notifications_total",
            "Notifications by receiver and result (sent, failed, dropped).",
        );
        if let Ok(m) = self.notifications.lock() {
            for ((receiver, result), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "rootfix_notifications_total{{receiver=\"{receiver}\",result=\"{result}\"}} {n}"
                );
            }
        }

        counter(
            &mut out,
            "rootfix_gate_refusals_total",
            "Fixes refused before they started, by gate.",
        );
        if let Ok(m) = self.gate_refusals.lock() {
            for (gate, n) in m.iter() {
                let _ = writeln!(out, "rootfix_gate_refusals_total{{gate=\"{gate}\"}} {n}");
            }
        }
        counter(
            &mut out,
            "rootfix_fixes_finished_total",
            "Fixes run by autonomy, by outcome.",
        );
        if let Ok(m) = self.fixes_finished.lock() {
            for (outcome, n) in m.iter() {
                let _ = writeln!(out, "rootfix_fixes_finished_total{{outcome=\"{outcome}\"}} {n}");
            }
        }

        if let Some(counts) = incidents {
            let _ = writeln!(
                out,
                "# HELP rootfix_incidents Incidents by state.\n# TYPE rootfix_incidents gauge"
            );
            for (state, n) in counts {
                let _ = writeln!(out, "rootfix_incidents{{state=\"{}\"}} {n}", state.as_str());
            }
        }
        if let Some(s) = stream {
            let _ = writeln!(
                out,
                "# HELP rootfix_stream_lag Alerts in the stream not yet delivered to a consumer.\n# TYPE rootfix_stream_lag gauge"
            );
            let _ = writeln!(out, "rootfix_stream_lag {}", s.lag);
            let _ = writeln!(
                out,
                "# HELP rootfix_stream_pending Alerts delivered but not yet acknowledged.\n# TYPE rootfix_stream_pending gauge"
            );
            let _ = writeln!(out, "rootfix_stream_pending {}", s.pending);
            let _ = writeln!(
                out,
                "# HELP rootfix_stream_length Entries in the alert stream.\n# TYPE rootfix_stream_length gauge"
            );
            let _ = writeln!(out, "rootfix_stream_length {}", s.length);
        }
        out
    }
}

/// The seed's table per (action, scope) over the promotion window, as gauges: success rate and
/// its 95 % lower bound, recovery time (mean and p90, alert start → resolved), rollback success
/// rate, and outcomes per kind. Read from the state store at each scrape.
pub fn render_fix_table(reports: &[crate::autonomy::stages::StageReport]) -> String {
    let mut out = String::new();
    let gauge = |out: &mut String, name: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    };
    let labels = |r: &crate::autonomy::stages::StageReport| {
        format!(
            "action=\"{}\",scope=\"{}\"",
            label_value(&r.entry.action),
            label_value(&r.entry.scope)
        )
    };
    gauge(
        &mut out,
        "rootfix_fix_success_ratio",
        "Executed fixes that succeeded, over the promotion window.",
    );
    for r in reports {
        if let Some(v) = r.gate.success_rate {
            let _ = writeln!(out, "rootfix_fix_success_ratio{{{}}} {v}", labels(r));
        }
    }
    gauge(
        &mut out,
        "rootfix_fix_success_lower_bound",
        "The Wilson 95 % lower bound of the success ratio.",
    );
    for r in reports {
        if let Some(v) = r.gate.lower_bound {
            let _ = writeln!(out, "rootfix_fix_success_lower_bound{{{}}} {v}", labels(r));
        }
    }
    gauge(
        &mut out,
        "rootfix_fix_recovery_seconds",
        "Alert start to resolved after a verified fix: mean and p90 over the window.",
    );
    for r in reports {
        for (stat, v) in [
            ("mean", r.measured.mean_recovery_seconds),
            ("p90", r.measured.p90_recovery_seconds),
        ] {
            if let Some(v) = v {
                let _ = writeln!(
                    out,
                    "rootfix_fix_recovery_seconds{{{},stat=\"{stat}\"}} {v}",
                    labels(r)
                );
            }
        }
    }
    gauge(
        &mut out,
        "rootfix_fix_rollback_success_ratio",
        "Rollbacks that restored the target / rollbacks run, over the window.",
    );
    for r in reports {
        if let Some(v) = r.measured.rollback_success_rate {
            let _ = writeln!(out, "rootfix_fix_rollback_success_ratio{{{}}} {v}", labels(r));
        }
    }
    gauge(
        &mut out,
        "rootfix_fix_outcomes",
        "Outcomes per kind over the promotion window.",
    );
    for r in reports {
        for (kind, n) in &r.measured.kinds {
            let _ = writeln!(out, "rootfix_fix_outcomes{{{},kind=\"{kind}\"}} {n}", labels(r));
        }
    }
    out
}

/// A label value in the text format: backslash, quote and newline escaped.
fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::new();
        m.alerts_received(3);
        m.alert_rejected("malformed");
        m.walk_finished(0.2);
        m.walk_finished(3.0);
        m.notification("sre-slack", "sent");
        m.notification("sre-slack", "sent");
        m.notification("sre-slack", "dropped");
        let text = m.render(
            None,
            Some(StreamStats {
                length: 5,
                pending: 1,
                lag: 2,
            }),
        );
        assert!(text.contains("rootfix_alerts_received_total 3\n"));
        assert!(text.contains("rootfix_alerts_rejected_total{reason=\"malformed\"} 1\n"));
        assert!(text.contains("rootfix_walk_duration_seconds_bucket{le=\"0.25\"} 1\n"));
        assert!(text.contains("rootfix_walk_duration_seconds_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("rootfix_walk_duration_seconds_count 2\n"));
        assert!(text.contains("rootfix_stream_lag 2\n"));
        assert!(text.contains("rootfix_notifications_total{receiver=\"sre-slack\",result=\"sent\"} 2\n"));
        assert!(text.contains("rootfix_notifications_total{receiver=\"sre-slack\",result=\"dropped\"} 1\n"));
    }
}
