//! The execution journal: every phase transition of a fix, written to `rootfix:journal:<incident>`
//! **before** the next step starts, so a restarted rootfix knows exactly where a fix stopped. The
//! entries are records ([`crate::record::journal`]); this module reads them back: [`resume_point`].

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

/// A step (0-based) and what its execute snapshotted: what rolling it back needs.
pub type StepUndo = (usize, Option<serde_json::Value>);

/// Where an unfinished remedy of steps stopped, read from its journal.
#[derive(Debug, Clone, PartialEq)]
pub enum StepsResumePoint {
    Finished(FixOutcome),
    /// Step `step`'s execute completed: verify it again, then go on with the steps after it.
    VerifyStep {
        step: usize,
        snapshot: Option<serde_json::Value>,
        completed: Vec<StepUndo>,
    },
    /// Every step ended: the remedy's own verify runs (again).
    VerifyRemedy {
        completed: Vec<StepUndo>,
    },
    /// Roll these steps back, in this order (last first), for `reason`.
    RollBack {
        undo: Vec<StepUndo>,
        reason: String,
    },
}

/// Reads the last state of a remedy of `steps` steps from its entries (in order): a step
/// completed (`step-finished` succeeded) is rolled back if the remedy does not end well; a
/// step whose execute ended well resumes its verify; a step whose execute started and did not
/// end well, or whose end is unknown, is rolled back with the completed ones; a stop before a
/// step's execute rolls the completed ones back (the remedy never half-applies). Once the
/// remedy is rolling back, the steps whose rollback has not yet succeeded are rolled back.
pub fn steps_resume_point(entries: &[JournalEntry], steps: usize) -> StepsResumePoint {
    let mut rolling_back: Option<(usize, String)> = None;
    let mut finished: Vec<Option<FixOutcome>> = vec![None; steps];
    for (i, e) in entries.iter().enumerate() {
        match (&e.event, e.step) {
            (JournalEvent::FixFinished { outcome }, _) => {
                return StepsResumePoint::Finished(outcome.clone());
            }
            (JournalEvent::RollingBack { reason }, _) => rolling_back = Some((i, reason.clone())),
            (JournalEvent::StepFinished { outcome }, Some(n)) => {
                if let Some(slot) = (n as usize).checked_sub(1).and_then(|k| finished.get_mut(k)) {
                    *slot = Some(outcome.clone());
                }
            }
            _ => {}
        }
    }
    let of_step = |k: usize| -> Vec<JournalEntry> {
        entries
            .iter()
            .filter(|e| e.step == Some(k as u32 + 1))
            .cloned()
            .collect()
    };
    let execute_snapshot = |k: usize| -> Option<serde_json::Value> {
        of_step(k).iter().rev().find_map(|e| match &e.event {
            JournalEvent::PhaseFinished {
                phase: PhaseName::Execute,
                snapshot,
                ..
            } => snapshot.clone(),
            _ => None,
        })
    };
    let completed: Vec<StepUndo> = (0..steps)
        .filter(|&k| finished[k] == Some(FixOutcome::Succeeded))
        .map(|k| (k, execute_snapshot(k)))
        .collect();
    let last_first = |mut list: Vec<StepUndo>| {
        list.reverse();
        list
    };
    if let Some((from, reason)) = rolling_back {
        // A completed step whose rollback succeeded after the remedy began to roll back is done.
        let undone = |k: usize| {
            entries[from..].iter().any(|e| {
                e.step == Some(k as u32 + 1)
                    && matches!(
                        &e.event,
                        JournalEvent::PhaseFinished {
                            phase: PhaseName::Rollback,
                            exit: PhaseExit::Success,
                            ..
                        }
                    )
            })
        };
        let undo = completed.into_iter().filter(|(k, _)| !undone(*k)).collect();
        return StepsResumePoint::RollBack {
            undo: last_first(undo),
            reason,
        };
    }
    let Some(current) = (0..steps).find(|&k| finished[k].is_none()) else {
        return StepsResumePoint::VerifyRemedy { completed };
    };
    match resume_point(&of_step(current)) {
        ResumePoint::Verify { snapshot } => StepsResumePoint::VerifyStep {
            step: current,
            snapshot,
            completed,
        },
        ResumePoint::RollBack { snapshot, reason } => {
            let mut undo = completed;
            undo.push((current, snapshot));
            StepsResumePoint::RollBack {
                undo: last_first(undo),
                reason: format!("step {}: {reason}", current + 1),
            }
        }
        ResumePoint::BeforeExecute | ResumePoint::Finished(_) => StepsResumePoint::RollBack {
            undo: last_first(completed),
            reason: format!(
                "{} {}; the steps before it are undone",
                crate::record::journal::STOPPED_BETWEEN_STEPS,
                current + 1
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn e(event: JournalEvent) -> JournalEntry {
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
