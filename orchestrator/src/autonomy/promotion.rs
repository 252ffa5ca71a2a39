//! The promotion gate: at least `min_in_stage` in the current stage, a success rate of at least
//! `min_success_rate` over the trailing `window` with at least `min_samples` outcomes, and no P0
//! misfix in that window; never above the scope's cap.

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
}

impl Default for PromotionPolicy {
    fn default() -> Self {
        Self {
            min_in_stage: Duration::from_secs(7 * 24 * 3600),
            window: Duration::from_secs(72 * 3600),
            min_success_rate: 0.991,
            min_samples: 20,
            auto_apply: false,
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
        match summary.success_rate {
            Some(rate) if rate + 1e-12 < self.min_success_rate => unmet.push(format!(
                "success rate {:.2} % is below {:.2} %",
                rate * 100.0,
                self.min_success_rate * 100.0
            )),
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
