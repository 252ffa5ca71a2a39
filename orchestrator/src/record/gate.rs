//! Which gate refused a fix: the enum an incident's fix records (`IncidentFix::gate`), the gates
//! in the order they are asked, and which of them are asked again at the next firing.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Gate {
    /// The remedy's action is not loaded (a catalog problem, not one of the design's gates).
    Action,
    /// The action's runner cannot run on this install (disabled, engine down): rootfix diagnoses
    /// but cannot act. Asked right after the action is resolved, before any approval is created.
    Runner,
    Killswitch,
    Scope,
    RateLimit,
    /// The global remediation budget (`limits.fixes_per_hour_total`, or per service).
    Budget,
    Concurrency,
    /// The executor would not start it: its params were refused, or another fix holds the
    /// target (recorded as the outcome `refused`, gate `target`).
    Target,
}

impl Gate {
    pub fn as_str(self) -> &'static str {
        match self {
            Gate::Action => "action",
            Gate::Runner => "runner",
            Gate::Killswitch => "killswitch",
            Gate::Scope => "scope",
            Gate::RateLimit => "rate-limit",
            Gate::Budget => "budget",
            Gate::Concurrency => "concurrency",
            Gate::Target => "target",
        }
    }

    /// Whether its answer changes with time (the switch, the rate window, the running fixes, a
    /// runner that comes back), so the next firing of the alert asks again.
    pub fn for_now(self) -> bool {
        matches!(
            self,
            Gate::Runner | Gate::Killswitch | Gate::RateLimit | Gate::Budget | Gate::Concurrency
        )
    }
}

impl std::fmt::Display for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
