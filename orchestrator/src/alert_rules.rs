//! The rules that order an alert's notifications by the alert's own times, so incidents follow
//! the alert's real lifecycle even when two Alertmanagers of an HA pair send the same alert a
//! little apart, or one of them sends what it saw before its peer's news arrived:
//!
//! - a `resolved` closes the open incident only if its `endsAt` is not older than the `startsAt`
//!   of the firing the incident holds (an older resolve belongs to an earlier episode);
//! - a firing whose `endsAt` is already past, or whose `startsAt` is not newer than the `endsAt`
//!   of the fingerprint's last resolve, reopens nothing (a late copy of an old notification);
//! - a firing that starts within `limits.flap_window` of the last resolve rejoins that incident
//!   (a flap) instead of opening a new one;
//! - an open incident whose alert was not seen for `limits.stale_after` is closed as `stale`.
//!
//! Pure functions over the alert and the stored incidents; the handler and the leader apply them.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::alert::Alert;
use crate::incident::{Incident, IncidentState};

/// The `limits:` keys of the alert lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertRules {
    /// A firing this soon after its last resolve rejoins that incident.
    pub flap_window: Duration,
    /// Above this many flaps an incident's fix is not started automatically: a human approves.
    pub max_flaps: u32,
    /// An open incident whose alert was not seen this long is closed as `stale`.
    pub stale_after: Duration,
}

impl Default for AlertRules {
    fn default() -> Self {
        Self {
            flap_window: Duration::from_secs(15 * 60),
            max_flaps: 3,
            // Three times Alertmanager's default `repeat_interval` (4h): a firing alert is
            // re-sent at least every 4h, so 12h without one means its `resolved` was lost.
            stale_after: Duration::from_secs(12 * 3600),
        }
    }
}

/// What to do with a firing that found no open incident for its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FiringVerdict {
    /// Open a new incident.
    Open,
    /// Rejoin the fingerprint's last incident: the alert flapped.
    Rejoin,
    /// Ignore it, for the reason given (it is recorded on the last incident's timeline).
    Ignore(String),
}

impl AlertRules {
    /// Whether a firing is already over by its own `endsAt` (a late copy of an old notification).
    pub fn firing_is_over(&self, alert: &Alert, now: DateTime<Utc>) -> Option<String> {
        let ends = alert.ended_at()?;
        (ends < now).then(|| {
            format!(
                "ignored a firing whose endsAt {} is already past (a late notification)",
                ends.to_rfc3339()
            )
        })
    }

    /// A firing with no open incident, against the fingerprint's last closed incident.
    pub fn firing_after(&self, alert: &Alert, last: Option<&Incident>) -> FiringVerdict {
        let Some(last) = last else {
            return FiringVerdict::Open;
        };
        // Only an incident closed by a real `resolved` says when the alert ended.
        let resolved_end = match last.state {
            IncidentState::Resolved => last.alert.ended_at().or(last.resolved_at),
            _ => None,
        };
        let Some(end) = resolved_end else {
            return FiringVerdict::Open;
        };
        if alert.starts_at <= end {
            return FiringVerdict::Ignore(format!(
                "ignored a firing that started at {}, not after the resolve at {}: a late copy of \
                 an earlier notification (e.g. from the other Alertmanager of an HA pair)",
                alert.starts_at.to_rfc3339(),
                end.to_rfc3339()
            ));
        }
        let gap = (alert.starts_at - end).to_std().unwrap_or_default();
        if gap <= self.flap_window {
            FiringVerdict::Rejoin
        } else {
            FiringVerdict::Open
        }
    }

    /// Why a `resolved` must not close `incident` (its end is older than the firing it holds).
    pub fn resolved_is_older(&self, alert: &Alert, incident: &Incident) -> Option<String> {
        let end = alert.ended_at()?;
        (end < incident.alert.starts_at).then(|| {
            format!(
                "ignored a resolve that ended at {}, before the firing this incident holds \
                 started ({}): a late copy of an earlier episode's resolve",
                end.to_rfc3339(),
                incident.alert.starts_at.to_rfc3339()
            )
        })
    }

    /// Whether an open incident's alert has not been seen for longer than `stale_after`.
    pub fn is_stale(&self, incident: &Incident, now: DateTime<Utc>) -> bool {
        let unseen = (now - incident.last_seen()).to_std().unwrap_or_default();
        incident.state.is_open() && incident.state != IncidentState::Fixing && unseen > self.stale_after
    }

    /// Whether an incident flapped more often than automatic fixing allows.
    pub fn is_flapping(&self, incident: &Incident) -> bool {
        incident.flaps > self.max_flaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertStatus;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn alert(status: AlertStatus, starts: &str, ends: Option<&str>) -> Alert {
        Alert {
            status,
            labels: Default::default(),
            annotations: Default::default(),
            starts_at: t(starts),
            ends_at: ends.map_or(DateTime::<Utc>::MIN_UTC, t),
            generator_url: String::new(),
            fingerprint: "f".into(),
        }
    }

    fn resolved_incident(starts: &str, ends: &str) -> Incident {
        let a = alert(AlertStatus::Resolved, starts, Some(ends));
        let mut i = crate::incident::tests::sample();
        i.state = IncidentState::Resolved;
        i.alert = a;
        i
    }

    #[test]
    fn a_firing_older_than_the_last_resolve_is_ignored_and_a_newer_one_flaps_or_opens() {
        let rules = AlertRules::default();
        let last = resolved_incident("2026-12-01T10:00:00Z", "2026-12-01T10:10:00Z");
        let late = alert(AlertStatus::Firing, "2026-12-01T10:00:00Z", None);
        assert!(matches!(
            rules.firing_after(&late, Some(&last)),
            FiringVerdict::Ignore(_)
        ));
        let flap = alert(AlertStatus::Firing, "2026-12-01T10:12:00Z", None);
        assert_eq!(rules.firing_after(&flap, Some(&last)), FiringVerdict::Rejoin);
        let later = alert(AlertStatus::Firing, "2026-12-01T11:00:00Z", None);
        assert_eq!(rules.firing_after(&later, Some(&last)), FiringVerdict::Open);
        assert_eq!(rules.firing_after(&later, None), FiringVerdict::Open);
    }

    #[test]
    fn a_resolve_older_than_the_held_firing_is_ignored() {
        let rules = AlertRules::default();
        let mut open = crate::incident::tests::sample();
        open.alert = alert(AlertStatus::Firing, "2026-12-01T10:05:00Z", None);
        let old = alert(
            AlertStatus::Resolved,
            "2026-12-01T10:00:00Z",
            Some("2026-12-01T10:01:00Z"),
        );
        assert!(rules.resolved_is_older(&old, &open).is_some());
        let new = alert(
            AlertStatus::Resolved,
            "2026-12-01T10:05:00Z",
            Some("2026-12-01T10:09:00Z"),
        );
        assert!(rules.resolved_is_older(&new, &open).is_none());
    }

    #[test]
    fn a_firing_past_its_ends_at_is_over() {
        let rules = AlertRules::default();
        let now = t("2026-12-01T10:10:00Z");
        let over = alert(
            AlertStatus::Firing,
            "2026-12-01T10:00:00Z",
            Some("2026-12-01T10:05:00Z"),
        );
        assert!(rules.firing_is_over(&over, now).is_some());
        let live = alert(AlertStatus::Firing, "2026-12-01T10:00:00Z", None);
        assert!(rules.firing_is_over(&live, now).is_none());
    }

    #[test]
    fn an_incident_unseen_past_stale_after_is_stale_unless_a_fix_runs() {
        let rules = AlertRules {
            stale_after: Duration::from_secs(60),
            ..AlertRules::default()
        };
        let mut i = crate::incident::tests::sample();
        i.state = IncidentState::Open;
        i.last_seen = Some(t("2026-12-01T10:00:00Z"));
        assert!(!rules.is_stale(&i, t("2026-12-01T10:00:59Z")));
        assert!(rules.is_stale(&i, t("2026-12-01T10:01:01Z")));
        i.state = IncidentState::Fixing;
        assert!(!rules.is_stale(&i, t("2026-12-01T10:01:01Z")));
    }
}
