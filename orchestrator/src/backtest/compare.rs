//! The old decision against the new one, and both against what is known of the fix that ran:
//! the verdict an SRE gave, whether it held or recurred. Pure: no I/O.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::engine::diagnosis::{Decision, Diagnosis, NodeOutcome, RemedyDecision};
use crate::incident::{Incident, IncidentState};
use crate::record::journal::FixOutcome;

use super::replay::Rewalk;

/// What a walk decided: the playbook, the path (nodes that hit) and the fix it would start (the
/// first remedy that reached its threshold, as the handler picks it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decided {
    /// `None`: no playbook matched (or the incident was never diagnosed).
    pub playbook: Option<String>,
    pub path: Vec<String>,
    pub fix: Option<FixChoice>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FixChoice {
    pub node: String,
    pub action: String,
    pub params: BTreeMap<String, String>,
    /// A remedy of steps (or in waves): what each step runs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<crate::engine::diagnosis::StepCall>,
    pub score: f64,
    pub threshold: f64,
}

impl FixChoice {
    /// The same fix: the same action on the same params, the same steps (the node may have
    /// moved).
    pub fn same_fix(&self, other: &FixChoice) -> bool {
        self.action == other.action && self.params == other.params && self.steps == other.steps
    }
}

impl Decided {
    pub fn of(diagnosis: Option<&Diagnosis>) -> Self {
        let Some(d) = diagnosis else {
            return Self {
                playbook: None,
                path: Vec::new(),
                fix: None,
            };
        };
        Self {
            playbook: Some(d.playbook.clone()),
            path: d
                .with_outcome(NodeOutcome::Hit)
                .into_iter()
                .map(str::to_string)
                .collect(),
            fix: d.actionable().next().map(|r| FixChoice {
                node: r.node.clone(),
                action: r.action.clone(),
                params: r.params.clone(),
                steps: r.steps.clone(),
                score: r.score,
                threshold: r.threshold,
            }),
        }
    }

    fn same_decision(&self, other: &Decided) -> bool {
        match (&self.fix, &other.fix) {
            (None, None) => true,
            (Some(a), Some(b)) => a.same_fix(b),
            _ => false,
        }
    }
}

/// How the decision moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// The same fix (or none) through the same path.
    Unchanged,
    /// The same fix (or none), through another path.
    PathOnly,
    /// No fix before; the candidate would start one.
    NewFix,
    /// A fix before; the candidate would start none.
    FixLost,
    /// Another fix (another action or other params).
    OtherFix,
}

impl Change {
    pub fn decision_changed(self) -> bool {
        matches!(self, Change::NewFix | Change::FixLost | Change::OtherFix)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Change::Unchanged => "unchanged",
            Change::PathOnly => "path changed, same decision",
            Change::NewFix => "a new fix would start",
            Change::FixLost => "the fix would no longer start",
            Change::OtherFix => "another fix would start",
        }
    }
}

/// What is known of the recorded fix, once it executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Known {
    /// An SRE confirmed it a misfix.
    Misfix,
    /// It verified, but the alert or its target came back (outcome `recurred`).
    Recurred,
    /// An SRE confirmed it correct.
    Correct,
    /// It verified and the alert resolved, without a verdict or a recurrence.
    Held,
    /// It executed and failed (rolled back, or its rollback failed).
    Failed,
}

impl Known {
    /// From the incident: a verdict first (a person looked), then a recurrence, then the outcome.
    pub fn of(incident: &Incident) -> Option<Self> {
        let fix = incident.fix.as_ref()?;
        let outcome = fix.outcome.as_ref()?;
        if !outcome.executed() {
            return None;
        }
        if fix.verdict.as_ref().is_some_and(|v| !v.correct) {
            return Some(Known::Misfix);
        }
        if incident.timeline.iter().any(|t| t.kind == "recurred") {
            return Some(Known::Recurred);
        }
        if fix.verdict.as_ref().is_some_and(|v| v.correct) {
            return Some(Known::Correct);
        }
        match outcome {
            FixOutcome::Succeeded if incident.state == IncidentState::Resolved => Some(Known::Held),
            FixOutcome::Succeeded => None,
            _ => Some(Known::Failed),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Known::Misfix => "confirmed misfix",
            Known::Recurred => "recurred",
            Known::Correct => "confirmed correct",
            Known::Held => "verified and resolved",
            Known::Failed => "failed",
        }
    }
}

/// What the change would have done against what is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VerdictEffect {
    MisfixAvoided,
    MisfixRepeated,
    CorrectFixLost,
    RecurrenceRepeated,
}

impl VerdictEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictEffect::MisfixAvoided => "misfix avoided",
            VerdictEffect::MisfixRepeated => "misfix repeated",
            VerdictEffect::CorrectFixLost => "correct fix lost",
            VerdictEffect::RecurrenceRepeated => "recurrence repeated",
        }
    }
}

/// A remedy whose decision moved across its threshold (or appeared, or went away).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemedyCrossing {
    pub node: String,
    pub action: String,
    pub old: Option<RemedyScore>,
    pub new: Option<RemedyScore>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemedyScore {
    pub score: f64,
    pub threshold: f64,
    pub decision: &'static str,
}

impl RemedyScore {
    fn of(r: &RemedyDecision) -> Self {
        Self {
            score: r.score,
            threshold: r.threshold,
            decision: match r.decision {
                Decision::Act => "act",
                Decision::NotifyOnly => "notify-only",
                Decision::Invalid(_) => "invalid",
            },
        }
    }
}

/// One incident replayed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replayed {
    pub incident: String,
    pub alertname: String,
    pub service: Option<String>,
    pub evidence_at: DateTime<Utc>,
    /// The playbook hash the record was diagnosed with, and the candidate's.
    pub recorded_hash: Option<String>,
    pub candidate_hash: Option<String>,
    pub old: Decided,
    pub new: Decided,
    pub change: Change,
    pub crossed: Vec<RemedyCrossing>,
    pub known: Option<Known>,
    pub effect: Option<VerdictEffect>,
    /// Signals the candidate read that the record lacks, with why (not fetched).
    pub missing: BTreeMap<String, String>,
    /// Signals read from the live backends at the record's time.
    pub fetched: Vec<String>,
}

impl Replayed {
    pub fn compare(incident: &Incident, rewalk: &Rewalk) -> Self {
        let recorded = incident.diagnosis.as_ref();
        let old = Decided::of(recorded);
        let new = Decided::of(rewalk.diagnosis.as_ref());
        let change = if !old.same_decision(&new) {
            match (&old.fix, &new.fix) {
                (None, Some(_)) => Change::NewFix,
                (Some(_), None) => Change::FixLost,
                _ => Change::OtherFix,
            }
        } else if old.path != new.path || old.playbook != new.playbook {
            Change::PathOnly
        } else {
            Change::Unchanged
        };
        let known = Known::of(incident);
        // Only a fix that is the one the record decided on is judged by its verdict.
        let judged = incident.fix.as_ref().is_some_and(|f| {
            old.fix
                .as_ref()
                .is_some_and(|o| o.action == f.action && o.params == f.params && o.steps == f.steps)
        });
        let still_fixes = || match (&old.fix, &new.fix) {
            (Some(o), Some(n)) => o.same_fix(n),
            _ => false,
        };
        let effect = match known.filter(|_| judged) {
            Some(Known::Misfix) if still_fixes() => Some(VerdictEffect::MisfixRepeated),
            Some(Known::Misfix) => Some(VerdictEffect::MisfixAvoided),
            Some(Known::Recurred) if still_fixes() => Some(VerdictEffect::RecurrenceRepeated),
            Some(Known::Correct | Known::Held) if !still_fixes() => Some(VerdictEffect::CorrectFixLost),
            _ => None,
        };
        Self {
            incident: incident.id.clone(),
            alertname: incident.alertname.clone(),
            service: incident.service.clone(),
            evidence_at: recorded.map_or(incident.alert.starts_at, |d| d.evidence_at),
            recorded_hash: recorded.and_then(|d| d.playbook_hash.clone()),
            candidate_hash: rewalk.diagnosis.as_ref().and_then(|d| d.playbook_hash.clone()),
            crossed: crossings(recorded, rewalk.diagnosis.as_ref()),
            old,
            new,
            change,
            known,
            effect,
            missing: rewalk.missing.clone(),
            fetched: rewalk.fetched.iter().cloned().collect(),
        }
    }
}

/// The remedies (by node) whose decision differs: act ↔ notify-only ↔ invalid, or present on one
/// side only; in the new tree's order, then the old-only ones.
fn crossings(old: Option<&Diagnosis>, new: Option<&Diagnosis>) -> Vec<RemedyCrossing> {
    let old_remedies: Vec<&RemedyDecision> = old.map(|d| d.remedies.iter().collect()).unwrap_or_default();
    let new_remedies: Vec<&RemedyDecision> = new.map(|d| d.remedies.iter().collect()).unwrap_or_default();
    let mut out = Vec::new();
    for n in &new_remedies {
        let o = old_remedies.iter().find(|o| o.node == n.node);
        let (old_score, new_score) = (o.map(|o| RemedyScore::of(o)), RemedyScore::of(n));
        if old_score.as_ref().map(|s| s.decision) != Some(new_score.decision) {
            out.push(RemedyCrossing {
                node: n.node.clone(),
                action: n.action.clone(),
                old: old_score,
                new: Some(new_score),
            });
        }
    }
    for o in &old_remedies {
        if !new_remedies.iter().any(|n| n.node == o.node) {
            out.push(RemedyCrossing {
                node: o.node.clone(),
                action: o.action.clone(),
                old: Some(RemedyScore::of(o)),
                new: None,
            });
        }
    }
    out
}

/// Counts over a backtest.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    pub replayed: usize,
    pub unchanged: usize,
    pub paths_changed: usize,
    pub decisions_changed: usize,
    pub new_fixes: usize,
    pub fixes_lost: usize,
    pub other_fixes: usize,
    pub misfixes_avoided: usize,
    pub misfixes_repeated: usize,
    pub correct_fixes_lost: usize,
    pub recurrences_repeated: usize,
    /// Per signal the record lacked, how many replays wanted it.
    pub missing_signals: BTreeMap<String, usize>,
    /// Replays that read signals live at the record's time.
    pub fetched: usize,
    /// Replays whose recorded playbook hash differs from the candidate's.
    pub playbook_changed: usize,
}

impl Summary {
    pub fn of(replays: &[Replayed]) -> Self {
        let mut s = Summary {
            replayed: replays.len(),
            ..Summary::default()
        };
        for r in replays {
            match r.change {
                Change::Unchanged => s.unchanged += 1,
                Change::PathOnly => s.paths_changed += 1,
                Change::NewFix => s.new_fixes += 1,
                Change::FixLost => s.fixes_lost += 1,
                Change::OtherFix => s.other_fixes += 1,
            }
            if r.change.decision_changed() {
                s.decisions_changed += 1;
            }
            match r.effect {
                Some(VerdictEffect::MisfixAvoided) => s.misfixes_avoided += 1,
                Some(VerdictEffect::MisfixRepeated) => s.misfixes_repeated += 1,
                Some(VerdictEffect::CorrectFixLost) => s.correct_fixes_lost += 1,
                Some(VerdictEffect::RecurrenceRepeated) => s.recurrences_repeated += 1,
                None => {}
            }
            for name in r.missing.keys() {
                *s.missing_signals.entry(name.clone()).or_default() += 1;
            }
            if !r.fetched.is_empty() {
                s.fetched += 1;
            }
            if r.recorded_hash.is_some() && r.recorded_hash != r.candidate_hash {
                s.playbook_changed += 1;
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::diagnosis::StepCall;

    fn choice(steps: &[(&str, &str)]) -> FixChoice {
        FixChoice {
            node: "replica_lag".into(),
            action: "replica-lag-response".into(),
            params: BTreeMap::new(),
            steps: steps
                .iter()
                .map(|(action, address)| StepCall {
                    action: action.to_string(),
                    params: BTreeMap::from([("replica_address".to_string(), address.to_string())]),
                })
                .collect(),
            score: 1.0,
            threshold: 0.7,
        }
    }

    #[test]
    fn a_remedy_of_steps_is_the_same_fix_only_with_the_same_steps() {
        let recorded = choice(&[("mysql-replica-lag", "db-r:3306"), ("http-set-value", "x")]);
        assert!(recorded.same_fix(&recorded.clone()));
        assert!(
            !recorded.same_fix(&choice(&[("mysql-replica-lag", "db-r:3306")])),
            "a step less"
        );
        assert!(
            !recorded.same_fix(&choice(&[
                ("mysql-replica-lag", "db-p:3306"),
                ("http-set-value", "x")
            ])),
            "a step on another target"
        );
    }
}
