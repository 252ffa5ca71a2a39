//! The execution journal: every phase transition of a fix, written to `rootfix:journal:<incident>`
//! **before** the next step starts, so a restarted rootfix knows exactly where a fix stopped.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::action::PhaseName;
use crate::runner::PhaseExit;

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

impl FixOutcome {
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
    #[serde(flatten)]
    pub event: JournalEvent,
}

pub fn fix_id(incident: &str, action: &str) -> String {
    format!("{incident}/{action}")
}

/// Where an unfinished fix stopped, read from its journal.
#[derive(Debug, Clone, PartialEq)]
pub enum ResumePoint {
    /// Never started execute: nothing was changed.
    BeforeExecute,
    /// Execute started and did not finish with success (or its end is unknown): roll back.
    RollBack {
        snapshot: Option<serde_json::Value>,
        reason: String,
    },
    /// Execute completed: verify (again).
    Verify { snapshot: Option<serde_json::Value> },
    /// Already finished.
    Finished(FixOutcome),
}

/// Reads the last state of one fix from its entries (in order).
pub fn resume_point(entries: &[JournalEntry]) -> ResumePoint {
    let mut execute_started = false;
    let mut execute_ok: Option<bool> = None;
    let mut snapshot = None;
    let mut rollback_started = false;
    for e in entries {
        match &e.event {
            JournalEvent::FixFinished { outcome } => return ResumePoint::Finished(outcome.clone()),
            JournalEvent::PhaseStarted {
                phase: PhaseName::Execute,
                ..
            } => execute_started = true,
            JournalEvent::PhaseFinished {
                phase: PhaseName::Execute,
                exit,
                snapshot: s,
                ..
            } => {
                execute_ok = Some(*exit == PhaseExit::Success);
                if s.is_some() {
                    snapshot = s.clone();
                }
            }
            JournalEvent::PhaseStarted {
                phase: PhaseName::Rollback,
                ..
            } => rollback_started = true,
            _ => {}
        }
    }
    match (execute_started, execute_ok, rollback_started) {
        (false, _, _) => ResumePoint::BeforeExecute,
        (true, _, true) => ResumePoint::RollBack {
            snapshot,
            reason: "rootfix stopped during rollback; rolling back again".into(),
        },
        (true, Some(true), false) => ResumePoint::Verify { snapshot },
        (true, Some(false), false) => ResumePoint::RollBack {
            snapshot,
            reason: "execute failed before rootfix stopped".into(),
        },
        (true, None, false) => ResumePoint::RollBack {
            snapshot,
            reason: "rootfix stopped during execute; its effect is unknown".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(event: JournalEvent) -> JournalEntry {
        JournalEntry {
            fix: "inc-1/a".into(),
            at: Utc::now(),
            event,
        }
    }

    fn started(phase: PhaseName) -> JournalEntry {
        e(JournalEvent::PhaseStarted { phase, attempt: 1 })
    }

    fn finished(phase: PhaseName, exit: PhaseExit) -> JournalEntry {
        e(JournalEvent::PhaseFinished {
            phase,
            attempt: 1,
            exit,
            snapshot: None,
            stdout: String::new(),
            stderr: String::new(),
        })
    }

    #[test]
    fn a_completed_execute_resumes_verify_anything_less_rolls_back() {
        let fail = PhaseExit::Failed {
            code: Some(1),
            reason: "exit code 1".into(),
        };
        assert_eq!(
            resume_point(&[started(PhaseName::Precheck)]),
            ResumePoint::BeforeExecute
        );
        assert!(matches!(
            resume_point(&[started(PhaseName::Execute)]),
            ResumePoint::RollBack { .. }
        ));
        assert_eq!(
            resume_point(&[
                started(PhaseName::Execute),
                finished(PhaseName::Execute, PhaseExit::Success)
            ]),
            ResumePoint::Verify { snapshot: None }
        );
        assert!(matches!(
            resume_point(&[started(PhaseName::Execute), finished(PhaseName::Execute, fail)]),
            ResumePoint::RollBack { .. }
        ));
        let verifying = [
            started(PhaseName::Execute),
            finished(PhaseName::Execute, PhaseExit::Success),
            started(PhaseName::Verify),
        ];
        assert_eq!(resume_point(&verifying), ResumePoint::Verify { snapshot: None });
        let rolling = [
            started(PhaseName::Execute),
            finished(PhaseName::Execute, PhaseExit::Success),
            started(PhaseName::Rollback),
        ];
        assert!(matches!(resume_point(&rolling), ResumePoint::RollBack { .. }));
        let done = [e(JournalEvent::FixFinished {
            outcome: FixOutcome::Succeeded,
        })];
        assert_eq!(resume_point(&done), ResumePoint::Finished(FixOutcome::Succeeded));
    }
}
