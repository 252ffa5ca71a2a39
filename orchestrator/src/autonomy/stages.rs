//! Stages per (action, scope): the first stage of a new pair, the promotion gate as the API and
//! the page show it, promoting and demoting (by an SRE, by policy, or at once after a P0 misfix
//! or a failed rollback), and the leader's proposals. Every change is audited, written to the
//! stage history and notified.

use std::sync::Arc;

use tracing::info;

use super::context::{AutonomyError, Context, MAX_CAS_ATTEMPTS, ROOTFIX, stage_key};
use super::outcome::{Measured, Outcome, OutcomeSummary};
use super::promotion::GateStatus;
use super::stage::{Proposal, Stage, StageChange, StageEntry, StageState};
use crate::notify::{Notification, NotificationKind};

/// One (action, scope) with its gate, as the API and the page show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StageReport {
    #[serde(flatten)]
    pub entry: StageEntry,
    /// The scope's cap (`manual` when the scope is no longer configured).
    pub cap: Stage,
    pub gate: GateStatus,
    /// The seed's table over the gate's window: recovery times, rollback success, kinds.
    pub measured: Measured,
    /// The outcomes in the window, oldest first (the page's picture).
    #[serde(skip)]
    pub outcomes: Vec<Outcome>,
    /// Every stage change of the pair, oldest first (the page's picture).
    #[serde(skip)]
    pub history: Vec<StageChange>,
    /// Start of the window the gate, the table and the picture cover.
    #[serde(skip)]
    pub window_start: chrono::DateTime<chrono::Utc>,
    #[serde(skip)]
    pub now: chrono::DateTime<chrono::Utc>,
}

/// What [`Stages::propose_or_apply`] did: `action/scope → stage` each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Promotions {
    pub proposed: Vec<String>,
    pub promoted: Vec<String>,
}

/// Reads and changes the stages.
pub struct Stages {
    pub(super) ctx: Arc<Context>,
}

impl Stages {
    pub fn new(ctx: Arc<Context>) -> Self {
        Self { ctx }
    }

    /// The scope's stage cap (`manual` when the scope is no longer configured).
    fn cap_of(&self, scope: &str) -> Stage {
        self.ctx
            .config
            .scopes
            .get(scope)
            .map_or(Stage::Manual, |s| s.max_stage)
    }

    /// The stored stage of a pair; a pair seen for the first time starts `manual`.
    pub(super) async fn stage_of(&self, action: &str, scope: &str) -> Result<Stage, AutonomyError> {
        if let Some(s) = self.ctx.state.stage(action, scope).await? {
            return Ok(s.stage);
        }
        let now = self.ctx.clock.now();
        let state = StageState {
            stage: Stage::Manual,
            since: now,
            proposal: None,
        };
        let change = StageChange {
            at: now,
            action: action.to_string(),
            scope: scope.to_string(),
            from: None,
            to: Stage::Manual,
            by: ROOTFIX.to_string(),
            reason: "first fix of this type in this scope: it starts manual".to_string(),
        };
        if self
            .ctx
            .state
            .change_stage(action, scope, None, &state, Some(&change))
            .await?
        {
            self.ctx
                .audit(ROOTFIX, "stage.created", format!("{action}/{scope}: manual"))
                .await;
            return Ok(Stage::Manual);
        }
        // Another replica created it meanwhile.
        Ok(self
            .ctx
            .state
            .stage(action, scope)
            .await?
            .map_or(Stage::Manual, |s| s.stage))
    }
    // ── Stages ──

    /// Every pair with its stage, its gate and its measured table now.
    pub async fn stage_reports(&self) -> Result<Vec<StageReport>, AutonomyError> {
        let now = self.ctx.clock.now();
        let window_start = self.ctx.config.promotion.window_start(now);
        let mut out = Vec::new();
        for entry in self.ctx.state.stages().await? {
            let cap = self.cap_of(&entry.scope);
            let (gate, outcomes) = self.gate_and_outcomes(&entry, cap, now).await?;
            let measured = Measured::of(&outcomes);
            let history = self.ctx.state.stage_history(&entry.action, &entry.scope).await?;
            out.push(StageReport {
                entry,
                cap,
                gate,
                measured,
                outcomes,
                history,
                window_start,
                now,
            });
        }
        Ok(out)
    }

    async fn gate(
        &self,
        entry: &StageEntry,
        cap: Stage,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<GateStatus, AutonomyError> {
        Ok(self.gate_and_outcomes(entry, cap, now).await?.0)
    }

    /// The gate of a pair now, and the outcomes of its window (oldest first) it read.
    async fn gate_and_outcomes(
        &self,
        entry: &StageEntry,
        cap: Stage,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(GateStatus, Vec<Outcome>), AutonomyError> {
        let policy = &self.ctx.config.promotion;
        let mut outcomes = self
            .ctx
            .state
            .outcomes(&entry.action, &entry.scope, policy.window_start(now))
            .await?;
        outcomes.sort_by_key(|o| o.at);
        let gate = policy.evaluate(&entry.state, &OutcomeSummary::of(&outcomes), cap, now);
        Ok((gate, outcomes))
    }

    /// Promotes a pair one stage. Without `force` the gate must be met; the scope's cap always
    /// holds.
    pub async fn promote(
        &self,
        action: &str,
        scope: &str,
        by: &str,
        reason: &str,
        force: bool,
    ) -> Result<StageState, AutonomyError> {
        let Some(state) = self.ctx.state.stage(action, scope).await? else {
            return Err(AutonomyError::NotFound(format!(
                "stage of {action} in scope {scope}"
            )));
        };
        let cap = self.cap_of(scope);
        let Some(next) = state.stage.next() else {
            return Err(AutonomyError::Conflict(format!(
                "{action} in {scope} is at auto already"
            )));
        };
        if next > cap {
            return Err(AutonomyError::Conflict(format!(
                "scope {scope} caps the stage at {cap}; {action} cannot be promoted to {next}"
            )));
        }
        let entry = StageEntry {
            action: action.to_string(),
            scope: scope.to_string(),
            state: state.clone(),
        };
        let now = self.ctx.clock.now();
        let gate = self.gate(&entry, cap, now).await?;
        if !gate.met && !force {
            return Err(AutonomyError::Conflict(format!(
                "the promotion gate is not met: {}",
                gate.unmet.join("; ")
            )));
        }
        let reason = if reason.trim().is_empty() {
            format!(
                "gate {}: {} outcomes, success rate {}",
                if gate.met { "met" } else { "forced" },
                gate.samples,
                gate.rate_text()
            )
        } else {
            reason.trim().to_string()
        };
        self.change(action, scope, state.stage, next, by, &reason).await
    }

    /// Demotes a pair to `to` (default: one stage down... or manual when `to` is given so).
    pub async fn demote(
        &self,
        action: &str,
        scope: &str,
        by: &str,
        reason: &str,
        to: Option<Stage>,
    ) -> Result<StageState, AutonomyError> {
        if reason.trim().is_empty() {
            return Err(AutonomyError::Invalid("a reason is required to demote".into()));
        }
        let Some(state) = self.ctx.state.stage(action, scope).await? else {
            return Err(AutonomyError::NotFound(format!(
                "stage of {action} in scope {scope}"
            )));
        };
        let to = to.unwrap_or(Stage::Manual);
        if to >= state.stage {
            return Err(AutonomyError::Conflict(format!(
                "{action} in {scope} is at {}; cannot demote to {to}",
                state.stage
            )));
        }
        self.change(action, scope, state.stage, to, by, reason.trim())
            .await
    }

    async fn change(
        &self,
        action: &str,
        scope: &str,
        from: Stage,
        to: Stage,
        by: &str,
        reason: &str,
    ) -> Result<StageState, AutonomyError> {
        let now = self.ctx.clock.now();
        let state = StageState {
            stage: to,
            since: now,
            proposal: None,
        };
        let change = StageChange {
            at: now,
            action: action.to_string(),
            scope: scope.to_string(),
            from: Some(from),
            to,
            by: by.to_string(),
            reason: reason.to_string(),
        };
        if !self
            .ctx
            .state
            .change_stage(action, scope, Some(from), &state, Some(&change))
            .await?
        {
            return Err(AutonomyError::Conflict(format!(
                "the stage of {action} in {scope} changed meanwhile; look again"
            )));
        }
        let verb = if to > from { "promoted" } else { "demoted" };
        self.ctx
            .audit(
                by,
                &format!("stage.{verb}"),
                format!("{action}/{scope}: {from} → {to}: {reason}"),
            )
            .await;
        let mut n = Notification::new(
            NotificationKind::StageChanged,
            format!("{action} in {scope}: {from} → {to}"),
            format!("{verb} by {by}: {reason}"),
        )
        .with_action(action)
        .with_scope(scope);
        n.at = now;
        self.ctx.notifier.notify(n);
        info!(%action, %scope, %from, %to, %by, "stage changed");
        Ok(state)
    }

    /// A P0 misfix or a failed rollback: back to manual at once.
    pub(super) async fn demote_to_manual(
        &self,
        action: &str,
        scope: &str,
        reason: &str,
    ) -> Result<(), AutonomyError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some(state) = self.ctx.state.stage(action, scope).await? else {
                return Ok(());
            };
            if state.stage == Stage::Manual {
                return Ok(());
            }
            match self
                .change(action, scope, state.stage, Stage::Manual, ROOTFIX, reason)
                .await
            {
                Ok(_) => return Ok(()),
                Err(AutonomyError::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(AutonomyError::Contended(stage_key(action, scope)))
    }

    /// The leader's part for stages: for every pair whose gate is met, proposes the next stage
    /// (once) or, with `apply: auto`, applies it.
    pub(super) async fn propose_or_apply(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Promotions, AutonomyError> {
        let mut out = Promotions::default();
        for entry in self.ctx.state.stages().await? {
            let cap = self.cap_of(&entry.scope);
            let gate = self.gate(&entry, cap, now).await?;
            let (true, Some(next)) = (gate.met, gate.next) else {
                continue;
            };
            let key = format!("{} → {next}", stage_key(&entry.action, &entry.scope));
            if self.ctx.config.promotion.auto_apply {
                let reason = format!(
                    "the gate is met ({} outcomes, success rate {}); policy applies it",
                    gate.samples,
                    gate.rate_text()
                );
                match self
                    .change(
                        &entry.action,
                        &entry.scope,
                        entry.state.stage,
                        next,
                        ROOTFIX,
                        &reason,
                    )
                    .await
                {
                    Ok(_) => out.promoted.push(key),
                    Err(AutonomyError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
            if entry.state.proposal.as_ref().map(|p| p.to) == Some(next) {
                continue;
            }
            let proposed = StageState {
                proposal: Some(Proposal { to: next, at: now }),
                ..entry.state.clone()
            };
            if self
                .ctx
                .state
                .change_stage(
                    &entry.action,
                    &entry.scope,
                    Some(entry.state.stage),
                    &proposed,
                    None,
                )
                .await?
            {
                self.ctx
                    .audit(
                        ROOTFIX,
                        "stage.proposed",
                        format!(
                            "{}/{}: {} → {next}: the gate is met ({} outcomes, success rate {})",
                            entry.action,
                            entry.scope,
                            entry.state.stage,
                            gate.samples,
                            gate.rate_text()
                        ),
                    )
                    .await;
                let mut n = Notification::new(
                    NotificationKind::StageChanged,
                    format!("Promotion proposed: {} in {} → {next}", entry.action, entry.scope),
                    format!(
                        "the gate is met; apply with `rootfix stages promote {} {}`",
                        entry.action, entry.scope
                    ),
                )
                .with_action(entry.action.clone())
                .with_scope(entry.scope.clone());
                n.at = now;
                self.ctx.notifier.notify(n);
                out.proposed.push(key);
            }
        }
        Ok(out)
    }
}
