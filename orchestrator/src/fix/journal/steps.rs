//! Where an unfinished remedy of several steps (or in waves) stopped, read from its journal:
//! which step's verify resumes, or which steps are rolled back, last first.

use super::{FixOutcome, JournalEntry, JournalEvent, ResumePoint, resume_point};
use crate::model::action::PhaseName;
use crate::runner::PhaseExit;

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
    /// Roll these steps back, in this order (last first), for `reason`. `changed`: something
    /// was changed even when `undo` is empty; `broken`: a step whose own rollback failed (the
    /// remedy needs a human, whatever the undoing does).
    RollBack {
        undo: Vec<StepUndo>,
        reason: String,
        changed: bool,
        broken: Option<String>,
    },
}

/// Reads the last state of a remedy of `steps` steps from its entries (in order): a step
/// completed (`step-finished` succeeded) is rolled back if the remedy does not end well; a
/// step whose execute ended well resumes its verify; a step whose execute started and did not
/// end well, or whose end is unknown, is rolled back with the completed ones; a stop before a
/// step's execute rolls the completed ones back (the remedy never half-applies). Once the
/// remedy is rolling back, the steps whose rollback has not yet succeeded are rolled back.
///
/// In waves (`waves`, the steps each wave runs), only the steps of the wave that failed or was
/// running are undone: the waves before it were verified and stay.
pub fn steps_resume_point(entries: &[JournalEntry], steps: usize, waves: &[u32]) -> StepsResumePoint {
    let wave_of = crate::fix::executor::wave_of_steps(waves, steps);
    // The first `rolling-back`: a recovery that itself stopped journals another, and rollbacks
    // that succeeded since the first are done.
    let mut rolling_back: Option<(usize, String)> = None;
    let mut finished: Vec<Option<FixOutcome>> = vec![None; steps];
    for (i, e) in entries.iter().enumerate() {
        match (&e.event, e.step) {
            (JournalEvent::FixFinished { outcome }, _) => {
                return StepsResumePoint::Finished(outcome.clone());
            }
            (JournalEvent::RollingBack { reason }, _) if rolling_back.is_none() => {
                rolling_back = Some((i, reason.clone()));
            }
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
    // The step that has not ended (rootfix stopped in it), and where it stopped.
    let current = (0..steps).find(|&k| finished[k].is_none());
    let current_point = current.map(|k| resume_point(&of_step(k)));
    // The first step that ended without success: the remedy is being undone (its wave, in
    // waves), whether or not `rolling-back` was journaled before rootfix stopped.
    let failed = (0..steps).find(|&k| {
        matches!(
            finished[k],
            Some(
                FixOutcome::Aborted(_)
                    | FixOutcome::Refused(_)
                    | FixOutcome::RolledBack(_)
                    | FixOutcome::RollbackFailed(_)
            )
        )
    });
    if rolling_back.is_some() || failed.is_some() {
        let (from, reason) = rolling_back.unwrap_or_else(|| {
            let k = failed.unwrap_or_default();
            let why = finished[k].as_ref().map_or_else(String::new, ToString::to_string);
            (entries.len(), format!("step {}: {why}", k + 1))
        });
        // A step whose rollback succeeded after the remedy began to roll back is done.
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
        // A step stopped inside its execute (or its own rollback) is undone too.
        let mut undo = completed;
        if let (Some(k), Some(ResumePoint::RollBack { snapshot, .. } | ResumePoint::Verify { snapshot })) =
            (current, current_point.clone())
        {
            undo.push((k, snapshot));
        }
        // In waves, only the wave of the failed step (or of the one stopped in); the remedy's
        // own verify failing undoes every step.
        let wave = failed
            .or(current)
            .filter(|_| !waves.is_empty())
            .map(|k| wave_of[k]);
        let undo: Vec<StepUndo> = undo
            .into_iter()
            .filter(|(k, _)| !undone(*k) && wave.is_none_or(|w| wave_of[*k] == w))
            .collect();
        // A step whose own rollback failed still needs a human, whatever the undoing does.
        let broken = failed.and_then(|k| match &finished[k] {
            Some(FixOutcome::RollbackFailed(r)) => Some(format!("step {}: {r}", k + 1)),
            _ => None,
        });
        let changed = !undo.is_empty()
            || broken.is_some()
            || failed.is_some_and(|k| matches!(finished[k], Some(FixOutcome::RolledBack(_))));
        return StepsResumePoint::RollBack {
            undo: last_first(undo),
            reason,
            changed,
            broken,
        };
    }
    let Some(current) = current else {
        return StepsResumePoint::VerifyRemedy { completed };
    };
    // Undone with the stopped step: the completed steps of its wave.
    let of_wave = |list: Vec<StepUndo>| -> Vec<StepUndo> {
        list.into_iter()
            .filter(|(k, _)| waves.is_empty() || wave_of[*k] == wave_of[current])
            .collect()
    };
    match current_point.unwrap_or(ResumePoint::BeforeExecute) {
        ResumePoint::Verify { snapshot } => StepsResumePoint::VerifyStep {
            step: current,
            snapshot,
            completed,
        },
        ResumePoint::RollBack { snapshot, reason } => {
            let mut undo = of_wave(completed);
            undo.push((current, snapshot));
            StepsResumePoint::RollBack {
                undo: last_first(undo),
                reason: format!("step {}: {reason}", current + 1),
                changed: true,
                broken: None,
            }
        }
        ResumePoint::BeforeExecute | ResumePoint::Finished(_) => {
            let undo = of_wave(completed);
            StepsResumePoint::RollBack {
                changed: !undo.is_empty(),
                undo: last_first(undo),
                reason: format!(
                    "{} {}; the steps before it{} are undone",
                    crate::record::journal::STOPPED_BETWEEN_STEPS,
                    current + 1,
                    if waves.is_empty() { "" } else { " in its wave" }
                ),
                broken: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::e;
    use super::*;
    use crate::record::journal::STOPPED_DURING_EXECUTE as STOPPED_DURING_EXECUTE_MARK;

    fn at_step(step: u32, event: JournalEvent) -> JournalEntry {
        JournalEntry {
            step: Some(step),
            ..e(event)
        }
    }

    fn step_done(step: u32) -> Vec<JournalEntry> {
        vec![
            at_step(
                step,
                JournalEvent::PhaseStarted {
                    phase: PhaseName::Execute,
                    attempt: 1,
                },
            ),
            at_step(
                step,
                JournalEvent::PhaseFinished {
                    phase: PhaseName::Execute,
                    attempt: 1,
                    exit: PhaseExit::Success,
                    snapshot: Some(serde_json::json!({"step": step})),
                    stdout: String::new(),
                    stderr: String::new(),
                },
            ),
            at_step(
                step,
                JournalEvent::StepFinished {
                    outcome: FixOutcome::Succeeded,
                },
            ),
        ]
    }

    fn undo_steps(point: &StepsResumePoint) -> Vec<usize> {
        match point {
            StepsResumePoint::RollBack { undo, .. } => undo.iter().map(|(k, _)| *k).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_remedy_of_steps_resumes_a_completed_execute_and_rolls_back_anything_less_last_first() {
        // Stopped inside step 3's execute: 3, then 2, then 1, each with its own snapshot.
        let mut entries: Vec<JournalEntry> = [step_done(1), step_done(2)].concat();
        entries.push(at_step(
            3,
            JournalEvent::PhaseStarted {
                phase: PhaseName::Execute,
                attempt: 1,
            },
        ));
        let point = steps_resume_point(&entries, 3, &[]);
        assert_eq!(undo_steps(&point), [2, 1, 0]);
        match &point {
            StepsResumePoint::RollBack { undo, reason, .. } => {
                assert_eq!(undo[1].1, Some(serde_json::json!({"step": 2})));
                assert!(reason.contains(STOPPED_DURING_EXECUTE_MARK), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // Stopped between steps (step 2 never reached execute): step 1 is undone, interrupted.
        let mut between = step_done(1);
        between.push(at_step(
            2,
            JournalEvent::PhaseStarted {
                phase: PhaseName::Precheck,
                attempt: 1,
            },
        ));
        let point = steps_resume_point(&between, 3, &[]);
        assert_eq!(undo_steps(&point), [0]);
        if let StepsResumePoint::RollBack { reason, .. } = &point {
            assert!(
                FixOutcome::RolledBack(reason.clone()).interrupted_by_restart(),
                "{reason}"
            );
        }
        // Step 2's execute completed: verify it, then go on.
        let mut verifying = step_done(1);
        verifying.extend(step_done(2).into_iter().take(2));
        assert_eq!(
            steps_resume_point(&verifying, 3, &[]),
            StepsResumePoint::VerifyStep {
                step: 1,
                snapshot: Some(serde_json::json!({"step": 2})),
                completed: vec![(0, Some(serde_json::json!({"step": 1})))],
            }
        );
        // Every step ended: the remedy's verify runs again.
        let all: Vec<JournalEntry> = [step_done(1), step_done(2)].concat();
        assert!(matches!(
            steps_resume_point(&all, 2, &[]),
            StepsResumePoint::VerifyRemedy { completed } if completed.len() == 2
        ));
        // A step already healthy changed nothing: it is not undone.
        let mut healthy = step_done(1);
        healthy.push(at_step(
            2,
            JournalEvent::StepFinished {
                outcome: FixOutcome::AlreadyHealthy,
            },
        ));
        healthy.push(at_step(
            3,
            JournalEvent::PhaseStarted {
                phase: PhaseName::Execute,
                attempt: 1,
            },
        ));
        assert_eq!(undo_steps(&steps_resume_point(&healthy, 3, &[])), [2, 0]);
        // Stopped while rolling back: the steps whose rollback already succeeded stay done.
        let mut rolling = [step_done(1), step_done(2)].concat();
        rolling.push(at_step(
            3,
            JournalEvent::StepFinished {
                outcome: FixOutcome::RolledBack("x".into()),
            },
        ));
        rolling.push(e(JournalEvent::RollingBack {
            reason: "step 3 failed".into(),
        }));
        rolling.push(at_step(
            2,
            JournalEvent::PhaseStarted {
                phase: PhaseName::Rollback,
                attempt: 1,
            },
        ));
        rolling.push(at_step(
            2,
            JournalEvent::PhaseFinished {
                phase: PhaseName::Rollback,
                attempt: 1,
                exit: PhaseExit::Success,
                snapshot: None,
                stdout: String::new(),
                stderr: String::new(),
            },
        ));
        let point = steps_resume_point(&rolling, 3, &[]);
        assert_eq!(undo_steps(&point), [0]);
        assert!(matches!(&point, StepsResumePoint::RollBack { reason, .. } if reason == "step 3 failed"));
        // Stopped after a step failed, before `rolling-back` was journaled: still undone, as a
        // failure (not an interruption); in waves, only the failed step's wave.
        let mut failed = [step_done(1), step_done(2)].concat();
        failed.push(at_step(
            3,
            JournalEvent::StepFinished {
                outcome: FixOutcome::RolledBack("verify".into()),
            },
        ));
        let point = steps_resume_point(&failed, 4, &[]);
        assert_eq!(undo_steps(&point), [1, 0]);
        if let StepsResumePoint::RollBack { reason, .. } = &point {
            assert!(reason.starts_with("step 3: rolled back: verify"), "{reason}");
            assert!(!FixOutcome::RolledBack(reason.clone()).interrupted_by_restart());
        }
        let point = steps_resume_point(&failed, 4, &[1, 3]);
        assert_eq!(
            undo_steps(&point),
            [1],
            "wave 1 (step 1) stays; wave 2's completed step 2 is undone"
        );
        // In waves, a stop before a new wave's first execute undoes nothing of the waves before.
        let mut between_waves = [step_done(1), step_done(2)].concat();
        between_waves.push(at_step(
            3,
            JournalEvent::PhaseStarted {
                phase: PhaseName::Precheck,
                attempt: 1,
            },
        ));
        assert_eq!(
            undo_steps(&steps_resume_point(&between_waves, 4, &[2, 2])),
            Vec::<usize>::new()
        );
        // Stopped again while a recovery was undoing a step stopped in its execute: that step
        // is still undone (and, in waves, nothing of the waves before).
        let rollback_of = |step: u32, exit: PhaseExit| {
            vec![
                at_step(
                    step,
                    JournalEvent::PhaseStarted {
                        phase: PhaseName::Rollback,
                        attempt: 1,
                    },
                ),
                at_step(
                    step,
                    JournalEvent::PhaseFinished {
                        phase: PhaseName::Rollback,
                        attempt: 1,
                        exit,
                        snapshot: None,
                        stdout: String::new(),
                        stderr: String::new(),
                    },
                ),
            ]
        };
        let mut twice = [step_done(1), step_done(2)].concat();
        twice.push(at_step(
            3,
            JournalEvent::PhaseStarted {
                phase: PhaseName::Execute,
                attempt: 1,
            },
        ));
        twice.push(e(JournalEvent::RollingBack {
            reason: "step 3: stopped".into(),
        }));
        twice.push(at_step(
            3,
            JournalEvent::PhaseStarted {
                phase: PhaseName::Rollback,
                attempt: 1,
            },
        ));
        assert_eq!(undo_steps(&steps_resume_point(&twice, 3, &[])), [2, 1, 0]);
        assert_eq!(
            undo_steps(&steps_resume_point(&twice, 3, &[1, 2])),
            [2, 1],
            "wave 1 stays"
        );
        // Two `rolling-back` entries (a recovery that stopped too): a rollback that succeeded
        // after the first is done, not repeated.
        let mut again = [step_done(1), step_done(2), step_done(3)].concat();
        again.push(e(JournalEvent::RollingBack {
            reason: "the remedy's verify".into(),
        }));
        again.extend(rollback_of(3, PhaseExit::Success));
        again.push(e(JournalEvent::RollingBack {
            reason: "the remedy's verify".into(),
        }));
        again.extend(rollback_of(2, PhaseExit::Success));
        assert_eq!(undo_steps(&steps_resume_point(&again, 3, &[])), [0]);
        // A step whose own rollback failed still needs a human after the others are undone.
        let mut broken = step_done(1);
        broken.push(at_step(
            2,
            JournalEvent::StepFinished {
                outcome: FixOutcome::RollbackFailed("restore".into()),
            },
        ));
        match steps_resume_point(&broken, 3, &[]) {
            StepsResumePoint::RollBack {
                undo,
                broken,
                changed,
                ..
            } => {
                assert_eq!(undo.len(), 1);
                assert!(changed);
                assert!(broken.is_some_and(|b| b.contains("step 2: restore")));
            }
            other => panic!("{other:?}"),
        }
        // Finished is finished.
        rolling.push(e(JournalEvent::FixFinished {
            outcome: FixOutcome::RolledBack("done".into()),
        }));
        assert!(matches!(
            steps_resume_point(&rolling, 3, &[]),
            StepsResumePoint::Finished(_)
        ));
    }
}
