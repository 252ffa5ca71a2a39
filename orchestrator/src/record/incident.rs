//! Incidents: one open incident per alert fingerprint; a repeated firing joins it, a `resolved`
//! alert closes it (a verified fix leaves it `fixed` until then). The record holds the alert, the playbook that owns it and its diagnosis, and a
//! timeline of what happened.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::Alert;
use crate::engine::Diagnosis;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum IncidentState {
    /// Matched a playbook; the diagnosis is running (or was interrupted and will be resumed).
    Diagnosing,
    /// Diagnosed; nothing more will happen on its own (no remedy, a gate refused, a fix failed).
    Open,
    /// A fix waits for an SRE's approval (`manual` stage).
    AwaitingApproval,
    /// A fix is running.
    Fixing,
    /// A fix ran in the `silent` stage; an SRE confirms `correct` or `misfix`.
    AwaitingConfirmation,
    /// A fix ran and verified (`manual` or `auto` stage); the incident closes when Alertmanager
    /// reports the alert resolved. A repeated firing meanwhile joins it and starts nothing.
    Fixed,
    /// No playbook matched the alert.
    Unhandled,
    /// The alert resolved.
    Resolved,
    /// Closed by rootfix: its alert was not seen for longer than `limits.stale_after` (a lost
    /// `resolved`, a receiver with `send_resolved: false`).
    Stale,
}

impl IncidentState {
    pub const ALL: [IncidentState; 9] = [
        IncidentState::Diagnosing,
        IncidentState::Open,
        IncidentState::AwaitingApproval,
        IncidentState::Fixing,
        IncidentState::AwaitingConfirmation,
        IncidentState::Fixed,
        IncidentState::Unhandled,
        IncidentState::Resolved,
        IncidentState::Stale,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Diagnosing => "diagnosing",
            IncidentState::Open => "open",
            IncidentState::AwaitingApproval => "awaiting-approval",
            IncidentState::Fixing => "fixing",
            IncidentState::AwaitingConfirmation => "awaiting-confirmation",
            IncidentState::Fixed => "fixed",
            IncidentState::Unhandled => "unhandled",
            IncidentState::Resolved => "resolved",
            IncidentState::Stale => "stale",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Open in the sense of "one per fingerprint": anything but resolved or stale.
    pub fn is_open(self) -> bool {
        !matches!(self, IncidentState::Resolved | IncidentState::Stale)
    }
}

/// One line of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub fingerprint: String,
    pub state: IncidentState,
    pub alertname: String,
    pub service: Option<String>,
    pub playbook: Option<String>,
    /// The latest alert received for this incident.
    pub alert: Alert,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Firing notifications received (the first included).
    pub firings: u32,
    /// The stream entry that created the incident.
    pub created_by_entry: String,
    /// Stream entries already applied, so a redelivered entry is not applied twice.
    pub applied_entries: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub diagnosis: Option<Diagnosis>,
    pub timeline: Vec<TimelineEvent>,
    /// The fix rootfix decided on, once it decided (gates, stage, approval, outcome, verdict).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub fix: Option<IncidentFix>,
    /// When rootfix last received a firing of the alert (staleness counts from here).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_seen: Option<DateTime<Utc>>,
    /// Times the alert resolved and fired again within `limits.flap_window` and rejoined this
    /// incident instead of opening a new one.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub flaps: u32,
    /// Optimistic-concurrency version, bumped by every save.
    #[serde(default)]
    pub version: u64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Incident {
    /// The id of the incident created by a stream entry: deterministic, so a redelivered entry
    /// recreates the same incident instead of a second one.
    pub fn id_for_entry(entry_id: &str) -> String {
        format!("inc-{entry_id}")
    }

    pub fn note(&mut self, at: DateTime<Utc>, kind: &str, message: impl Into<String>) {
        self.timeline.push(TimelineEvent {
            at,
            kind: kind.to_string(),
            message: message.into(),
        });
        self.updated_at = at;
    }

    /// When the incident closed: its alert's resolve, else its last change (a stale close). What
    /// `retention.incidents` counts from.
    pub fn closed_at(&self) -> DateTime<Utc> {
        self.resolved_at.unwrap_or(self.updated_at)
    }

    /// The approvals that may have been created for this incident's fix (one per attempt: the
    /// first and one per flap that asked again), to remove with it.
    pub fn approval_ids(&self) -> Vec<String> {
        let Some(fix) = &self.fix else {
            return Vec::new();
        };
        let mut ids: Vec<String> = (0..=self.flaps)
            .map(|n| crate::record::approval::Approval::id_for_attempt(&self.id, &fix.action, n))
            .collect();
        if let Some(id) = &fix.approval
            && !ids.contains(id)
        {
            ids.push(id.clone());
        }
        ids
    }

    /// When the alert was last seen firing (the incident's creation for older records).
    pub fn last_seen(&self) -> DateTime<Utc> {
        self.last_seen.unwrap_or(self.created_at)
    }

    pub fn has_applied(&self, entry_id: &str) -> bool {
        self.applied_entries.iter().any(|e| e == entry_id)
    }

    /// From the alert's `startsAt` to the incident's resolution; `None` while unresolved (or when
    /// the clocks disagree and the resolution comes before the alert's start).
    pub fn time_to_resolve(&self) -> Option<chrono::TimeDelta> {
        let took = self.resolved_at? - self.alert.starts_at;
        (took >= chrono::TimeDelta::zero()).then_some(took)
    }

    /// Why a diagnosed incident has no fix going: its best remedy scored below its threshold, no
    /// remedy was reached, the remedy could not be formed, or a gate refused the fix. `None` when
    /// it has a fix (or was not diagnosed, or is still being decided).
    pub fn why_no_fix(&self) -> Option<String> {
        use crate::engine::diagnosis::Decision;
        if let Some(f) = &self.fix {
            if f.outcome.is_some() {
                return None;
            }
            return f.refusal();
        }
        if self.state == IncidentState::Diagnosing {
            return None;
        }
        let d = self.diagnosis.as_ref()?;
        if d.remedies.is_empty() {
            return Some("no remedy in the diagnosis path".into());
        }
        if d.actionable().next().is_some() {
            return None;
        }
        let best = d
            .remedies
            .iter()
            .filter(|r| r.decision == Decision::NotifyOnly)
            .max_by(|a, b| a.score.total_cmp(&b.score));
        if let Some(r) = best {
            return Some(format!(
                "notify only: best remedy {} scored {:.2}, below its threshold {:.2}",
                r.action, r.score, r.threshold
            ));
        }
        d.remedies.iter().find_map(|r| match &r.decision {
            Decision::Invalid(why) => Some(format!(
                "no fix offered: remedy {} cannot be formed: {why}",
                r.action
            )),
            _ => None,
        })
    }

    /// Remembers an applied entry; only the latest few are kept (entries of one fingerprint are
    /// handled in order, so older ones cannot come back once newer ones were acked).
    pub fn mark_applied(&mut self, entry_id: &str) {
        self.applied_entries.push(entry_id.to_string());
        let excess = self.applied_entries.len().saturating_sub(32);
        self.applied_entries.drain(..excess);
    }
}

/// The fix of an incident, as decided and as it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentFix {
    /// The fix type: the action's name, or a remedy of steps' `name`.
    pub action: String,
    /// The remedy's node in the tree.
    pub node: String,
    pub params: std::collections::BTreeMap<String, String>,
    /// A remedy of steps: each step's action and params, run in order as one fix (in waves:
    /// the action once per target).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<crate::engine::diagnosis::StepCall>,
    /// A remedy in waves: how many of `steps` each wave runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<u32>,
    pub confidence: f64,
    /// The scope that owns the target; `None` when the target is outside every scope.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stage: Option<crate::record::stage::Stage>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub approval: Option<String>,
    /// Why a gate refused the fix, when one did.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub refused: Option<String>,
    /// The gate that refused it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gate: Option<crate::record::gate::Gate>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub outcome: Option<crate::record::journal::FixOutcome>,
    /// The SRE's verdict on the fix (`silent` stage, or a misfix reported later).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub verdict: Option<Verdict>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub silence: Option<String>,
}

impl IncidentFix {
    /// Which gate refused the fix and why, in words: `refused by the scope gate: the target is
    /// outside every scope` (the stored reason starts with the gate's name, said once here).
    pub fn refusal(&self) -> Option<String> {
        let refused = self.refused.as_deref()?;
        Some(match self.gate {
            Some(gate) => {
                let reason = refused
                    .strip_prefix(gate.as_str())
                    .and_then(|r| r.strip_prefix(": "))
                    .unwrap_or(refused);
                format!("refused by the {gate} gate: {reason}")
            }
            None => format!("refused: {refused}"),
        })
    }

    /// Refused by a gate whose answer changes with time (the kill switch, the rate window, the
    /// running fixes): the next firing of the alert asks the gates again.
    pub fn refused_for_now(&self) -> bool {
        self.outcome.is_none() && self.gate.is_some_and(crate::record::gate::Gate::for_now)
    }
}

/// An SRE's verdict on a fix that ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub correct: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub severity: Option<crate::record::outcome::Severity>,
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub comment: String,
}

/// A duration in seconds with one decimal, as the page and the CLI show it: `23.4s`.
pub fn seconds(d: chrono::TimeDelta) -> String {
    format!("{:.1}s", d.num_milliseconds() as f64 / 1000.0)
}

/// Filters of `GET /api/v1/incidents`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentFilter {
    pub state: Option<IncidentState>,
    pub service: Option<String>,
    pub playbook: Option<String>,
}

impl IncidentFilter {
    pub fn accepts(&self, incident: &Incident) -> bool {
        self.state.is_none_or(|s| s == incident.state)
            && self
                .service
                .as_ref()
                .is_none_or(|s| incident.service.as_ref() == Some(s))
            && self
                .playbook
                .as_ref()
                .is_none_or(|p| incident.playbook.as_ref() == Some(p))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::diagnosis::{Decision, RemedyDecision};
    use chrono::TimeZone;

    fn at(secs: i64, millis: u32) -> DateTime<Utc> {
        Utc.timestamp_opt(1_793_610_000 + secs, millis * 1_000_000)
            .single()
            .unwrap()
    }

    /// An open incident for other modules' unit tests.
    pub(crate) fn sample() -> Incident {
        incident()
    }

    fn incident() -> Incident {
        let alert = Alert {
            status: crate::alert::AlertStatus::Firing,
            labels: Default::default(),
            annotations: Default::default(),
            starts_at: at(0, 0),
            ends_at: at(0, 0),
            generator_url: String::new(),
            fingerprint: "f".into(),
        };
        Incident {
            id: "inc-1".into(),
            fingerprint: "f".into(),
            state: IncidentState::Open,
            alertname: "A".into(),
            service: None,
            playbook: Some("p".into()),
            alert,
            created_at: at(1, 0),
            updated_at: at(1, 0),
            resolved_at: None,
            firings: 1,
            created_by_entry: "1-0".into(),
            applied_entries: vec![],
            diagnosis: None,
            timeline: vec![],
            fix: None,
            last_seen: None,
            flaps: 0,
            version: 0,
        }
    }

    fn remedy(action: &str, score: f64, threshold: f64, decision: Decision) -> RemedyDecision {
        RemedyDecision {
            node: format!("{action}_node"),
            action: action.into(),
            params: Default::default(),
            steps: vec![],
            waves: vec![],
            score,
            threshold,
            signals: vec![],
            decision,
        }
    }

    fn diagnosed(remedies: Vec<RemedyDecision>) -> Incident {
        let mut i = incident();
        i.diagnosis = Some(Diagnosis {
            playbook: "p".into(),
            playbook_hash: None,
            service: None,
            alertname: "A".into(),
            fingerprint: "f".into(),
            evidence_at: at(0, 0),
            annotations: Default::default(),
            walked_at: at(0, 0),
            duration_ms: 1.0,
            nodes: vec![],
            evidence: Default::default(),
            remedies,
            state_errors: vec![],
            deadline_exceeded: false,
        });
        i
    }

    fn fix(refused: Option<&str>, gate: Option<crate::record::gate::Gate>) -> IncidentFix {
        IncidentFix {
            action: "restart-jvm-pod".into(),
            node: "n".into(),
            params: Default::default(),
            steps: Vec::new(),
            waves: Vec::new(),
            confidence: 0.9,
            scope: None,
            stage: None,
            approval: None,
            refused: refused.map(str::to_string),
            gate,
            dry_run: false,
            outcome: None,
            verdict: None,
            silence: None,
        }
    }

    #[test]
    fn time_to_resolve_runs_from_the_alert_start_to_the_resolution() {
        let mut i = incident();
        assert_eq!(i.time_to_resolve(), None, "not resolved yet");
        i.resolved_at = Some(at(23, 400));
        let took = i.time_to_resolve().unwrap();
        assert_eq!(took.num_milliseconds(), 23_400);
        assert_eq!(seconds(took), "23.4s");
        i.resolved_at = Some(at(-5, 0));
        assert_eq!(
            i.time_to_resolve(),
            None,
            "a resolution before the start is no duration"
        );
        assert_eq!(seconds(chrono::TimeDelta::milliseconds(90_060)), "90.1s");
        assert_eq!(seconds(chrono::TimeDelta::zero()), "0.0s");
    }

    #[test]
    fn a_notify_only_incident_says_why() {
        let i = diagnosed(vec![
            remedy("flush-cache", 0.3, 0.7, Decision::NotifyOnly),
            remedy("restart-pod", 0.5, 0.8, Decision::NotifyOnly),
        ]);
        assert_eq!(
            i.why_no_fix().as_deref(),
            Some("notify only: best remedy restart-pod scored 0.50, below its threshold 0.80")
        );
        assert_eq!(
            diagnosed(vec![]).why_no_fix().as_deref(),
            Some("no remedy in the diagnosis path")
        );
        let invalid = diagnosed(vec![remedy(
            "restart-pod",
            0.9,
            0.8,
            Decision::Invalid("label pod is missing".into()),
        )]);
        assert_eq!(
            invalid.why_no_fix().as_deref(),
            Some("no fix offered: remedy restart-pod cannot be formed: label pod is missing")
        );
        // An actionable remedy without a fix yet is being decided, not refused.
        assert_eq!(
            diagnosed(vec![remedy("restart-pod", 0.9, 0.8, Decision::Act)]).why_no_fix(),
            None
        );
        let mut diagnosing = diagnosed(vec![]);
        diagnosing.state = IncidentState::Diagnosing;
        assert_eq!(diagnosing.why_no_fix(), None);
        assert_eq!(incident().why_no_fix(), None, "not diagnosed");
    }

    #[test]
    fn a_refused_fix_names_its_gate_and_reason() {
        let mut i = diagnosed(vec![remedy("restart-jvm-pod", 0.9, 0.8, Decision::Act)]);
        // As `Autonomy` stores it: `<gate>: <reason>`.
        i.fix = Some(fix(
            Some("scope: the target is outside every scope"),
            Some(crate::record::gate::Gate::Scope),
        ));
        assert_eq!(
            i.why_no_fix().as_deref(),
            Some("refused by the scope gate: the target is outside every scope")
        );
        // A reason stored without the prefix is shown whole.
        i.fix = Some(fix(
            Some("the kill switch is on (by alice: deploy)"),
            Some(crate::record::gate::Gate::Killswitch),
        ));
        assert_eq!(
            i.why_no_fix().as_deref(),
            Some("refused by the killswitch gate: the kill switch is on (by alice: deploy)")
        );
        i.fix = Some(fix(
            Some("cannot act: restart-jvm-pod needs the kubernetes runner"),
            None,
        ));
        assert_eq!(
            i.why_no_fix().as_deref(),
            Some("refused: cannot act: restart-jvm-pod needs the kubernetes runner")
        );
        i.fix = Some(fix(None, None));
        assert_eq!(i.why_no_fix(), None, "a fix going on needs no excuse");
        let mut ran = fix(None, None);
        ran.outcome = Some(crate::record::journal::FixOutcome::Succeeded);
        i.fix = Some(ran);
        assert_eq!(i.why_no_fix(), None);
    }
}
