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
            if o.kind == OutcomeKind::Interrupted {
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
