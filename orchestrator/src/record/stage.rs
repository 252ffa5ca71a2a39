//! Autonomy stages per (action, scope): `manual` → `silent` → `auto`, the stored stage with the
//! time it was entered, and the history of every change.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How much a fix type may do on its own in a scope.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Each fix waits for an SRE's approval. Every new fix type starts here.
    Manual,
    /// Fixes run at once; the incident stays open until an SRE confirms the outcome.
    Silent,
    /// Fixes run and close their incident.
    Auto,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Manual, Stage::Silent, Stage::Auto];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Manual => "manual",
            Stage::Silent => "silent",
            Stage::Auto => "auto",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The next stage up, if any.
    pub fn next(self) -> Option<Stage> {
        match self {
            Stage::Manual => Some(Stage::Silent),
            Stage::Silent => Some(Stage::Auto),
            Stage::Auto => None,
        }
    }

    /// The stage below, if any.
    pub fn previous(self) -> Option<Stage> {
        match self {
            Stage::Manual => None,
            Stage::Silent => Some(Stage::Manual),
            Stage::Auto => Some(Stage::Silent),
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A promotion the leader's job found the gate to allow, waiting for an admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Proposal {
    pub to: Stage,
    pub at: DateTime<Utc>,
}

/// The stored stage of one (action, scope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StageState {
    pub stage: Stage,
    /// When the current stage was entered (the gate's "days in stage" counts from here).
    pub since: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub proposal: Option<Proposal>,
}

/// One line of the stage history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StageChange {
    pub at: DateTime<Utc>,
    pub action: String,
    pub scope: String,
    /// `None` when the pair was first seen (it starts `manual`).
    pub from: Option<Stage>,
    pub to: Stage,
    /// The token name, `cli:<user>`, or `rootfix` for automatic changes.
    pub by: String,
    pub reason: String,
}

/// One (action, scope) and its stage, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageEntry {
    pub action: String,
    pub scope: String,
    #[serde(flatten)]
    pub state: StageState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_ordered_and_step() {
        assert!(Stage::Manual < Stage::Silent && Stage::Silent < Stage::Auto);
        assert_eq!(Stage::Manual.next(), Some(Stage::Silent));
        assert_eq!(Stage::Auto.next(), None);
        assert_eq!(Stage::Auto.previous(), Some(Stage::Silent));
        assert_eq!(Stage::parse("silent"), Some(Stage::Silent));
        assert_eq!(Stage::parse("Silent"), None);
    }
}
