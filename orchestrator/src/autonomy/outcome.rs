//! Outcomes of fixes per (action, scope), kept time-ordered for the promotion gate's window, and
//! the SRE's confirmation verdicts (`correct`, or `misfix` with a severity) that amend them. The
//! records themselves are in [`crate::record::outcome`]; this is what the gate reads of them.

use std::collections::BTreeMap;

pub use crate::record::outcome::{Outcome, OutcomeKind, Severity};

/// The outcomes of a window, one per incident: a confirmation amends the fix's own outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OutcomeSummary {
    /// Incidents with an outcome in the window.
    pub samples: u32,
    pub successes: u32,
    /// `successes / samples`, or `None` without samples.
    pub success_rate: Option<f64>,
    pub p0_misfixes: u32,
}

impl OutcomeSummary {
    /// Summarises outcomes (any order): per incident the latest counts; a P0 misfix counts even
    /// when a later outcome of the same incident says otherwise.
    pub fn of(outcomes: &[Outcome]) -> Self {
        let mut latest: BTreeMap<&str, &Outcome> = BTreeMap::new();
        let mut p0_misfixes = 0;
        for o in outcomes {
            // Only fixes that executed are samples: aborted, already healthy, dry runs,
            // refusals, interruptions and recovery measurements are not.
            if !o.kind.counts() {
                continue;
            }
            if o.kind
                == (OutcomeKind::Misfix {
                    severity: Severity::P0,
                })
            {
                p0_misfixes += 1;
            }
            // On a tie in time an SRE's verdict wins over the fix's own result, and a recurrence
            // (evidence that came after the fix by definition) over both.
            let rank = |x: &Outcome| {
                let weight = match x.kind {
                    OutcomeKind::Recurred => 2,
                    OutcomeKind::Correct | OutcomeKind::Misfix { .. } => 1,
                    _ => 0,
                };
                (x.at, weight)
            };
            match latest.get(o.incident.as_str()) {
                Some(seen) if rank(seen) > rank(o) => {}
                _ => {
                    latest.insert(&o.incident, o);
                }
            }
        }
        let samples = u32::try_from(latest.len()).unwrap_or(u32::MAX);
        let successes =
            u32::try_from(latest.values().filter(|o| o.kind.is_success()).count()).unwrap_or(u32::MAX);
        Self {
            samples,
            successes,
            success_rate: (samples > 0).then(|| f64::from(successes) / f64::from(samples)),
            p0_misfixes,
        }
    }
}

/// The seed's table for one (action, scope), measured from its outcomes in a window: recovery
/// time (alert start → resolved, after a fix), and how often a rollback restored its target.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Measured {
    /// Fixes whose alert resolved after them.
    pub recoveries: u32,
    pub mean_recovery_seconds: Option<f64>,
    pub p90_recovery_seconds: Option<f64>,
    /// Rollbacks run (rolled back, rollback failed, and those after an interruption).
    pub rollbacks: u32,
    /// Of those, the rollbacks that restored the target.
    pub rollbacks_restored: u32,
    pub rollback_success_rate: Option<f64>,
    /// Outcomes per kind (`succeeded`, `aborted`, `refused`, ...), what the picture shows.
    pub kinds: BTreeMap<&'static str, u32>,
}

impl Measured {
    pub fn of(outcomes: &[Outcome]) -> Self {
        let mut recovery: Vec<f64> = Vec::new();
        let mut m = Measured::default();
        for o in outcomes {
            *m.kinds.entry(o.kind.as_str()).or_default() += 1;
            match o.kind {
                OutcomeKind::Recovered { ms } => recovery.push(ms as f64 / 1e3),
                OutcomeKind::RolledBack | OutcomeKind::Interrupted => {
                    m.rollbacks += 1;
                    m.rollbacks_restored += 1;
                }
                OutcomeKind::RollbackFailed => m.rollbacks += 1,
                _ => {}
            }
        }
        recovery.sort_by(f64::total_cmp);
        m.recoveries = u32::try_from(recovery.len()).unwrap_or(u32::MAX);
        if !recovery.is_empty() {
            m.mean_recovery_seconds = Some(recovery.iter().sum::<f64>() / recovery.len() as f64);
            // Nearest rank: the smallest value at or above 90 % of the recoveries.
            let rank = (recovery.len() * 9).div_ceil(10).max(1);
            m.p90_recovery_seconds = recovery.get(rank - 1).copied();
        }
        m.rollback_success_rate =
            (m.rollbacks > 0).then(|| f64::from(m.rollbacks_restored) / f64::from(m.rollbacks));
        m
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::UNIX_EPOCH + chrono::Duration::hours(h)
    }

    fn o(h: i64, incident: &str, kind: OutcomeKind) -> Outcome {
        Outcome {
            at: at(h),
            incident: incident.into(),
            kind,
            target: None,
        }
    }

    #[test]
    fn a_recurrence_turns_a_success_into_a_failure_and_an_interruption_does_not_count() {
        let s = OutcomeSummary::of(&[
            o(1, "a", OutcomeKind::Succeeded),
            o(2, "a", OutcomeKind::Recurred),
            o(3, "d", OutcomeKind::Recurred),
            o(3, "d", OutcomeKind::Succeeded),
            o(1, "b", OutcomeKind::Succeeded),
            o(1, "c", OutcomeKind::Interrupted),
        ]);
        assert_eq!((s.samples, s.successes), (3, 1), "a tie goes to the recurrence");
    }

    #[test]
    fn only_executed_fixes_are_samples() {
        let s = OutcomeSummary::of(&[
            o(1, "a", OutcomeKind::Aborted),
            o(1, "b", OutcomeKind::AlreadyHealthy),
            o(1, "c", OutcomeKind::DryRun),
            o(
                1,
                "d",
                OutcomeKind::Refused {
                    gate: crate::record::gate::Gate::Killswitch,
                },
            ),
            o(1, "e", OutcomeKind::Failed),
            o(2, "f", OutcomeKind::Succeeded),
            o(3, "f", OutcomeKind::Recovered { ms: 40_000 }),
        ]);
        assert_eq!((s.samples, s.successes), (1, 1));
    }

    #[test]
    fn the_table_measures_recovery_and_rollbacks() {
        let mut all: Vec<Outcome> = (1..=10u64)
            .map(|i| o(1, &format!("r{i}"), OutcomeKind::Recovered { ms: i * 10_000 }))
            .collect();
        all.push(o(1, "x", OutcomeKind::RolledBack));
        all.push(o(1, "y", OutcomeKind::RolledBack));
        all.push(o(1, "z", OutcomeKind::RollbackFailed));
        let m = Measured::of(&all);
        assert_eq!(m.recoveries, 10);
        assert_eq!(m.mean_recovery_seconds, Some(55.0));
        assert_eq!(m.p90_recovery_seconds, Some(90.0));
        assert_eq!((m.rollbacks, m.rollbacks_restored), (3, 2));
        assert!((m.rollback_success_rate.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(m.kinds["recovered"], 10);
        assert_eq!(Measured::of(&[]).p90_recovery_seconds, None);
    }

    #[test]
    fn a_confirmation_amends_its_incident_and_p0s_are_counted() {
        let s = OutcomeSummary::of(&[
            o(1, "a", OutcomeKind::Succeeded),
            o(2, "b", OutcomeKind::Succeeded),
            o(
                3,
                "a",
                OutcomeKind::Misfix {
                    severity: Severity::P2,
                },
            ),
            o(4, "c", OutcomeKind::RolledBack),
        ]);
        assert_eq!((s.samples, s.successes, s.p0_misfixes), (3, 1, 0));
        assert!((s.success_rate.unwrap() - 1.0 / 3.0).abs() < 1e-9);
        let s = OutcomeSummary::of(&[
            o(
                5,
                "d",
                OutcomeKind::Misfix {
                    severity: Severity::P0,
                },
            ),
            o(1, "d", OutcomeKind::Succeeded),
        ]);
        assert_eq!((s.samples, s.successes, s.p0_misfixes), (1, 0, 1));
        assert_eq!(OutcomeSummary::of(&[]).success_rate, None);
        // Same instant, either order: the verdict counts.
        for pair in [
            [
                o(7, "e", OutcomeKind::Succeeded),
                o(
                    7,
                    "e",
                    OutcomeKind::Misfix {
                        severity: Severity::P3,
                    },
                ),
            ],
            [
                o(
                    7,
                    "e",
                    OutcomeKind::Misfix {
                        severity: Severity::P3,
                    },
                ),
                o(7, "e", OutcomeKind::Succeeded),
            ],
        ] {
            assert_eq!(OutcomeSummary::of(&pair).successes, 0);
        }
    }
}
