//! What the pages say about an incident's fix: where it stands ([`fix_status`]), an SRE's verdict
//! in a line, how long the fix and the whole incident took, and whether it can take a verdict now.

use std::fmt::Write as _;

use super::values::time;
use crate::fix::journal::{FixOutcome, JournalEntry, JournalEvent};
use crate::incident::{Incident, IncidentFix, IncidentState, Verdict, seconds};

/// What became of a fix: its outcome, which gate refused it and why, or where it stands.
pub(super) fn fix_status(i: &Incident, f: &IncidentFix) -> String {
    match &f.outcome {
        Some(outcome) => outcome.to_string(),
        None => f.refusal().unwrap_or_else(|| {
            match i.state {
                IncidentState::AwaitingApproval => "waits for approval",
                IncidentState::Fixing => "running",
                _ => "not run",
            }
            .into()
        }),
    }
}

/// An SRE's verdict in a line: `misfix (P2) by alice at …: comment`.
pub(super) fn verdict_text(v: &Verdict) -> String {
    format!(
        "{}{} by {} at {}{}",
        if v.correct { "correct" } else { "misfix" },
        v.severity.map_or(String::new(), |s| format!(" ({})", s.as_str())),
        v.by,
        time(v.at),
        if v.comment.is_empty() {
            String::new()
        } else {
            format!(": {}", v.comment)
        }
    )
}

/// How long the incident's (last) fix ran: from its `fix started` to its `fix finished`.
pub fn fix_duration(journal: &[JournalEntry]) -> Option<chrono::TimeDelta> {
    let finished = journal
        .iter()
        .rev()
        .find(|e| matches!(e.event, JournalEvent::FixFinished { .. }))?;
    let started = journal
        .iter()
        .find(|e| e.fix == finished.fix && matches!(e.event, JournalEvent::FixStarted { .. }))?;
    let took = finished.at - started.at;
    (took >= chrono::TimeDelta::zero()).then_some(took)
}

/// "resolved 23.4s after the alert started (the fix took 3.1s)", once resolved.
pub fn resolve_text(i: &Incident, journal: &[JournalEntry]) -> Option<String> {
    let took = i.time_to_resolve()?;
    let mut text = format!("resolved {} after the alert started", seconds(took));
    if let Some(fix) = fix_duration(journal) {
        let _ = write!(text, " (the fix took {})", seconds(fix));
    }
    Some(text)
}

/// Whether an incident's fix can take an SRE's verdict now: as `Autonomy::confirm` decides (a
/// fix that ran and changed something, with no verdict yet; a second one is a 409).
pub fn can_confirm(i: &Incident) -> bool {
    i.fix
        .as_ref()
        .is_some_and(|f| f.verdict.is_none() && f.outcome.as_ref().is_some_and(FixOutcome::executed))
}

#[cfg(test)]
pub(super) mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn entry(fix: &str, secs: i64, event: JournalEvent) -> JournalEntry {
        JournalEntry {
            fix: fix.into(),
            at: DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::milliseconds(secs),
            step: None,
            event,
        }
    }

    fn started() -> JournalEvent {
        JournalEvent::FixStarted {
            params: Default::default(),
            fencing_token: 1,
            steps: Vec::new(),
            waves: Vec::new(),
        }
    }

    fn finished() -> JournalEvent {
        JournalEvent::FixFinished {
            outcome: FixOutcome::Succeeded,
        }
    }
    pub(in crate::server::ui::render) fn ran(verdict: Option<Verdict>) -> Incident {
        let alert = crate::alert::Alert {
            status: crate::alert::AlertStatus::Firing,
            labels: Default::default(),
            annotations: Default::default(),
            starts_at: DateTime::<Utc>::UNIX_EPOCH,
            ends_at: DateTime::<Utc>::UNIX_EPOCH,
            generator_url: String::new(),
            fingerprint: "f".into(),
        };
        Incident {
            id: "inc-1".into(),
            fingerprint: "f".into(),
            state: IncidentState::Open,
            alertname: "A".into(),
            service: None,
            playbook: None,
            alert,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            resolved_at: None,
            firings: 1,
            created_by_entry: "1-0".into(),
            applied_entries: vec![],
            diagnosis: None,
            timeline: vec![],
            fix: Some(IncidentFix {
                action: "restart".into(),
                node: "n".into(),
                params: Default::default(),
                steps: Vec::new(),
                waves: Vec::new(),
                confidence: 0.9,
                scope: Some("staging".into()),
                stage: None,
                approval: None,
                refused: None,
                gate: None,
                dry_run: false,
                outcome: Some(FixOutcome::RolledBack("verify failed".into())),
                verdict,
                silence: None,
            }),
            last_seen: None,
            flaps: 0,
            version: 0,
        }
    }

    #[test]
    fn the_fix_duration_is_the_last_fix_from_start_to_finish() {
        assert_eq!(fix_duration(&[]), None);
        assert_eq!(fix_duration(&[entry("i/a", 0, started())]), None, "still running");
        let journal = [
            entry("i/a", 0, started()),
            entry("i/a", 1_000, finished()),
            entry("i/b", 5_000, started()),
            entry("i/b", 8_100, finished()),
        ];
        assert_eq!(fix_duration(&journal).map(|d| d.num_milliseconds()), Some(3_100));
    }

    #[test]
    fn a_resolved_incident_says_how_long_it_took() {
        let mut i = ran(None);
        assert_eq!(resolve_text(&i, &[]), None);
        i.resolved_at = Some(DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::milliseconds(23_400));
        assert_eq!(
            resolve_text(&i, &[]).as_deref(),
            Some("resolved 23.4s after the alert started")
        );
        let journal = [
            entry("inc-1/restart", 0, started()),
            entry("inc-1/restart", 3_100, finished()),
        ];
        assert_eq!(
            resolve_text(&i, &journal).as_deref(),
            Some("resolved 23.4s after the alert started (the fix took 3.1s)")
        );
    }
}
