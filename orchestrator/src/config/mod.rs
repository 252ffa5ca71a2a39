//! `rootfix serve --config rootfix.yaml`: the server's configuration, read and checked like a
//! playbook (every problem reported as `file:line:col: field: message`).
//!
//! ```yaml
//! listen: 127.0.0.1:5001
//! redis: {url: redis://127.0.0.1:6379/, key_prefix: ""}
//! playbooks: playbooks          # relative to this file
//! actions: actions
//! tokens:
//!   - {name: alertmanager, role: ingest, token_env: ROOTFIX_INGEST_TOKEN}
//!   - {name: sre-oncall, role: approver, token_env: ROOTFIX_APPROVER_TOKEN}
//! limits: {workers: 32, max_body_bytes: 1048576, walk_deadline: 60s, claim_idle: 2m}
//! evidence:
//!   prometheus: {default: {url: http://127.0.0.1:9090}}
//!   loki: {default: {url: http://loki:3100}}
//!   jsonhttp: {tracing: {url: http://jaeger:16686}}
//! silences:                     # optional: silence an alert for a cooldown after an auto fix
//!   alertmanager: http://127.0.0.1:9093        # or alertmanager_env: NAME
//!   cooldown: 30m
//!   match_labels: [alertname, service]         # optional; default: every label of the alert
//! fixes:
//!   state_dir: /var/lib/rootfix/fixes
//!   host_paths:                 # optional: mounts' host paths as actions name them → this install's
//!     /etc/nginx/conf.d: /srv/nginx/conf.d
//! retention:                    # optional; see config/retention.rs
//!   incidents: 30d
//!   export: /var/lib/rootfix/incidents.jsonl
//! notifications:                # see crate::notify
//!   receivers:
//!     - {name: sre-slack, format: slack, url_env: ROOTFIX_SLACK_WEBHOOK}
//! ```
//! Secrets come from the environment (`token_env`, `url_env`, `alertmanager_env`) so the file can
//! be committed.
//!
//! # Layout
//! `load` reads the file and checks it section by section, collecting every problem before it
//! answers; each section has its module: `server` (`listen`, `consumer`), `redis`, `tokens` (and
//! [`Role`]), `limits`, `fixes`, `kubernetes`, `silences`, `retention`. The `evidence:`, `notifications:` and
//! `autonomy:` sections are checked by the modules that use them ([`crate::evidence`],
//! [`crate::notify`], [`crate::autonomy::config`]).

mod fixes;
mod kubernetes;
mod limits;
mod load;
mod redis;
mod retention;
mod server;
mod silences;
mod tokens;

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::catalog::problem::Problem;
use crate::evidence::EvidenceBackends;
use crate::notify::NotificationsConfig;
use crate::silence::SilenceConfig;
pub use fixes::FixesConfig;
pub use kubernetes::KubernetesConfig;
pub use limits::Limits;
pub use retention::RetentionConfig;
pub use tokens::{Role, Token};

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub source: PathBuf,
    pub listen: SocketAddr,
    pub redis_url: String,
    pub key_prefix: String,
    pub playbooks: PathBuf,
    pub actions: PathBuf,
    pub tokens: Vec<Token>,
    /// The `evidence:` section: Prometheus, Loki and JSON backends, and the probes' trust roots.
    pub evidence: EvidenceBackends,
    pub limits: Limits,
    pub consumer: String,
    pub fixes: FixesConfig,
    pub kubernetes: KubernetesConfig,
    /// The `silences:` section: where and how long to silence an alert after an auto fix.
    pub silences: Option<SilenceConfig>,
    /// The `notifications:` section; without receivers, notifications are off.
    pub notifications: NotificationsConfig,
    /// The `autonomy:` section: scopes, the promotion gate, approvals, dry-run.
    pub autonomy: crate::autonomy::config::AutonomyConfig,
    /// The `chat:` section: the chat platforms whose button callbacks rootfix takes.
    pub chat: crate::chat::ChatConfig,
    /// The `retention:` section: how long closed incidents and audit events are kept, the export.
    pub retention: RetentionConfig,
}

/// Why the config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}
