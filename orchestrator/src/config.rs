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
//! limits: {workers: 8, max_body_bytes: 1048576, walk_deadline: 60s, claim_idle: 2m}
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
//! notifications:                # see crate::notify
//!   receivers:
//!     - {name: sre-slack, format: slack, url_env: ROOTFIX_SLACK_WEBHOOK}
//! ```
//! Secrets come from the environment (`token_env`, `url_env`, `alertmanager_env`) so the file can
//! be committed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::catalog::parse::{Source, deserialize};
use crate::catalog::problem::Problem;
use crate::catalog::report::Reporter;
use crate::catalog::spans::{SpanIndex, join_index, join_key};
use crate::evidence::EvidenceBackends;
use crate::notify::{NotificationsConfig, NotificationsDocument};
use crate::silence::{DEFAULT_TIMEOUT, MAX_COOLDOWN, SilenceConfig, SilencesDocument};

/// Roles of a bearer token. `admin` may do everything; `approver` also what `viewer` may;
/// `ingest` may only post alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Ingest,
    Viewer,
    Approver,
    Admin,
}

impl Role {
    /// Whether a token of this role may do what `required` guards.
    pub fn allows(self, required: Role) -> bool {
        match (self, required) {
            (Role::Admin, _) => true,
            (Role::Ingest, Role::Ingest) => true,
            (Role::Ingest, _) | (_, Role::Ingest) => false,
            (Role::Approver, Role::Viewer | Role::Approver) => true,
            (Role::Viewer, Role::Viewer) => true,
            _ => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Viewer => "viewer",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct ConfigDocument {
    #[serde(default)]
    listen: Option<String>,
    #[serde(default)]
    redis: RedisDocument,
    #[serde(default)]
    playbooks: Option<PathBuf>,
    #[serde(default)]
    actions: Option<PathBuf>,
    #[serde(default)]
    tokens: Vec<TokenDocument>,
    #[serde(default)]
    evidence: EvidenceBackends,
    #[serde(default)]
    limits: LimitsDocument,
    /// Consumer name in the stream's group; stable across restarts of one replica.
    #[serde(default)]
    consumer: Option<String>,
    #[serde(default)]
    fixes: FixesDocument,
    #[serde(default)]
    kubernetes: KubernetesDocument,
    #[serde(default)]
    silences: Option<SilencesDocument>,
    #[serde(default)]
    notifications: NotificationsDocument,
    #[serde(default)]
    autonomy: crate::autonomy::config::AutonomyDocument,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
struct KubernetesDocument {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    default_namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
struct FixesDocument {
    #[serde(default)]
    state_dir: Option<PathBuf>,
    #[serde(default)]
    lease: Option<String>,
    #[serde(default)]
    lock_wait: Option<String>,
    #[serde(default)]
    host_paths: BTreeMap<String, String>,
}

/// The Kubernetes runners: on when `enabled`, with the in-cluster or kubeconfig credentials.
#[derive(Debug, Clone)]
pub struct KubernetesConfig {
    pub enabled: bool,
    /// Namespace of Jobs whose action has no `namespace` param.
    pub default_namespace: String,
}

/// How fixes run.
#[derive(Debug, Clone)]
pub struct FixesConfig {
    /// Host folder for the per-fix state folders the phases share (`/rootfix/state`).
    pub state_dir: PathBuf,
    /// Lease of a target's lock; renewed every third of it while the fix runs.
    pub lease: Duration,
    /// How long a fix waits for a target another fix holds; zero refuses at once.
    pub lock_wait: Duration,
    /// Host paths as action files name them (mounts' `host`) → host paths on this install; the
    /// Docker runner binds the mapped path (longest key wins, the rest of the path appended).
    pub host_paths: BTreeMap<PathBuf, PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
struct RedisDocument {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    url_env: Option<String>,
    #[serde(default)]
    key_prefix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct TokenDocument {
    name: String,
    role: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    token_env: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
struct LimitsDocument {
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

/// A bearer token and who holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub name: String,
    pub role: Role,
    pub secret: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
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
}

/// Why the config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Problem>),
}

impl ServeConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Parses `text` (reported as `path`); `env` looks up environment variables.
    pub fn parse(path: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let source = Source {
            path: path.to_path_buf(),
            text: text.to_string(),
        };
        let spans = SpanIndex::build(text);
        let mut problems = Vec::new();
        let doc: Option<ConfigDocument> = deserialize(&source, &spans, &mut problems);
        let Some(doc) = doc else {
            return Err(ConfigError::Invalid(problems));
        };
        let mut r = Reporter {
            file: path,
            spans: &spans,
            problems: &mut problems,
        };
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let relative = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };

        let listen_text = doc.listen.clone().unwrap_or_else(|| "127.0.0.1:5001".into());
        let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
            r.at_value(
                "listen",
                format!("`{listen_text}` is not an address like 127.0.0.1:5001"),
            );
            SocketAddr::from(([127, 0, 0, 1], 5001))
        });

        let redis_url = match (&doc.redis.url, &doc.redis.url_env) {
            (Some(_), Some(_)) => {
                r.at_key("redis", "set either url or url_env, not both");
                String::new()
            }
            (Some(url), None) => url.clone(),
            (None, Some(var)) => env(var).unwrap_or_else(|| {
                r.at_value("redis.url_env", format!("environment variable {var} is not set"));
                String::new()
            }),
            (None, None) => "redis://127.0.0.1:6379/".into(),
        };
        if !(redis_url.is_empty() || redis_url.starts_with("redis://") || redis_url.starts_with("rediss://"))
        {
            r.at_value("redis.url", "expected a redis:// URL");
        }

        let mut tokens: Vec<Token> = Vec::new();
        let mut names = BTreeMap::new();
        for (i, t) in doc.tokens.iter().enumerate() {
            let field = join_index("tokens", i);
            let role = match t.role.as_str() {
                "ingest" => Some(Role::Ingest),
                "viewer" => Some(Role::Viewer),
                "approver" => Some(Role::Approver),
                "admin" => Some(Role::Admin),
                other => {
                    r.at_value(
                        &format!("{field}.role"),
                        format!("unknown role `{other}`; expected ingest, viewer, approver or admin"),
                    );
                    None
                }
            };
            if names.insert(t.name.clone(), i).is_some() {
                r.at_value(
                    &format!("{field}.name"),
                    format!("another token is named `{}`", t.name),
                );
            }
            let secret = match (&t.token, &t.token_env) {
                (Some(s), None) => Some(s.clone()),
                (None, Some(var)) => {
                    let value = env(var);
                    if value.is_none() {
                        r.at_value(
                            &format!("{field}.token_env"),
                            format!("environment variable {var} is not set"),
                        );
                    }
                    value
                }
                _ => {
                    r.at_key(&field, "set exactly one of token and token_env");
                    None
                }
            };
            if let Some(s) = &secret
                && s.len() < 16
            {
                r.at_key(&field, "a token must be at least 16 characters");
            }
            if let (Some(role), Some(secret)) = (role, secret) {
                if tokens.iter().any(|other| other.secret == secret) {
                    r.at_key(&field, "two tokens have the same secret");
                }
                tokens.push(Token {
                    name: t.name.clone(),
                    role,
                    secret,
                });
            }
        }
        if tokens.is_empty() && doc.tokens.is_empty() {
            r.at_key("tokens", "no tokens: nothing could post alerts or read incidents");
        }

        let workers = doc.limits.workers.unwrap_or(8);
        if workers == 0 || workers > 1024 {
            r.at_value("limits.workers", "must be in 1..=1024");
        }
        let max_body_bytes = doc.limits.max_body_bytes.unwrap_or(1 << 20);
        if max_body_bytes < 1024 {
            r.at_value("limits.max_body_bytes", "must be at least 1024");
        }
        let walk_deadline = r.duration(
            "limits.walk_deadline",
            doc.limits.walk_deadline.as_deref(),
            Duration::from_secs(60),
        );
        let claim_idle = r.duration(
            "limits.claim_idle",
            doc.limits.claim_idle.as_deref(),
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
            doc.limits.reload_interval.as_deref(),
            Duration::from_secs(1),
        );

        let fixes = FixesConfig {
            state_dir: relative(
                doc.fixes
                    .state_dir
                    .clone()
                    .unwrap_or_else(|| "/var/lib/rootfix/fixes".into()),
            ),
            lease: r.duration("fixes.lease", doc.fixes.lease.as_deref(), Duration::from_secs(30)),
            lock_wait: match doc.fixes.lock_wait.as_deref() {
                Some("0") | Some("0s") => Duration::ZERO,
                other => r.duration("fixes.lock_wait", other, Duration::ZERO),
            },
            host_paths: check_host_paths(&doc.fixes.host_paths, &mut r),
        };
        let consumer = doc.consumer.clone().unwrap_or_else(default_consumer);
        if consumer.is_empty() || consumer.contains(char::is_whitespace) {
            r.at_value("consumer", "a consumer name has no spaces");
        }
        let key_prefix = doc.redis.key_prefix.clone().unwrap_or_default();
        if key_prefix.contains(char::is_whitespace) {
            r.at_value("redis.key_prefix", "a key prefix has no spaces");
        }

        let notifications = crate::notify::check(&doc.notifications, &mut r, env);
        let autonomy = crate::autonomy::config::check(&doc.autonomy, &mut r);

        if let Err(e) = doc.evidence.validate() {
            r.at_value(&format!("evidence.{}", e.field), e.message);
        }
        let silences = doc.silences.as_ref().and_then(|s| check_silences(s, env, &mut r));

        if !problems.is_empty() {
            crate::catalog::problem::sort_problems(&mut problems);
            return Err(ConfigError::Invalid(problems));
        }
        Ok(Self {
            source: path.to_path_buf(),
            listen,
            redis_url,
            key_prefix,
            playbooks: relative(doc.playbooks.unwrap_or_else(|| "playbooks".into())),
            actions: relative(doc.actions.unwrap_or_else(|| "actions".into())),
            tokens,
            evidence: doc.evidence,
            limits: Limits {
                workers,
                max_body_bytes,
                walk_deadline,
                claim_idle,
                reload_interval,
            },
            consumer,
            fixes,
            kubernetes: KubernetesConfig {
                enabled: doc.kubernetes.enabled.unwrap_or(false),
                default_namespace: doc
                    .kubernetes
                    .default_namespace
                    .clone()
                    .unwrap_or_else(|| "rootfix".into()),
            },
            silences,
            notifications,
            autonomy,
        })
    }
}

/// `fixes.host_paths`: both sides absolute paths without `..`.
fn check_host_paths(doc: &BTreeMap<String, String>, r: &mut Reporter<'_>) -> BTreeMap<PathBuf, PathBuf> {
    let plain = |p: &str| p.starts_with('/') && !p.split('/').any(|seg| seg == "..");
    let mut out = BTreeMap::new();
    for (from, to) in doc {
        let field = join_key("fixes.host_paths", from);
        let mut ok = true;
        if !plain(from) {
            r.at_key(
                &field,
                format!("`{from}` is not an absolute path without `..` (a mount's host path as an action names it)"),
            );
            ok = false;
        }
        if !plain(to) {
            r.at_value(
                &field,
                format!("`{to}` is not an absolute path without `..` (the path on this install)"),
            );
            ok = false;
        }
        if ok {
            out.insert(PathBuf::from(from), PathBuf::from(to));
        }
    }
    out
}

/// The `silences:` section; `None` after reporting when it is unusable.
fn check_silences(
    doc: &SilencesDocument,
    env: &dyn Fn(&str) -> Option<String>,
    r: &mut Reporter<'_>,
) -> Option<SilenceConfig> {
    let (field, text) = match (&doc.alertmanager, &doc.alertmanager_env) {
        (Some(url), None) => ("silences.alertmanager", Some(url.clone())),
        (None, Some(var)) => {
            let value = env(var);
            if value.is_none() {
                r.at_value(
                    "silences.alertmanager_env",
                    format!("environment variable {var} is not set"),
                );
            }
            ("silences.alertmanager_env", value)
        }
        _ => {
            r.at_key("silences", "set exactly one of alertmanager and alertmanager_env");
            ("silences", None)
        }
    };
    let url = text.and_then(|text| {
        crate::silence::parse_base_url(text.trim())
            .map_err(|message| r.at_value(field, message))
            .ok()
    });
    let cooldown = match doc.cooldown.as_deref() {
        None => {
            r.at_key("silences", "set cooldown, how long a silence lasts (e.g. 30m)");
            None
        }
        Some(text) => {
            let problems = r.problems.len();
            let d = r.duration("silences.cooldown", Some(text), Duration::ZERO);
            if r.problems.len() > problems {
                None
            } else if d > MAX_COOLDOWN {
                r.at_value("silences.cooldown", "must be at most 7 days");
                None
            } else {
                Some(d)
            }
        }
    };
    let mut matchers_from = Vec::new();
    if let Some(names) = &doc.match_labels {
        if names.is_empty() {
            r.at_value(
                "silences.match_labels",
                "an empty list; leave match_labels out to match on every label of the alert",
            );
        }
        for (i, name) in names.iter().enumerate() {
            let item = join_index("silences.match_labels", i);
            if !crate::silence::is_label_name(name) {
                r.at_value(&item, format!("`{name}` is not a label name"));
            } else if matchers_from.contains(name) {
                r.at_value(&item, format!("`{name}` is listed twice"));
            } else {
                matchers_from.push(name.clone());
            }
        }
    }
    let timeout = r.duration("silences.timeout", doc.timeout.as_deref(), DEFAULT_TIMEOUT);
    Some(SilenceConfig {
        alertmanager_url: url?,
        cooldown: cooldown?,
        matchers_from,
        timeout,
    })
}

/// `<hostname>`, stable across restarts of one machine or pod.
fn default_consumer() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "rootfix".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The problems of a config that must not parse.
    fn invalid(text: &str) -> Vec<Problem> {
        match parse(text) {
            Err(ConfigError::Invalid(problems)) => problems,
            other => panic!("accepted a bad config: {other:?}"),
        }
    }

    fn parse(text: &str) -> Result<ServeConfig, ConfigError> {
        ServeConfig::parse(Path::new("/etc/rootfix/rootfix.yaml"), text, &|name| {
            (name == "INGEST").then(|| "ingest-token-0123456789".to_string())
        })
    }

    #[test]
    fn reads_a_full_config_with_secrets_from_the_environment() {
        let c = parse(
            "listen: 127.0.0.1:6001\nredis: {url: redis://127.0.0.1:6380/, key_prefix: 'a:'}\ntokens:\n  - {name: am, role: ingest, token_env: INGEST}\n  - {name: admin, role: admin, token: admin-token-0123456789}\nlimits: {workers: 4, walk_deadline: 10s, claim_idle: 30s}\n",
        )
        .unwrap();
        assert_eq!(c.listen.port(), 6001);
        assert_eq!(c.tokens[0].secret, "ingest-token-0123456789");
        assert_eq!(c.tokens[1].role, Role::Admin);
        assert_eq!(c.playbooks, PathBuf::from("/etc/rootfix/playbooks"));
        assert_eq!(c.limits.workers, 4);
        assert_eq!(c.key_prefix, "a:");
    }

    #[test]
    fn reads_the_autonomy_section() {
        let c = parse(
            "tokens: [{name: am, role: ingest, token_env: INGEST}]\nautonomy:\n  dry_run: true\n  approval_ttl: 15m\n  promotion: {min_in_stage: 3d, window: 24h, min_success_rate: 0.95, min_samples: 7, apply: auto}\n  scopes:\n    - {name: staging, match: ['env=\"staging\"'], max_stage: auto, fixes_per_hour: 6, concurrency: 2}\n    - {name: prod-core, match: ['env=\"prod\"', 'tier=~\"core|db\"'], max_stage: silent, dry_run: true}\n",
        )
        .unwrap();
        let a = &c.autonomy;
        assert!(a.dry_run);
        assert_eq!(a.approval_ttl, Duration::from_secs(900));
        assert_eq!(a.promotion.min_in_stage, Duration::from_secs(3 * 86400));
        assert_eq!(a.promotion.window, Duration::from_secs(86400));
        assert_eq!((a.promotion.min_samples, a.promotion.auto_apply), (7, true));
        assert_eq!(a.scopes.0.len(), 2);
        let prod = a.scopes.get("prod-core").unwrap();
        assert_eq!(prod.max_stage, crate::autonomy::stage::Stage::Silent);
        assert_eq!(
            (prod.fixes_per_hour, prod.max_concurrent, prod.dry_run),
            (10, 1, true)
        );
        let labels = |env: &str, tier: &str| {
            BTreeMap::from([
                ("env".to_string(), env.to_string()),
                ("tier".to_string(), tier.to_string()),
            ])
        };
        assert_eq!(
            a.scopes.scope_for(&labels("prod", "db")).unwrap().name,
            "prod-core"
        );
        assert!(a.scopes.scope_for(&labels("prod", "edge")).is_none());
        // Without the section: no scope, so nothing runs on its own; the seed's gate numbers.
        let d = parse("tokens: [{name: am, role: ingest, token_env: INGEST}]\n")
            .unwrap()
            .autonomy;
        assert!(d.scopes.0.is_empty());
        assert!((d.promotion.min_success_rate - 0.991).abs() < 1e-9);
        assert_eq!(d.promotion.window, Duration::from_secs(72 * 3600));
    }

    #[test]
    fn reports_autonomy_problems_with_their_place() {
        let problems = invalid(
            "tokens: [{name: am, role: ingest, token_env: INGEST}]\nautonomy:\n  promotion: {min_success_rate: 1.5, apply: sometimes}\n  scopes:\n    - {name: Bad Name, match: ['env=~\"(\"'], max_stage: yolo, fixes_per_hour: 0}\n    - {name: ok, match: []}\n",
        );
        let lines: Vec<String> = problems
            .iter()
            .map(|p| format!("{}:{}: {}", p.position.line, p.field, p.message))
            .collect();
        let expect = [
            "3:autonomy.promotion.apply: unknown `sometimes`; expected admin or auto",
            "3:autonomy.promotion.min_success_rate: must be in (0, 1], e.g. 0.991",
            "5:autonomy.scopes[0].name: `Bad Name` is not a scope name (lowercase letters, digits, - and _)",
            "5:autonomy.scopes[0].max_stage: unknown stage `yolo`; expected manual, silent or auto",
            "5:autonomy.scopes[0].fixes_per_hour: must be at least 1",
            "6:autonomy.scopes[1].match: a scope needs at least one matcher, e.g. env=\"staging\"",
        ];
        for e in expect {
            assert!(lines.iter().any(|l| l == e), "missing `{e}` in {lines:#?}");
        }
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("5:autonomy.scopes[0].match[0]:")),
            "{lines:#?}"
        );
    }

    #[test]
    fn reports_every_problem_with_its_place() {
        let lines = problem_lines(
            "listen: nowhere\ntokens:\n  - {name: am, role: root, token_env: MISSING}\nlimits: {walk_deadline: 10s, claim_idle: 5s}\nextra: 1\nevidence:\n  prometheus:\n    default: {url: 'ftp://x'}\n",
        );
        assert_eq!(
            lines,
            [
                "1:9: listen: `nowhere` is not an address like 127.0.0.1:5001",
                "3:22: tokens[0].role: unknown role `root`; expected ingest, viewer, approver or admin",
                "3:39: tokens[0].token_env: environment variable MISSING is not set",
                "4:42: limits.claim_idle: must be longer than limits.walk_deadline, or live consumers' alerts would be taken over",
                "5:1: extra: unknown field `extra`",
                "8:20: evidence.prometheus.default.url: `ftp://x`: only http and https are supported",
            ]
        );
    }

    const BASE: &str = "tokens:\n  - {name: am, role: ingest, token_env: INGEST}\n";

    /// `line:column: field: message` of each problem of a config that must not parse.
    fn problem_lines(text: &str) -> Vec<String> {
        invalid(text)
            .iter()
            .map(|p| {
                format!(
                    "{}:{}: {}: {}",
                    p.position.line, p.position.column, p.field, p.message
                )
            })
            .collect()
    }

    #[test]
    fn silences_are_optional_and_read_with_their_defaults() {
        assert!(parse(BASE).unwrap().silences.is_none());
        let c = parse(&format!(
            "{BASE}silences:\n  alertmanager: http://127.0.0.1:9093\n  cooldown: 30m\n  match_labels: [alertname, service]\n"
        ))
        .unwrap();
        let s = c.silences.unwrap();
        assert_eq!(s.alertmanager_url.as_str(), "http://127.0.0.1:9093/");
        assert_eq!(s.cooldown, Duration::from_secs(1800));
        assert_eq!(s.matchers_from, ["alertname", "service"]);
        assert_eq!(s.timeout, crate::silence::DEFAULT_TIMEOUT);
    }

    #[test]
    fn silences_url_from_the_environment() {
        let c = ServeConfig::parse(
            Path::new("/etc/rootfix/rootfix.yaml"),
            &format!("{BASE}silences: {{alertmanager_env: AM, cooldown: 7d, timeout: 2s}}\n"),
            &|name| match name {
                "INGEST" => Some("ingest-token-0123456789".into()),
                "AM" => Some("https://am.example/prefix".into()),
                _ => None,
            },
        )
        .unwrap();
        let s = c.silences.unwrap();
        assert_eq!(s.alertmanager_url.as_str(), "https://am.example/prefix");
        assert_eq!(s.cooldown, crate::silence::MAX_COOLDOWN);
        assert!(s.matchers_from.is_empty());
        assert_eq!(s.timeout, Duration::from_secs(2));
    }

    #[test]
    fn silences_problems_have_their_place() {
        assert_eq!(
            problem_lines(&format!(
                "{BASE}silences:\n  alertmanager: ftp://am\n  cooldown: 8d\n  match_labels: [alertname, a-b, alertname]\n  extra: 1\n"
            )),
            [
                "4:17: silences.alertmanager: `ftp://am`: only http and https are supported",
                "5:13: silences.cooldown: must be at most 7 days",
                "6:29: silences.match_labels[1]: `a-b` is not a label name",
                "6:34: silences.match_labels[2]: `alertname` is listed twice",
                "7:3: silences.extra: unknown field `extra`",
            ]
        );
        assert_eq!(
            problem_lines(&format!(
                "{BASE}silences: {{alertmanager_env: NOPE, cooldown: 0s}}\n"
            )),
            [
                "3:30: silences.alertmanager_env: environment variable NOPE is not set",
                "3:46: silences.cooldown: must be longer than zero",
            ]
        );
        assert_eq!(
            problem_lines(&format!("{BASE}silences:\n  match_labels: []\n")),
            [
                "3:1: silences: set cooldown, how long a silence lasts (e.g. 30m)",
                "3:1: silences: set exactly one of alertmanager and alertmanager_env",
                "4:17: silences.match_labels: an empty list; leave match_labels out to match on every label of the alert",
            ]
        );
    }

    #[test]
    fn reads_notifications_with_urls_from_the_environment() {
        let c = ServeConfig::parse(
            Path::new("/etc/rootfix/rootfix.yaml"),
            "tokens:\n  - {name: am, role: ingest, token: ingest-token-0123456789}\nnotifications:\n  queue: 16\n  retries: 2\n  backoff: 250ms\n  timeout: 2s\n  receivers:\n    - {name: sre-slack, format: slack, url_env: SLACK}\n    - {name: oncall, format: dingtalk, url: 'https://oapi.dingtalk.com/robot/send?access_token=x', events: [rollback_failed, approval_expired]}\n    - {name: wecom, format: wecom, url: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k'}\n    - {name: audit-sink, format: json, url: 'http://127.0.0.1:9000/hook'}\n",
            &|name| (name == "SLACK").then(|| "https://hooks.slack.com/services/T/B/secret".to_string()),
        )
        .unwrap();
        let n = &c.notifications;
        assert_eq!((n.queue, n.retries), (16, 2));
        assert_eq!(n.backoff, Duration::from_millis(250));
        assert_eq!(n.timeout, Duration::from_secs(2));
        let formats: Vec<_> = n.receivers.iter().map(|r| (r.name.as_str(), r.format)).collect();
        use crate::notify::{Format, NotificationKind};
        assert_eq!(
            formats,
            [
                ("sre-slack", Format::Slack),
                ("oncall", Format::DingTalk),
                ("wecom", Format::WeCom),
                ("audit-sink", Format::Json)
            ]
        );
        assert_eq!(
            n.receivers[0].url.as_str(),
            "https://hooks.slack.com/services/T/B/secret"
        );
        assert_eq!(n.receivers[0].events.len(), NotificationKind::ALL.len());
        assert_eq!(
            n.receivers[1].events.iter().copied().collect::<Vec<_>>(),
            [
                NotificationKind::ApprovalExpired,
                NotificationKind::RollbackFailed
            ]
        );
        // The secret stays out of Debug output (ServeConfig is logged at start).
        assert!(!format!("{c:?}").contains("secret"));

        let defaults = parse("tokens:\n  - {name: am, role: ingest, token_env: INGEST}\n").unwrap();
        assert_eq!(defaults.notifications, NotificationsConfig::default());
        assert_eq!(defaults.notifications.queue, 1024);
    }

    #[test]
    fn reports_notification_problems_with_their_place() {
        let lines = problem_lines(
            "tokens:\n  - {name: am, role: ingest, token_env: INGEST}\nnotifications:\n  queue: 0\n  backoff: soon\n  receivers:\n    - {name: a, format: teams, url: 'http://x/'}\n    - {name: b, format: slack, url: 'ftp://x/'}\n    - {name: c, format: json, url_env: NOPE}\n    - {name: d, format: json, url: 'http://x/', events: [fix_succeeded, fixed]}\n    - {name: d, format: json}\n    - {name: e, format: json, url: 'http://x/', events: []}\n    - {name: f, format: json, url: 'http://x/', colour: red}\n",
        );
        assert_eq!(
            lines,
            [
                "4:10: notifications.queue: must be in 1..=1048576",
                "5:12: notifications.backoff: `soon` is not a duration; write e.g. 250ms, 30s, 5m, 1h30m",
                "7:25: notifications.receivers[0].format: unknown format `teams`; expected slack, dingtalk, wecom or json",
                "8:37: notifications.receivers[1].url: `ftp://x/`: only http and https URLs are supported",
                "9:40: notifications.receivers[2].url_env: environment variable NOPE is not set",
                "10:73: notifications.receivers[3].events[1]: unknown event `fixed`; expected one of approval_requested, approval_expired, stage_changed, fix_succeeded, fix_failed, fix_rolled_back, rollback_failed, diagnosis_only",
                "11:8: notifications.receivers[4]: set exactly one of url and url_env",
                "11:14: notifications.receivers[4].name: another receiver is named `d`",
                "12:57: notifications.receivers[5].events: an empty list sends nothing; leave `events` out to send every kind",
                "13:49: notifications.receivers[6].colour: unknown field `colour`",
            ]
        );
    }

    #[test]
    fn host_paths_are_read_and_checked_with_their_place() {
        let c = parse(&format!(
            "{BASE}fixes:\n  host_paths:\n    /etc/nginx/conf.d: /tmp/demo/nginx/conf.d\n    /run/nginx.pid: /tmp/demo/nginx.pid\n"
        ))
        .unwrap();
        assert_eq!(
            c.fixes.host_paths,
            BTreeMap::from([
                (
                    PathBuf::from("/etc/nginx/conf.d"),
                    PathBuf::from("/tmp/demo/nginx/conf.d")
                ),
                (
                    PathBuf::from("/run/nginx.pid"),
                    PathBuf::from("/tmp/demo/nginx.pid")
                ),
            ])
        );
        assert!(parse(BASE).unwrap().fixes.host_paths.is_empty());
        let lines = problem_lines(&format!(
            "{BASE}fixes:\n  host_paths:\n    etc/nginx: /tmp/x\n    /etc/ok: relative/path\n    /etc/a/../b: /tmp/../etc\n"
        ));
        assert_eq!(
            lines,
            [
                "5:5: fixes.host_paths.etc/nginx: `etc/nginx` is not an absolute path without `..` (a mount's host path as an action names it)",
                "6:14: fixes.host_paths./etc/ok: `relative/path` is not an absolute path without `..` (the path on this install)",
                "7:5: fixes.host_paths./etc/a/../b: `/etc/a/../b` is not an absolute path without `..` (a mount's host path as an action names it)",
                "7:18: fixes.host_paths./etc/a/../b: `/tmp/../etc` is not an absolute path without `..` (the path on this install)",
            ]
        );
    }

    #[test]
    fn roles_nest_except_ingest() {
        assert!(Role::Admin.allows(Role::Ingest));
        assert!(Role::Approver.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Approver));
        assert!(!Role::Ingest.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Ingest));
    }
}
