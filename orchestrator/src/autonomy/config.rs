//! The `autonomy:` section of the serve config: scopes, the promotion policy, approval expiry,
//! dry-run, and the leader's job.
//!
//! ```yaml
//! autonomy:
//!   dry_run: false            # everywhere: run everything but execute and rollback
//!   approval_ttl: 30m         # a pending approval expires (and escalates) after this
//!   leader_interval: 1m       # how often the leader proposes promotions and expires approvals
//!   resolve_wait: 10m         # a verified fix whose alert has not resolved by then did not hold
//!   recurrence_window: 1h     # the same alert or target firing again this soon: the fix recurred
//!   max_recurrences: 2        # recurrences of one (action, target) in the window: a human fixes it
//!   budget: {fixes_per_hour: 20, per_service: 5}   # across every action and scope (off without)
//!   promotion:
//!     min_in_stage: 7d
//!     window: 72h
//!     min_success_rate: 0.991
//!     min_samples: 20
//!     apply: admin            # or `auto`: the leader applies promotions the gate allows
//!     gate_on: rate           # or `lower-bound`: the Wilson 95 % lower bound must reach the rate
//!   scopes:                   # the first scope whose selector matches the alert's labels owns it
//!     - {name: staging, match: ['env="staging"'], max_stage: auto, fixes_per_hour: 10, concurrency: 2,
//!        recurrence_window: 30m}
//!     - {name: prod-core, match: ['env="prod"', 'tier="core"'], max_stage: silent, fixes_per_hour: 2, concurrency: 1}
//! ```
//! Without scopes no target is inside one, and rootfix never runs a fix on its own.

use std::time::Duration;

use serde::Deserialize;

use super::promotion::PromotionPolicy;
use super::scope::{Scope, Scopes};
use super::stage::Stage;
use crate::catalog::report::Reporter;
use crate::catalog::spans::join_index;
use crate::model::matcher::Matcher;

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub(crate) struct AutonomyDocument {
    #[serde(default)]
    dry_run: Option<bool>,
    #[serde(default)]
    approval_ttl: Option<String>,
    #[serde(default)]
    leader_interval: Option<String>,
    #[serde(default)]
    resolve_wait: Option<String>,
    #[serde(default)]
    run_slot_lease: Option<String>,
    #[serde(default)]
    recurrence_window: Option<String>,
    #[serde(default)]
    max_recurrences: Option<u32>,
    #[serde(default)]
    budget: BudgetDocument,
    #[serde(default)]
    promotion: PromotionDocument,
    #[serde(default)]
    scopes: Vec<ScopeDocument>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetDocument {
    #[serde(default)]
    fixes_per_hour: Option<u32>,
    #[serde(default)]
    per_service: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
struct PromotionDocument {
    #[serde(default)]
    min_in_stage: Option<String>,
    #[serde(default)]
    window: Option<String>,
    #[serde(default)]
    min_success_rate: Option<f64>,
    #[serde(default)]
    min_samples: Option<u32>,
    #[serde(default)]
    apply: Option<String>,
    #[serde(default)]
    gate_on: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct ScopeDocument {
    name: String,
    #[serde(rename = "match")]
    selector: Vec<String>,
    #[serde(default)]
    max_stage: Option<String>,
    #[serde(default)]
    fixes_per_hour: Option<u32>,
    #[serde(default)]
    concurrency: Option<u32>,
    #[serde(default)]
    dry_run: Option<bool>,
    #[serde(default)]
    recurrence_window: Option<String>,
}

/// The remediation budget: fixes started per sliding hour across every action and scope, and
/// per service (the incident's target service). `None`: no cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    pub fixes_per_hour: Option<u32>,
    pub per_service: Option<u32>,
}

/// The validated section.
#[derive(Debug, Clone)]
pub struct AutonomyConfig {
    pub scopes: Scopes,
    pub promotion: PromotionPolicy,
    pub approval_ttl: Duration,
    pub dry_run: bool,
    pub leader_interval: Duration,
    /// After a verified fix, Alertmanager's `resolved` is awaited this long; a repeat firing
    /// meanwhile, or no resolve by then, makes the fix's outcome `recurred`.
    pub resolve_wait: Duration,
    /// A running fix's concurrency slot frees itself after this, should its holder die.
    pub run_slot_lease: Duration,
    /// The rate limit's sliding window.
    pub rate_window: Duration,
    /// Outcomes older than this are dropped.
    pub outcome_retention: Duration,
    /// A verified fix whose alert (fingerprint) or target fires again this soon did not hold
    /// (a scope may override it).
    pub recurrence_window: Duration,
    /// After this many recurrences of one (action, target) within the window, rootfix stops
    /// fixing the target on its own: a human approves each attempt (the breaker).
    pub max_recurrences: u32,
    pub budget: Budget,
}

impl AutonomyConfig {
    /// The recurrence window of `scope` (its own, else the section's).
    pub fn recurrence_window_of(&self, scope: &str) -> Duration {
        self.scopes
            .get(scope)
            .and_then(|s| s.recurrence_window)
            .unwrap_or(self.recurrence_window)
    }
}

impl Default for AutonomyConfig {
    fn default() -> Self {
        Self {
            scopes: Scopes::default(),
            promotion: PromotionPolicy::default(),
            approval_ttl: Duration::from_secs(30 * 60),
            dry_run: false,
            leader_interval: Duration::from_secs(60),
            resolve_wait: Duration::from_secs(600),
            run_slot_lease: Duration::from_secs(3600),
            rate_window: Duration::from_secs(3600),
            outcome_retention: Duration::from_secs(30 * 24 * 3600),
            recurrence_window: Duration::from_secs(3600),
            max_recurrences: 2,
            budget: Budget::default(),
        }
    }
}

fn is_scope_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn budget_cap(r: &mut Reporter<'_>, field: &str, cap: Option<u32>) -> Option<u32> {
    if cap == Some(0) {
        r.at_value(field, "must be at least 1 (leave it out for no cap)");
    }
    cap.filter(|c| *c > 0)
}

/// Checks the section, reporting every problem with its place.
pub(crate) fn check(doc: &AutonomyDocument, r: &mut Reporter<'_>) -> AutonomyConfig {
    let defaults = AutonomyConfig::default();
    let base = PromotionPolicy::default();
    let p = &doc.promotion;
    let apply = match p.apply.as_deref() {
        None | Some("admin") => false,
        Some("auto") => true,
        Some(other) => {
            r.at_value(
                "autonomy.promotion.apply",
                format!("unknown `{other}`; expected admin or auto"),
            );
            false
        }
    };
    let min_success_rate = match p.min_success_rate {
        Some(rate) if !(rate > 0.0 && rate <= 1.0) => {
            r.at_value(
                "autonomy.promotion.min_success_rate",
                "must be in (0, 1], e.g. 0.991",
            );
            base.min_success_rate
        }
        Some(rate) => rate,
        None => base.min_success_rate,
    };
    let require_lower_bound = match p.gate_on.as_deref() {
        None | Some("rate") => false,
        Some("lower-bound") => true,
        Some(other) => {
            r.at_value(
                "autonomy.promotion.gate_on",
                format!("unknown `{other}`; expected rate or lower-bound"),
            );
            false
        }
    };
    let promotion = PromotionPolicy {
        min_in_stage: r.duration(
            "autonomy.promotion.min_in_stage",
            p.min_in_stage.as_deref(),
            base.min_in_stage,
        ),
        window: r.duration("autonomy.promotion.window", p.window.as_deref(), base.window),
        min_success_rate,
        min_samples: p.min_samples.unwrap_or(base.min_samples).max(1),
        auto_apply: apply,
        require_lower_bound,
    };
    let mut scopes = Vec::new();
    for (i, s) in doc.scopes.iter().enumerate() {
        let field = join_index("autonomy.scopes", i);
        if !is_scope_name(&s.name) {
            r.at_value(
                &format!("{field}.name"),
                format!(
                    "`{}` is not a scope name (lowercase letters, digits, - and _)",
                    s.name
                ),
            );
        } else if scopes.iter().any(|x: &Scope| x.name == s.name) {
            r.at_value(
                &format!("{field}.name"),
                format!("another scope is named `{}`", s.name),
            );
        }
        if s.selector.is_empty() {
            r.at_key(
                &format!("{field}.match"),
                "a scope needs at least one matcher, e.g. env=\"staging\"",
            );
        }
        let mut selector = Vec::new();
        for (j, text) in s.selector.iter().enumerate() {
            match Matcher::parse(text) {
                Ok(m) => selector.push(m),
                Err(e) => r.inside_value(&join_index(&format!("{field}.match"), j), 1, e.column, e.message),
            }
        }
        let max_stage = match s.max_stage.as_deref() {
            None => Stage::Auto,
            Some(text) => Stage::parse(text).unwrap_or_else(|| {
                r.at_value(
                    &format!("{field}.max_stage"),
                    format!("unknown stage `{text}`; expected manual, silent or auto"),
                );
                Stage::Manual
            }),
        };
        let fixes_per_hour = s.fixes_per_hour.unwrap_or(10);
        if fixes_per_hour == 0 {
            r.at_value(&format!("{field}.fixes_per_hour"), "must be at least 1");
        }
        let max_concurrent = s.concurrency.unwrap_or(1);
        if max_concurrent == 0 {
            r.at_value(&format!("{field}.concurrency"), "must be at least 1");
        }
        let recurrence_window = s.recurrence_window.as_deref().map(|w| {
            r.duration(
                &format!("{field}.recurrence_window"),
                Some(w),
                defaults.recurrence_window,
            )
        });
        scopes.push(Scope {
            name: s.name.clone(),
            selector,
            max_stage,
            fixes_per_hour,
            max_concurrent,
            dry_run: s.dry_run.unwrap_or(false),
            recurrence_window,
        });
    }
    AutonomyConfig {
        scopes: Scopes(scopes),
        promotion,
        approval_ttl: r.duration(
            "autonomy.approval_ttl",
            doc.approval_ttl.as_deref(),
            defaults.approval_ttl,
        ),
        dry_run: doc.dry_run.unwrap_or(false),
        leader_interval: r.duration(
            "autonomy.leader_interval",
            doc.leader_interval.as_deref(),
            defaults.leader_interval,
        ),
        resolve_wait: r.duration(
            "autonomy.resolve_wait",
            doc.resolve_wait.as_deref(),
            defaults.resolve_wait,
        ),
        run_slot_lease: r.duration(
            "autonomy.run_slot_lease",
            doc.run_slot_lease.as_deref(),
            defaults.run_slot_lease,
        ),
        recurrence_window: r.duration(
            "autonomy.recurrence_window",
            doc.recurrence_window.as_deref(),
            defaults.recurrence_window,
        ),
        max_recurrences: match doc.max_recurrences {
            Some(0) => {
                r.at_value("autonomy.max_recurrences", "must be at least 1");
                defaults.max_recurrences
            }
            Some(n) => n,
            None => defaults.max_recurrences,
        },
        budget: Budget {
            fixes_per_hour: budget_cap(r, "autonomy.budget.fixes_per_hour", doc.budget.fixes_per_hour),
            per_service: budget_cap(r, "autonomy.budget.per_service", doc.budget.per_service),
        },
        ..defaults
    }
}
