//! The promotion gate: at least `min_in_stage` in the current stage, a success rate of at least
//! `min_success_rate` over the trailing `window` with at least `min_samples` outcomes, and no P0
//! misfix in that window; never above the scope's cap. With `gate_on: lower-bound` the Wilson
//! lower bound at 95 % ([`wilson_lower_bound`]) must reach `min_success_rate` instead of the raw
//! rate: with every fix a success, 99.1 % needs 423 samples.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::outcome::OutcomeSummary;
use super::stage::{Stage, StageState};

/// The gate's numbers (DESIGN §2; the seed's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct PromotionPolicy {
    pub min_in_stage: Duration,
    pub window: Duration,
    pub min_success_rate: f64,
    pub min_samples: u32,
    /// Apply promotions the gate allows without an admin.
    pub auto_apply: bool,
    /// The Wilson lower bound (95 %), not the raw rate, must reach `min_success_rate`.
    pub require_lower_bound: bool,
}

impl Default for PromotionPolicy {
    fn default() -> Self {
        Self {
            min_in_stage: Duration::from_secs(7 * 24 * 3600),
            window: Duration::from_secs(72 * 3600),
            min_success_rate: 0.991,
            min_samples: 20,
            auto_apply: false,
            require_lower_bound: false,
        }
    }
}

/// What the gate says of one (action, scope) now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateStatus {
    pub stage: Stage,
    /// The stage a promotion would reach, when there is one under the cap.
    pub next: Option<Stage>,
    /// Whether the gate allows the promotion now.
    pub met: bool,
    pub hours_in_stage: f64,
    pub samples: u32,
    pub successes: u32,
    pub success_rate: Option<f64>,
    /// The Wilson lower bound (95 %) of the success rate: what the samples guarantee.
    pub lower_bound: Option<f64>,
    /// Whether the gate reads the lower bound (`gate_on: lower-bound`) or the raw rate.
    pub gate_on_lower_bound: bool,
    pub p0_misfixes: u32,
    /// Why the gate is not met (empty when it is).
    pub unmet: Vec<String>,
}

impl GateStatus {
    /// The success rate as a percentage, `-` without samples.
    pub fn rate_text(&self) -> String {
        self.success_rate
            .map_or("-".into(), |r| format!("{:.2} %", r * 100.0))
    }

    /// The lower bound as a percentage, `-` without samples.
    pub fn bound_text(&self) -> String {
        self.lower_bound
            .map_or("-".into(), |r| format!("{:.2} %", r * 100.0))
    }
}

/// z for a two-sided 95 % interval.
const Z95: f64 = 1.959_963_984_540_054;

/// The Wilson score interval's lower bound at 95 % for `successes` of `samples`: the success
/// rate the samples show with 95 % confidence (`None` without samples). 20 of 20 gives 83.9 %;
/// 99.1 % needs 423 of 423.
pub fn wilson_lower_bound(successes: u32, samples: u32) -> Option<f64> {
    if samples == 0 {
        return None;
    }
    let n = f64::from(samples);
    let p = f64::from(successes.min(samples)) / n;
    let z2 = Z95 * Z95;
    let centre = p + z2 / (2.0 * n);
    let spread = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some(((centre - spread) / (1.0 + z2 / n)).max(0.0))
}

impl PromotionPolicy {
    /// Start of the outcome window ending at `now`.
    pub fn window_start(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::MAX)
    }

    /// Evaluates the gate for a pair in `state`, whose outcomes in the window are `summary`,
    /// under a scope capped at `cap`.
    pub fn evaluate(
        &self,
        state: &StageState,
        summary: &OutcomeSummary,
        cap: Stage,
        now: DateTime<Utc>,
    ) -> GateStatus {
        let in_stage = (now - state.since).to_std().unwrap_or_default();
        let next = state.stage.next().filter(|n| *n <= cap);
        let mut unmet = Vec::new();
        match (state.stage.next(), next) {
            (None, _) => unmet.push("already at the highest stage".to_string()),
            (Some(n), None) => unmet.push(format!("the scope caps the stage below {n}")),
            _ => {}
        }
        if in_stage < self.min_in_stage {
            unmet.push(format!(
                "{} in stage, needs {}",
                span(in_stage),
                span(self.min_in_stage)
            ));
        }
        if summary.samples < self.min_samples {
            unmet.push(format!(
                "{} outcome{} in the last {}, needs {}",
                summary.samples,
                if summary.samples == 1 { "" } else { "s" },
                span(self.window),
                self.min_samples
            ));
        }
        let lower_bound = wilson_lower_bound(summary.successes, summary.samples);
        match summary.success_rate {
            Some(rate) if rate + 1e-12 < self.min_success_rate => unmet.push(format!(
                "success rate {:.2} % is below {:.2} %",
                rate * 100.0,
                self.min_success_rate * 100.0
            )),
            Some(_) if self.require_lower_bound => {
                if let Some(bound) = lower_bound.filter(|b| b + 1e-12 < self.min_success_rate) {
                    unmet.push(format!(
                        "the success rate's 95 % lower bound {:.2} % is below {:.2} %",
                        bound * 100.0,
                        self.min_success_rate * 100.0
                    ));
                }
            }
            _ => {}
        }
        if summary.p0_misfixes > 0 {
            unmet.push(format!(
                "{} P0 misfix{} in the last {}",
                summary.p0_misfixes,
                if summary.p0_misfixes == 1 { "" } else { "es" },
                span(self.window)
            ));
        }
        GateStatus {
            stage: state.stage,
            next,
            met: unmet.is_empty(),
            hours_in_stage: in_stage.as_secs_f64() / 3600.0,
            samples: summary.samples,
            successes: summary.successes,
            success_rate: summary.success_rate,
            lower_bound,
            gate_on_lower_bound: self.require_lower_bound,
            p0_misfixes: summary.p0_misfixes,
            unmet,
        }
    }
}

/// A duration as an SRE reads it: `7d`, `6d 12h`, `1h 30m`, `45s`.
pub fn span(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        return format!("{secs}s");
    }
    let parts = [
        (secs / 86_400, "d"),
        (secs % 86_400 / 3600, "h"),
        (secs % 3600 / 60, "m"),
    ];
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(stage: Stage, days_ago: i64, now: DateTime<Utc>) -> StageState {
        StageState {
            stage,
            since: now - chrono::Duration::days(days_ago),
            proposal: None,
        }
    }

    fn summary(samples: u32, successes: u32, p0: u32) -> OutcomeSummary {
        OutcomeSummary {
            samples,
            successes,
            success_rate: (samples > 0).then(|| f64::from(successes) / f64::from(samples)),
            p0_misfixes: p0,
        }
    }

    #[test]
    fn spans_read_like_an_sre_writes_them() {
        let h = |n: u64| Duration::from_secs(n * 3600);
        assert_eq!(span(h(7 * 24)), "7d");
        assert_eq!(span(h(72)), "3d");
        assert_eq!(span(h(6 * 24 + 12)), "6d 12h");
        assert_eq!(span(Duration::from_secs(67)), "1m");
        assert_eq!(span(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(span(Duration::ZERO), "0s");
    }

    #[test]
    fn the_wilson_bound_is_what_small_samples_guarantee() {
        assert_eq!(wilson_lower_bound(0, 0), None);
        let b = |s, n| wilson_lower_bound(s, n).unwrap();
        assert!((b(20, 20) - 0.8389).abs() < 1e-4, "{}", b(20, 20));
        assert!((b(0, 10)).abs() < 1e-12);
        // 99.1 % needs 423 straight successes.
        assert!(
            b(423, 423) >= 0.991 && b(422, 422) < 0.991,
            "{} {}",
            b(423, 423),
            b(422, 422)
        );
        let p = PromotionPolicy {
            require_lower_bound: true,
            ..PromotionPolicy::default()
        };
        let now = Utc::now();
        let g = p.evaluate(
            &state(Stage::Manual, 8, now),
            &summary(200, 200, 0),
            Stage::Auto,
            now,
        );
        assert!(!g.met && g.unmet[0].contains("lower bound"), "{:?}", g.unmet);
        assert!(
            p.evaluate(
                &state(Stage::Manual, 8, now),
                &summary(500, 500, 0),
                Stage::Auto,
                now
            )
            .met
        );
    }

    #[test]
    fn every_condition_of_the_gate_is_needed() {
        let now = Utc::now();
        let p = PromotionPolicy::default();
        let ok = p.evaluate(
            &state(Stage::Manual, 8, now),
            &summary(200, 199, 0),
            Stage::Auto,
            now,
        );
        assert!(ok.met, "{:?}", ok.unmet);
        assert_eq!(ok.next, Some(Stage::Silent));
        // 99.1 % exactly passes; 99.0 % does not.
        assert!(
            p.evaluate(
                &state(Stage::Manual, 8, now),
                &summary(1000, 991, 0),
                Stage::Auto,
                now
            )
            .met
        );
        let low = p.evaluate(
            &state(Stage::Manual, 8, now),
            &summary(100, 99, 0),
            Stage::Auto,
            now,
        );
        assert!(!low.met && low.unmet[0].contains("below"), "{:?}", low.unmet);
        let young = p.evaluate(
            &state(Stage::Manual, 6, now),
            &summary(200, 200, 0),
            Stage::Auto,
            now,
        );
        assert!(!young.met && young.unmet[0].contains("in stage"));
        let few = p.evaluate(
            &state(Stage::Manual, 8, now),
            &summary(19, 19, 0),
            Stage::Auto,
            now,
        );
        assert!(!few.met && few.unmet[0].contains("outcomes"));
        let p0 = p.evaluate(
            &state(Stage::Manual, 8, now),
            &summary(200, 200, 1),
            Stage::Auto,
            now,
        );
        assert!(!p0.met && p0.unmet[0].contains("P0"));
        let capped = p.evaluate(
            &state(Stage::Silent, 8, now),
            &summary(200, 200, 0),
            Stage::Silent,
            now,
        );
        assert!(!capped.met && capped.next.is_none());
        let top = p.evaluate(
            &state(Stage::Auto, 8, now),
            &summary(200, 200, 0),
            Stage::Auto,
            now,
        );
        assert!(!top.met);
    }
}
