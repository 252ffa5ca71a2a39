//! The leader's periodic job, run by the one replica holding the leader lease: expire overdue
//! approvals, propose (or, by policy, apply) the promotions whose gate is met, then sweep the
//! open incidents (stale, recurred, refused fixes decided again), then retention (the alert
//! stream trimmed, closed incidents past `retention.incidents` exported and removed, old audit
//! events trimmed). It runs every
//! `leader_interval`, and at once when a fix of this replica frees its concurrency slot.

use std::sync::Arc;

use tracing::warn;

use super::approvals::Approvals;
use super::context::{AutonomyError, Context};
use super::retention::{Retention, RetentionReport};
use super::stages::Stages;
use super::sweep::Sweep;

/// What one run of the leader's job did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub expired: Vec<String>,
    /// `action/scope → stage` proposals made.
    pub proposed: Vec<String>,
    /// `action/scope → stage` promotions applied (policy `apply: auto`).
    pub promoted: Vec<String>,
    /// Incidents closed as stale.
    pub stale: Vec<String>,
    /// Fixed incidents whose alert did not resolve within `resolve_wait`.
    pub recurred: Vec<String>,
    /// Open incidents whose lost `recurred` outcome was recorded.
    pub recurrences_repaired: Vec<String>,
    /// Incidents whose refused fix was decided again.
    pub redecided: Vec<String>,
    /// What retention trimmed and removed.
    pub retention: RetentionReport,
}

/// Runs the leader's job.
pub struct Leader {
    ctx: Arc<Context>,
    approvals: Arc<Approvals>,
    stages: Arc<Stages>,
    sweep: Sweep,
    retention: Retention,
}

impl Leader {
    pub fn new(
        ctx: Arc<Context>,
        approvals: Arc<Approvals>,
        stages: Arc<Stages>,
        sweep: Sweep,
        retention: Retention,
    ) -> Self {
        Self {
            ctx,
            approvals,
            stages,
            sweep,
            retention,
        }
    }

    /// One run of the job.
    pub async fn tick(&self) -> Result<TickReport, AutonomyError> {
        let now = self.ctx.clock.now();
        let expired = self.approvals.expire_overdue(now).await?;
        let promotions = self.stages.propose_or_apply(now).await?;
        let swept = self.sweep.run(now).await?;
        let retention = self.retention.run(now).await?;
        Ok(TickReport {
            retention,
            expired,
            proposed: promotions.proposed,
            promoted: promotions.promoted,
            stale: swept.stale,
            recurred: swept.recurred,
            recurrences_repaired: swept.recurrences_repaired,
            redecided: swept.redecided,
        })
    }

    /// Runs [`Self::tick`] every `leader_interval` while this replica holds the leader lease,
    /// until `stop` turns true.
    pub async fn run(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let interval = self.ctx.config.leader_interval;
        loop {
            match self.ctx.state.try_lead(&self.ctx.replica, interval * 3).await {
                Ok(true) => {
                    if let Err(e) = self.tick().await {
                        warn!(error = %e, "the leader's job failed; retrying next interval");
                    }
                }
                Ok(false) => {}
                Err(e) => warn!(error = %e, "cannot reach the state store for the leader election"),
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.ctx.slot_freed.notified() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}
