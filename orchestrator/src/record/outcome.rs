//! The outcome record: how one fix of an (action, scope) ended, or what an SRE's confirmation
//! said of it (`correct`, or `misfix` with a severity), as kept in `rootfix:outcomes:<action>:<scope>`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::gate::Gate;

/// How bad a misfix was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    P0,
    P1,
    P2,
    P3,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::P0 => "P0",
            Severity::P1 => "P1",
            Severity::P2 => "P2",
            Severity::P3 => "P3",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "P0" => Some(Severity::P0),
            "P1" => Some(Severity::P1),
            "P2" => Some(Severity::P2),
            "P3" => Some(Severity::P3),
            _ => None,
        }
    }
}

/// What an outcome says. Only fixes that executed (their execute phase ran) are *samples* of the
/// promotion gate ([`OutcomeKind::counts`]); the rest are kept so a team sees what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum OutcomeKind {
    /// Executed and verified.
    Succeeded,
    /// The precheck found the target healthy already (exit 3): nothing was changed, not counted.
    AlreadyHealthy,
    /// Aborted before execute (the precheck refused, the lock was lost): nothing was changed,
    /// not counted.
    Aborted,
    /// Written by rootfix before 0.3 for a precheck abort; read as [`OutcomeKind::Aborted`].
    Failed,
    /// Executed, did not verify, and the rollback restored the target: a failure.
    RolledBack,
    /// Executed, and the rollback failed too: a failure; demotes to `manual` at once.
    RollbackFailed,
    /// A dry run: precheck and verify ran, execute did not. Not counted.
    DryRun,
    /// A gate refused to start the fix: nothing ran. Not counted.
    Refused { gate: Gate },
    /// An SRE confirmed the fix was right.
    Correct,
    /// An SRE found the fix was wrong; a P0 misfix demotes to `manual` at once.
    Misfix { severity: Severity },
    /// The fix verified, but its alert kept firing or came back (a repeat before Alertmanager's
    /// `resolved`, no `resolved` within `autonomy.resolve_wait`, or the same alert or target
    /// firing again within `autonomy.recurrence_window`): a failure.
    Recurred,
    /// rootfix itself stopped mid-execute and the restarted one rolled the fix back: not the
    /// action's failure, so it does not count for promotion either way.
    Interrupted,
    /// Not a result but a measurement: the alert resolved after the fix, `ms` after the alert
    /// started (the recovery time of the table in `rootfix stages list`).
    Recovered { ms: u64 },
}

impl OutcomeKind {
    pub fn is_success(self) -> bool {
        matches!(self, OutcomeKind::Succeeded | OutcomeKind::Correct)
    }

    /// Whether the outcome is one of the gate's samples: the fix executed (or an SRE judged one
    /// that did). Aborted, already healthy, dry runs, refusals and interruptions are not.
    pub fn counts(self) -> bool {
        matches!(
            self,
            OutcomeKind::Succeeded
                | OutcomeKind::RolledBack
                | OutcomeKind::RollbackFailed
                | OutcomeKind::Correct
                | OutcomeKind::Misfix { .. }
                | OutcomeKind::Recurred
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Succeeded => "succeeded",
            OutcomeKind::AlreadyHealthy => "already-healthy",
            OutcomeKind::Aborted | OutcomeKind::Failed => "aborted",
            OutcomeKind::RolledBack => "rolled-back",
            OutcomeKind::RollbackFailed => "rollback-failed",
            OutcomeKind::DryRun => "dry-run",
            OutcomeKind::Refused { .. } => "refused",
            OutcomeKind::Correct => "correct",
            OutcomeKind::Misfix { .. } => "misfix",
            OutcomeKind::Recurred => "recurred",
            OutcomeKind::Interrupted => "interrupted",
            OutcomeKind::Recovered { .. } => "recovered",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub at: DateTime<Utc>,
    pub incident: String,
    #[serde(flatten)]
    pub kind: OutcomeKind,
    /// What the fix acted on: its action and rendered params (`action:k=v,...`), for recurrences
    /// of the same target under another alert and the per-target breaker.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(h: i64, incident: &str, kind: OutcomeKind) -> Outcome {
        Outcome {
            at: DateTime::UNIX_EPOCH + chrono::Duration::hours(h),
            incident: incident.into(),
            kind,
            target: None,
        }
    }

    #[test]
    fn outcomes_serialize_flat() {
        let json = serde_json::to_value(o(
            0,
            "i",
            OutcomeKind::Misfix {
                severity: Severity::P0,
            },
        ))
        .unwrap();
        assert_eq!(json["kind"], "misfix");
        assert_eq!(json["severity"], "P0");
        assert_eq!(json["incident"], "i");
        assert!(json.get("target").is_none());
        let refused = serde_json::to_value(o(0, "i", OutcomeKind::Refused { gate: Gate::Budget })).unwrap();
        assert_eq!(
            (refused["kind"].as_str(), refused["gate"].as_str()),
            (Some("refused"), Some("budget"))
        );
        let old: Outcome =
            serde_json::from_str(r#"{"at":"2026-01-01T00:00:00Z","incident":"i","kind":"failed"}"#).unwrap();
        assert!(!old.kind.counts(), "a pre-0.3 precheck abort is not a sample");
    }
}
