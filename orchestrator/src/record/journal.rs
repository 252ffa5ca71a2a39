//! The journal record: every phase transition of a fix, as written to `rootfix:journal:<incident>`
//! (one JSON line each), how a fix ended ([`FixOutcome`]), and how a phase exited ([`PhaseExit`],
//! which the runners report and `runner` re-exports).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::action::PhaseName;

/// How a phase ended (the phase contract: exit 0 success, precheck exit 3 already healthy, any
/// other exit failed, killed at its timeout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum PhaseExit {
    /// Exit 0.
    Success,
    /// Exit 3 from a precheck: nothing to do.
    AlreadyHealthy,
    /// Any other exit, or a failed operation.
    Failed { code: Option<i64>, reason: String },
    /// Ran over its timeout and was killed.
    TimedOut { after_ms: u64 },
}

/// How a fix ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "reason")]
pub enum FixOutcome {
    /// Executed and verified.
    Succeeded,
    /// The precheck found the target healthy already: nothing was changed.
    AlreadyHealthy,
    /// The precheck refused (or the fix was interrupted before execute): nothing was changed.
    Aborted(String),
    /// Execute or verify failed, and rollback restored the target.
    RolledBack(String),
    /// Rollback failed, or the fix lost its lock mid-way: a human must look now.
    RollbackFailed(String),
    /// Not started: params refused, or another fix holds the target.
    Refused(String),
    /// A dry run: precheck and verify ran, execute and rollback did not.
    DryRun(String),
}

/// Why a recovered fix was rolled back when rootfix itself stopped mid-execute.
pub const STOPPED_DURING_EXECUTE: &str = "rootfix stopped during execute; its effect is unknown";

/// Why a recovered remedy of steps was rolled back when rootfix stopped before a step's execute.
pub const STOPPED_BETWEEN_STEPS: &str = "rootfix stopped before a step's execute";

impl FixOutcome {
    /// Whether the fix was cut short by rootfix's own stop, not by the action: rolled back after
    /// rootfix stopped during execute. Such a fix is `interrupted` and does not count for
    /// promotion.
    pub fn interrupted_by_restart(&self) -> bool {
        matches!(self, FixOutcome::RolledBack(reason)
            if reason.contains(STOPPED_DURING_EXECUTE) || reason.contains(STOPPED_BETWEEN_STEPS))
    }

    /// Whether the fix's execute phase ran (it changed the target, or tried to): only such a fix
    /// can be confirmed, and only it is a sample of the promotion gate and takes a rate slot.
    pub fn executed(&self) -> bool {
        matches!(
            self,
            FixOutcome::Succeeded | FixOutcome::RolledBack(_) | FixOutcome::RollbackFailed(_)
        )
    }

    /// Outcomes that page a human at once.
    pub fn pages(&self) -> bool {
        matches!(self, FixOutcome::RollbackFailed(_))
    }

    /// The outcome's name (its JSON tag), e.g. for metric labels.
    pub fn label(&self) -> &'static str {
        match self {
            FixOutcome::Succeeded => "succeeded",
            FixOutcome::AlreadyHealthy => "already-healthy",
            FixOutcome::Aborted(_) => "aborted",
            FixOutcome::RolledBack(_) => "rolled-back",
            FixOutcome::RollbackFailed(_) => "rollback-failed",
            FixOutcome::Refused(_) => "refused",
            FixOutcome::DryRun(_) => "dry-run",
        }
    }
}

/// The outcome in words, as the CLI, the web page, the timeline and the audit trail say it.
impl std::fmt::Display for FixOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FixOutcome::Succeeded => f.write_str("succeeded"),
            FixOutcome::AlreadyHealthy => f.write_str("already healthy (precheck exit 3), nothing changed"),
            FixOutcome::Aborted(r) => write!(f, "aborted, nothing changed: {r}"),
            FixOutcome::RolledBack(r) => write!(f, "rolled back: {r}"),
            FixOutcome::RollbackFailed(r) => write!(f, "NEEDS A HUMAN: {r}"),
            FixOutcome::Refused(r) => write!(f, "refused: {r}"),
            FixOutcome::DryRun(r) => write!(f, "dry run, nothing changed: {r}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "event")]
pub enum JournalEvent {
    FixStarted {
        params: BTreeMap<String, String>,
        fencing_token: u64,
        /// A remedy of steps: each step's action and params (its entries carry `step`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        steps: Vec<crate::engine::diagnosis::StepCall>,
        /// A remedy in waves: how many of the steps each wave runs.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        waves: Vec<u32>,
    },
    /// A wave of a remedy in waves begins (steps `first` to `last`, 1-based).
    WaveStarted {
        wave: u32,
        first: u32,
        last: u32,
    },
    PhaseStarted {
        phase: PhaseName,
        attempt: u32,
    },
    PhaseFinished {
        phase: PhaseName,
        attempt: u32,
        exit: PhaseExit,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        snapshot: Option<serde_json::Value>,
        #[serde(skip_serializing_if = "String::is_empty", default)]
        stdout: String,
        #[serde(skip_serializing_if = "String::is_empty", default)]
        stderr: String,
    },
    /// A verify attempt decided by a condition over fresh evidence.
    VerifyCondition {
        attempt: u32,
        held: bool,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        error: Option<String>,
    },
    Recovered {
        note: String,
    },
    /// A step of a remedy of steps ended (the entry's `step`): how, as a fix of its own.
    StepFinished {
        outcome: FixOutcome,
    },
    /// A remedy of steps is undoing its completed steps, last first.
    RollingBack {
        reason: String,
    },
    FixFinished {
        outcome: FixOutcome,
    },
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// `<incident>/<action>`: one fix.
    pub fix: String,
    pub at: DateTime<Utc>,
    /// The step (1-based) of a remedy of steps this entry belongs to; absent for the fix itself.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub step: Option<u32>,
    #[serde(flatten)]
    pub event: JournalEvent,
}

pub fn fix_id(incident: &str, action: &str) -> String {
    format!("{incident}/{action}")
}
