//! The outcome record: how one fix of an (action, scope) ended, or what an SRE's confirmation
//! said of it (`correct`, or `misfix` with a severity), as kept in `rootfix:outcomes:<action>:<scope>`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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

/// What an outcome says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum OutcomeKind {
    /// Executed and verified (or the precheck found the target healthy).
    Succeeded,
    /// Aborted by its precheck, or executed and rolled back.
    Failed,
    RolledBack,
    /// Rollback failed: demotes to `manual` at once.
    RollbackFailed,
    /// An SRE confirmed the fix was right.
    Correct,
    /// An SRE found the fix was wrong; a P0 misfix demotes to `manual` at once.
    Misfix {
        severity: Severity,
    },
    /// The fix verified, but its alert kept firing or came back (a repeat before Alertmanager's
    /// `resolved`, no `resolved` within `autonomy.resolve_wait`, or a flap back): a failure.
    Recurred,
    /// rootfix itself stopped mid-execute and the restarted one rolled the fix back: not the
    /// action's failure, so it does not count for promotion either way.
    Interrupted,
}

impl OutcomeKind {
    pub fn is_success(self) -> bool {
        matches!(self, OutcomeKind::Succeeded | OutcomeKind::Correct)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Succeeded => "succeeded",
            OutcomeKind::Failed => "failed",
            OutcomeKind::RolledBack => "rolled-back",
            OutcomeKind::RollbackFailed => "rollback-failed",
            OutcomeKind::Correct => "correct",
            OutcomeKind::Misfix { .. } => "misfix",
            OutcomeKind::Recurred => "recurred",
            OutcomeKind::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub at: DateTime<Utc>,
    pub incident: String,
    #[serde(flatten)]
    pub kind: OutcomeKind,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(h: i64, incident: &str, kind: OutcomeKind) -> Outcome {
        Outcome {
            at: DateTime::UNIX_EPOCH + chrono::Duration::hours(h),
            incident: incident.into(),
            kind,
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
    }
}
