//! A validated playbook, ready to match alerts and be walked.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::condition::Condition;
use super::jsonpath::JsonPath;
use super::matcher::Matcher;
use super::template::Template;

/// Index of a node in [`Playbook::nodes`]; the root is 0.
pub type NodeIndex = usize;

#[derive(Debug, Clone)]
pub struct Playbook {
    pub name: String,
    pub description: Option<String>,
    pub source: PathBuf,
    /// The document's `model::content_hash`. A diagnosis records it, so a replay can tell
    /// whether the playbook changed since.
    pub content_hash: String,
    pub matchers: Vec<Matcher>,
    pub window: Duration,
    pub target_service: Template,
    pub prune: PrunePolicy,
    pub evidence: BTreeMap<String, Signal>,
    /// The tree, flattened: parents before children; `nodes[0]` is the root.
    pub nodes: Vec<Node>,
}

impl Playbook {
    pub fn root(&self) -> &Node {
        &self.nodes[0]
    }

    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// True when every matcher holds for `labels`.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrunePolicy {
    pub after: u32,
    pub reprobe_every: u32,
    pub ttl: Duration,
}

impl Default for PrunePolicy {
    fn default() -> Self {
        Self {
            after: 3,
            reprobe_every: 10,
            ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// One named evidence signal.
#[derive(Debug, Clone)]
pub struct Signal {
    pub name: String,
    pub description: Option<String>,
    /// The hash of the signal as written (`content_hash`): a recorded value is replayed only
    /// for the same definition.
    pub definition_hash: String,
    pub kind: SignalKind,
}

#[derive(Debug, Clone)]
pub enum SignalKind {
    Prometheus {
        query: Template,
        source: String,
    },
    Loki {
        query: Template,
        source: String,
    },
    Http {
        url: Template,
        method: HttpMethod,
        max_redirects: u32,
        timeout: Duration,
        json_path: Option<JsonPath>,
    },
    Dns {
        name: Template,
        timeout: Duration,
    },
    Tcp {
        address: Template,
        timeout: Duration,
    },
    JsonHttp {
        url: Template,
        source: Option<String>,
        path: JsonPath,
        timeout: Duration,
    },
}

impl SignalKind {
    /// The kind's name as written in playbooks and reported in metrics.
    pub fn label(&self) -> &'static str {
        match self {
            SignalKind::Prometheus { .. } => "prometheus",
            SignalKind::Loki { .. } => "loki",
            SignalKind::Http { .. } => "http",
            SignalKind::Dns { .. } => "dns",
            SignalKind::Tcp { .. } => "tcp",
            SignalKind::JsonHttp { .. } => "jsonhttp",
        }
    }

    /// A query a backend answers for a past instant (Prometheus, Loki); a probe only tells what
    /// the network does now.
    pub fn reads_the_past(&self) -> bool {
        matches!(self, SignalKind::Prometheus { .. } | SignalKind::Loki { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Head,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub description: Option<String>,
    pub when: Condition,
    pub diagnose: Option<Diagnose>,
    pub children: Vec<NodeIndex>,
    pub remedy: Option<Remedy>,
    pub parent: Option<NodeIndex>,
    pub depth: usize,
}

/// A diagnostic action run at a node; its output is `evidence.<output>` below it.
#[derive(Debug, Clone)]
pub struct Diagnose {
    pub action: String,
    pub params: BTreeMap<String, Template>,
    pub output: String,
}

#[derive(Debug, Clone)]
pub struct Remedy {
    /// The fix type: the action's name, or a remedy of steps' `name`.
    pub action: String,
    /// The action's params (empty for a remedy of steps).
    pub params: BTreeMap<String, Template>,
    /// A remedy of steps, in order (empty for one action).
    pub steps: Vec<RemedyStep>,
    /// The action once per target, in waves.
    pub waves: Option<Waves>,
    pub confidence: ConfidenceRule,
    pub verify: Option<VerifyCondition>,
}

/// A remedy's action run once per target in widening waves.
#[derive(Debug, Clone, PartialEq)]
pub struct Waves {
    /// The evidence whose value (a JSON array of strings) lists the targets.
    pub targets: String,
    /// The param each target is given as.
    pub param: String,
    /// How far each wave reaches.
    pub sizes: Vec<WaveSize>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WaveSize {
    Count(u32),
    /// A share in (0, 1].
    Share(f64),
}

/// The most targets one remedy in waves acts on.
pub const MAX_WAVE_TARGETS: usize = 500;

impl Waves {
    /// How many targets each wave adds, for `targets` targets: every wave reaches at least one
    /// more target than the one before (a wave that would add none is left out), and the last
    /// reaches them all.
    pub fn split(&self, targets: usize) -> Vec<u32> {
        let mut out = Vec::new();
        let mut reached = 0usize;
        for size in &self.sizes {
            let upto = match *size {
                WaveSize::Count(n) => n as usize,
                WaveSize::Share(f) => (f * targets as f64 - 1e-9).ceil() as usize,
            }
            .min(targets);
            if upto > reached {
                out.push((upto - reached) as u32);
                reached = upto;
            }
        }
        if reached < targets {
            out.push((targets - reached) as u32);
        }
        out
    }
}

/// One step of a remedy of several steps.
#[derive(Debug, Clone)]
pub struct RemedyStep {
    pub action: String,
    pub params: BTreeMap<String, Template>,
    /// Checked after the step's own verify phase, over fresh evidence.
    pub verify: Option<VerifyCondition>,
}

#[derive(Debug, Clone)]
pub struct ConfidenceRule {
    pub threshold: f64,
    pub signals: Vec<WeightedSignal>,
}

#[derive(Debug, Clone)]
pub struct WeightedSignal {
    pub when: Condition,
    pub weight: f64,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct VerifyCondition {
    pub when: Condition,
    pub retries: u32,
    pub interval: Duration,
}
