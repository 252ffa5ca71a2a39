//! The execution journal: every phase transition of a fix, written to `rootfix:journal:<incident>`
//! **before** the next step starts, so a restarted rootfix knows exactly where a fix stopped. The
//! entries are records ([`crate::record::journal`]); this module reads them back: [`resume_point`]
//! (a remedy of several steps: [`steps_resume_point`], in `journal/steps`).

mod steps;
pub use steps::{StepUndo, StepsResumePoint, steps_resume_point};

use crate::model::action::PhaseName;
pub use crate::record::journal::{FixOutcome, JournalEntry, JournalEvent, fix_id};
use crate::runner::PhaseExit;

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
            reason: crate::record::journal::STOPPED_DURING_EXECUTE.into(),
        },
    }
}

#[cfg(test)]
pub(super) mod tests {
    use chrono::Utc;

    use super::*;

    /// An entry of the fix `inc-1/a`, now (shared with `journal/steps`' tests).
    pub(in crate::fix::journal) fn e(event: JournalEvent) -> JournalEntry {
        JournalEntry {
            fix: "inc-1/a".into(),
            at: Utc::now(),
            step: None,
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
