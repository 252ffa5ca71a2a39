//! The result of a walk: which nodes hit, missed, were pruned or errored, what evidence they saw,
//! and what each remedy scored. It is the core of an incident's timeline and what `simulate`
//! prints.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeOutcome {
    /// The condition held; the node's subtree was walked.
    Hit,
    /// The condition did not hold (or a signal it reads had no data).
    Miss,
    /// Skipped: the node kept missing and is pruned.
    Pruned,
    /// The condition could not be decided (an evidence error, a deadline); not counted for pruning.
    Error,
}

impl NodeOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeOutcome::Hit => "hit",
            NodeOutcome::Miss => "miss",
            NodeOutcome::Pruned => "pruned",
            NodeOutcome::Error => "error",
        }
    }
}

/// One visited node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    pub id: String,
    pub parent: Option<String>,
    pub depth: usize,
    pub outcome: NodeOutcome,
    /// Why (the error, the missing data, the prune), when there is more to say than the outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The node was pruned and this walk was its scheduled re-probe.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub reprobe: bool,
    /// This miss pruned the node.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub pruned_now: bool,
    /// The evidence its condition read (`null` = no data); a value over
    /// [`RECORDED_VALUE_BYTES`] is left out (the evidence entry says its size).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub reads: BTreeMap<String, serde_json::Value>,
}

/// The largest evidence value a diagnosis records (as JSON): a diagnostic's output is capped at
/// 64 KiB already; this bounds a query answering thousands of series too.
pub const RECORDED_VALUE_BYTES: usize = 64 * 1024;

/// The size of `value` as JSON when it is over [`RECORDED_VALUE_BYTES`].
pub fn too_large_to_record(value: &serde_json::Value) -> Option<usize> {
    use serde_json::Value;
    // The usual values (a number, a flag, no data, a short string) are measured without encoding.
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => return None,
        // Encoded, a string is at most six times longer (a control character becomes `\uXXXX`).
        Value::String(s) if s.len() * 6 + 2 <= RECORDED_VALUE_BYTES => return None,
        _ => {}
    }
    let bytes = serde_json::to_vec(value).map_or(0, |v| v.len());
    (bytes > RECORDED_VALUE_BYTES).then_some(bytes)
}

/// One signal's value (or error) as fetched in this walk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub elapsed_ms: f64,
    /// The value was larger than [`RECORDED_VALUE_BYTES`] as JSON: the walk read it, the record
    /// keeps only its size (a replay treats it as missing).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub omitted_bytes: Option<usize>,
    /// The signal's `definition_hash` (absent for a diagnostic's output and in older records):
    /// a replay uses the value only under the same definition.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub definition: Option<String>,
}

/// One weighted signal of a confidence rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalScore {
    pub when: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub weight: f64,
    pub held: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "reason")]
pub enum Decision {
    /// Confident enough: the fix goes on to the gates.
    Act,
    /// Below the threshold: record and notify, do not act.
    NotifyOnly,
    /// The fix cannot be formed (a param's label is missing from the alert).
    Invalid(String),
}

/// One step of a remedy of several steps: an action and its params, rendered over the alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepCall {
    pub action: String,
    pub params: BTreeMap<String, String>,
}

/// What a remedy leaf scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemedyDecision {
    pub node: String,
    /// The fix type: the action's name, or a remedy of steps' `name`.
    pub action: String,
    pub params: BTreeMap<String, String>,
    /// A remedy of steps: each step's action and params, in order (empty for one action). A
    /// remedy in waves: the action once per target, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepCall>,
    /// A remedy in waves: how many of `steps` each wave runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<u32>,
    pub score: f64,
    pub threshold: f64,
    pub signals: Vec<SignalScore>,
    pub decision: Decision,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub playbook: String,
    /// The playbook's `content_hash` when it was walked (absent in records older than
    /// backtesting): a replay tells from it whether the playbook changed since.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub playbook_hash: Option<String>,
    /// The target service (pruning state is kept per service); absent when the alert lacks it.
    pub service: Option<String>,
    pub alertname: String,
    pub fingerprint: String,
    /// Evidence was read at this instant (the alert's `startsAt`).
    pub evidence_at: DateTime<Utc>,
    /// The alert's annotations as walked (conditions may read them; the labels are the
    /// incident's, fixed by the fingerprint).
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub annotations: BTreeMap<String, String>,
    pub walked_at: DateTime<Utc>,
    pub duration_ms: f64,
    /// Visited nodes in tree order (parents before children, siblings in file order).
    pub nodes: Vec<NodeReport>,
    pub evidence: BTreeMap<String, EvidenceReport>,
    pub remedies: Vec<RemedyDecision>,
    /// Problems with the state store; pruning was not applied where they occurred.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub state_errors: Vec<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub deadline_exceeded: bool,
}

impl Diagnosis {
    pub fn node(&self, id: &str) -> Option<&NodeReport> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Ids of the nodes with `outcome`, in tree order.
    pub fn with_outcome(&self, outcome: NodeOutcome) -> Vec<&str> {
        self.nodes
            .iter()
            .filter(|n| n.outcome == outcome)
            .map(|n| n.id.as_str())
            .collect()
    }

    /// The remedies that reached their threshold.
    pub fn actionable(&self) -> impl Iterator<Item = &RemedyDecision> {
        self.remedies.iter().filter(|r| r.decision == Decision::Act)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_value_over_the_cap_is_too_large_to_record() {
        assert_eq!(too_large_to_record(&serde_json::json!(0.97)), None);
        assert_eq!(too_large_to_record(&serde_json::json!("short")), None);
        let long = serde_json::Value::String("x".repeat(RECORDED_VALUE_BYTES + 1));
        assert_eq!(too_large_to_record(&long), Some(RECORDED_VALUE_BYTES + 3));
        let series: Vec<serde_json::Value> = (0..3000)
            .map(|n| serde_json::json!({"metric": {"pod": format!("order-api-{n}")}, "value": n}))
            .collect();
        let big = serde_json::Value::Array(series);
        let bytes = serde_json::to_vec(&big).unwrap().len();
        assert!(bytes > RECORDED_VALUE_BYTES);
        assert_eq!(too_large_to_record(&big), Some(bytes));
    }
}
