//! Retention, the leader's housekeeping (`retention:` in the config), so Redis stays bounded at
//! any steady alert rate:
//!
//! - the alert stream is trimmed behind its consumer group: every entry before the oldest one
//!   still pending, or up to the last delivered one when none is — never a pending or undelivered
//!   entry ([`AlertStream::trim_alerts`](crate::state::AlertStream::trim_alerts));
//! - closed incidents (resolved, stale) are removed `retention.incidents` after they closed, with
//!   their journal, approvals and index entries, at most `retention.batch` per run, oldest
//!   first; when `retention.export` names a file, each is first appended to it as one JSON line
//!   (the incident, its journal, its approvals) and the file is fsynced before anything is
//!   removed, so a backtest corpus survives;
//! - audit events older than `retention.audit` are trimmed (besides the audit stream's cap).
//!
//! Outcomes and stage history are bounded where they are written (`autonomy.outcome_retention`
//! and [`OUTCOMES_KEPT`](crate::state::autonomy::OUTCOMES_KEPT) per pair,
//! [`STAGE_HISTORY_KEPT`](crate::state::autonomy::STAGE_HISTORY_KEPT) changes per pair).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{info, warn};

use super::context::{AutonomyError, Context};
use crate::incident::Incident;
use crate::record::approval::Approval;
use crate::record::journal::JournalEntry;

/// Audit events trimmed per run at most.
const AUDIT_BATCH: usize = 10_000;

/// What one run removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Stream entries trimmed.
    pub trimmed_alerts: u64,
    /// Incidents removed (ids).
    pub removed: Vec<String>,
    /// Incidents appended to the export file.
    pub exported: usize,
    /// Audit events trimmed.
    pub trimmed_audit: u64,
}

/// One line of the export file: an incident as it was removed, with its journal and approvals.
#[derive(Debug, Serialize)]
pub struct ExportLine<'a> {
    pub incident: &'a Incident,
    pub journal: &'a [JournalEntry],
    pub approvals: &'a [Approval],
}

/// Runs retention.
pub struct Retention {
    ctx: Arc<Context>,
}

impl Retention {
    pub fn new(ctx: Arc<Context>) -> Self {
        Self { ctx }
    }

    /// One run at `now`.
    pub async fn run(&self, now: DateTime<Utc>) -> Result<RetentionReport, AutonomyError> {
        let config = &self.ctx.retention;
        let state = &self.ctx.state;
        let mut report = RetentionReport {
            trimmed_alerts: state.trim_alerts().await?,
            ..RetentionReport::default()
        };
        let cutoff = now - chrono::Duration::from_std(config.incidents).unwrap_or(chrono::Duration::MAX);
        let closed = state.closed_incidents_before(cutoff, config.batch).await?;
        if !closed.is_empty() {
            let mut doomed = Vec::with_capacity(closed.len());
            for incident in closed {
                let journal = state.journal(&incident.id).await?;
                let mut approvals = Vec::new();
                for id in incident.approval_ids() {
                    if let Some(a) = state.approval(&id).await? {
                        approvals.push(a);
                    }
                }
                doomed.push((incident, journal, approvals));
            }
            if let Some(path) = &config.export {
                export(path, &doomed).await?;
                report.exported = doomed.len();
            }
            for (incident, _, _) in &doomed {
                if state.remove_incident(incident, &incident.approval_ids()).await? {
                    report.removed.push(incident.id.clone());
                }
            }
        }
        let audit_cutoff = now - chrono::Duration::from_std(config.audit).unwrap_or(chrono::Duration::MAX);
        report.trimmed_audit = state.trim_audit(audit_cutoff, AUDIT_BATCH).await?;
        if report.trimmed_alerts > 0 || !report.removed.is_empty() || report.trimmed_audit > 0 {
            info!(
                trimmed_alerts = report.trimmed_alerts,
                removed_incidents = report.removed.len(),
                exported = report.exported,
                trimmed_audit = report.trimmed_audit,
                "retention: trimmed the alert stream behind its oldest pending entry, removed closed incidents past retention.incidents, trimmed the audit"
            );
        }
        Ok(report)
    }
}

/// Appends one JSON line per incident to `path` and fsyncs it; only then may they be removed.
async fn export(
    path: &Path,
    doomed: &[(Incident, Vec<JournalEntry>, Vec<Approval>)],
) -> Result<(), AutonomyError> {
    let mut text = String::new();
    for (incident, journal, approvals) in doomed {
        let line = serde_json::to_string(&ExportLine {
            incident,
            journal,
            approvals,
        })
        .map_err(|e| {
            AutonomyError::Invalid(format!("cannot encode incident {} for export: {e}", incident.id))
        })?;
        text.push_str(&line);
        text.push('\n');
    }
    let path = path.to_path_buf();
    let shown = path.display().to_string();
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        file.write_all(text.as_bytes())?;
        file.sync_data()
    })
    .await
    .map_err(|e| AutonomyError::Invalid(format!("export to {shown} did not finish: {e}")))?
    .map_err(|e| {
        warn!(path = %shown, error = %e, "retention: cannot export incidents; none removed");
        AutonomyError::Invalid(format!("cannot export incidents to {shown}: {e}"))
    })
}
