//! `kind: Playbook`: which alerts it owns, the evidence it reads and its diagnosis tree.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Metadata;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaybookDocument {
    /// Always `rootfix/v1`.
    pub api_version: String,
    /// Always `Playbook`.
    pub kind: String,
    pub metadata: Metadata,
    pub spec: PlaybookSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PlaybookSpec {
    /// Alertmanager matchers (`name="v"`, `!=`, `=~`, `!~`); all must hold. The first playbook whose
    /// matchers fit an alert owns its incident.
    #[serde(rename = "match")]
    pub matchers: Vec<String>,
    /// Evidence is read at the alert's `startsAt` within ± this window (default `3s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Which service the alert is about; pruning state is kept per service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<PruneSpec>,
    /// Named signals that conditions read as `evidence.<name>`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub evidence: BTreeMap<String, SignalSpec>,
    /// The root of the diagnosis tree.
    pub tree: NodeSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TargetSpec {
    /// Template naming the target service (default `{{ $labels.service }}`).
    pub service: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct PruneSpec {
    /// Consecutive misses after which a node is pruned (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u32>,
    /// A pruned node is evaluated again every this many walks (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reprobe_every: Option<u32>,
    /// A prune expires after this long (default `24h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// One evidence signal: exactly one of the kinds is set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
pub struct SignalSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<QuerySpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loki: Option<QuerySpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jsonhttp: Option<JsonHttpSpec>,
}

/// A PromQL or LogQL instant query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct QuerySpec {
    /// The query; `{{ $labels.x }}` inserts an alert label, escaped for the query language.
    pub query: String,
    /// Which configured backend answers (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// An HTTP probe: status, redirect chain, TLS verification and issuer, timings, a JSON path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HttpSpec {
    pub url: String,
    /// `GET` (default) or `HEAD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Follow up to this many redirects, recording each hop (default 10; 0 = do not follow).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_redirects: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// A JSON path (`$.a.b[0]`) read from the body into `json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_path: Option<String>,
}

/// A DNS lookup of a name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DnsSpec {
    /// A host name, or a URL whose host is looked up.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// A TCP connect to `host:port`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TcpSpec {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// Any JSON API (a tracing backend, a status page) read through a JSON path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JsonHttpSpec {
    /// An http(s) URL; with `source`, a path (`/api/...`) under that configured backend.
    pub url: String,
    /// A configured backend (e.g. `tracing`) whose base URL `url` is appended to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A JSON path (`$.data[0].p99`).
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// A node of the diagnosis tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeSpec {
    /// Unique in the playbook; letters, digits and `_`.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// CEL over `alert` and `evidence`; absent means `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// A read-only diagnostic action run when `when` holds; its JSON output is evidence for the
    /// node's subtree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnose: Option<DiagnoseSpec>,
    /// Evaluated concurrently; every child whose condition holds is descended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<NodeSpec>,
    /// Only on leaves: the fix for the root cause this leaf identifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remedy: Option<RemedySpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DiagnoseSpec {
    /// An action with `purpose: diagnostic`.
    pub action: String,
    /// Values for the action's params; templates over `$labels`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// The evidence name its output is known by in the subtree.
    #[serde(rename = "as")]
    pub output: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RemedySpec {
    /// An action with `purpose: fix` (or `name` and `steps` for a remedy of several steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Values for the action's params; templates over `$labels`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// With `steps`: the fix type staged autonomy, approvals and outcomes know the remedy by
    /// (lowercase letters, digits and `-`; not the name of an action).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Actions run in order as one fix, under the locks of all their targets; when a step
    /// fails, the completed steps are rolled back in reverse order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<RemedyStepSpec>,
    /// With `action`: run it once per target, in widening waves (a gray release of the fix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waves: Option<WavesSpec>,
    pub confidence: ConfidenceSpec,
    /// A check over fresh evidence after execute (`evidence` now, `baseline` at diagnosis); with
    /// steps, after the last step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyConditionSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WavesSpec {
    /// The evidence (a signal, or a diagnose output above the leaf) whose value at diagnosis is
    /// the list of targets: a JSON array of strings.
    pub targets: String,
    /// The action's param each target is given as.
    pub param: String,
    /// How far each wave reaches, in order: a number of targets or a share (`"10%"`), counted
    /// from the first target; the last wave always reaches every target. Default
    /// `[1, "10%", "50%", "100%"]`: one target first (the canary), then widening.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sizes: Vec<WaveSizeSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum WaveSizeSpec {
    /// This many targets.
    Count(u32),
    /// This share of the targets, `"<1-100>%"` (rounded up).
    Share(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RemedyStepSpec {
    /// An action with `purpose: fix`. Every step but the last must have a rollback phase.
    pub action: String,
    /// Values for the action's params; templates over `$labels`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    /// A check over fresh evidence after this step's own verify phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyConditionSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConfidenceSpec {
    /// The fix is attempted only when the score reaches this, in (0, 1].
    pub threshold: f64,
    /// Each signal that holds adds its weight; the score is the sum, capped at 1.
    pub signals: Vec<WeightedSignalSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WeightedSignalSpec {
    pub when: String,
    /// In [0, 1].
    pub weight: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VerifyConditionSpec {
    pub when: String,
    /// Evaluations before giving up (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// Between evaluations (default `10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}
