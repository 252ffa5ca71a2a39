//! [`ReadProbe`]: whether the event loop is actually reading the alert stream — its last
//! successful read, and the error it is failing on — so `/readyz` answers ready only when alerts
//! that are stored also get handled, not merely when Redis answers a PING.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

/// A read loop that has not completed a read for this long is reported stuck (a read blocks for
/// at most a second; a claim or a page of own pending entries takes a round trip).
pub const STUCK_AFTER: Duration = Duration::from_secs(30);

/// Written by the event loop, read by `/readyz`.
#[derive(Debug, Default)]
pub struct ReadProbe {
    inner: Mutex<ProbeState>,
}

#[derive(Debug, Default, Clone)]
struct ProbeState {
    /// The consumer group exists and the loop reads.
    started: bool,
    stopped: bool,
    last_ok: Option<(Instant, DateTime<Utc>)>,
    /// Since when reads fail, and the latest error.
    failing: Option<(DateTime<Utc>, String)>,
    /// Waiting for room on a worker's queue: the loop is busy, not stuck.
    dispatching: bool,
}

/// What `/readyz` shows of the event loop.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReadReport {
    pub reading: bool,
    /// Why it is not reading, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub last_read_at: Option<DateTime<Utc>>,
    pub seconds_since_last_read: Option<f64>,
    /// Every worker is busy and the loop waits for room (a backlog, not a fault).
    pub workers_busy: bool,
}

impl ReadProbe {
    pub fn started(&self) {
        self.update(|s| s.started = true);
    }

    pub fn stopped(&self) {
        self.update(|s| s.stopped = true);
    }

    pub fn read_ok(&self) {
        self.update(|s| {
            s.last_ok = Some((Instant::now(), Utc::now()));
            s.failing = None;
        });
    }

    pub fn read_failed(&self, error: &str) {
        self.update(|s| {
            let since = s.failing.as_ref().map_or_else(Utc::now, |(since, _)| *since);
            s.failing = Some((since, error.to_string()));
        });
    }

    pub fn dispatching(&self, busy: bool) {
        self.update(|s| s.dispatching = busy);
    }

    fn update(&self, f: impl FnOnce(&mut ProbeState)) {
        if let Ok(mut s) = self.inner.lock() {
            f(&mut s);
        }
    }

    pub fn report(&self) -> ReadReport {
        let s = self.inner.lock().map(|s| s.clone()).unwrap_or_default();
        let since = s.last_ok.map(|(at, _)| at.elapsed());
        let reason = if s.stopped {
            Some("the event loop has stopped".to_string())
        } else if !s.started {
            Some("the event loop has not started reading yet".to_string())
        } else if let Some((since, error)) = &s.failing {
            Some(format!(
                "the event loop cannot read the alert stream since {}: {error}",
                since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ))
        } else if !s.dispatching && since.is_none_or(|d| d > STUCK_AFTER) {
            Some(format!(
                "the event loop has not completed a read for more than {}s",
                STUCK_AFTER.as_secs()
            ))
        } else {
            None
        };
        ReadReport {
            reading: reason.is_none(),
            reason,
            last_read_at: s.last_ok.map(|(_, at)| at),
            seconds_since_last_read: since.map(|d| (d.as_secs_f64() * 10.0).round() / 10.0),
            workers_busy: s.dispatching,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_while_reads_succeed() {
        let probe = ReadProbe::default();
        assert!(!probe.report().reading, "not started");
        probe.started();
        probe.read_ok();
        assert!(probe.report().reading);
        probe.read_failed("NOGROUP gone");
        let report = probe.report();
        assert!(!report.reading);
        assert!(report.reason.unwrap_or_default().contains("NOGROUP gone"));
        assert!(report.last_read_at.is_some(), "the last good read is still shown");
        probe.read_ok();
        assert!(probe.report().reading);
        probe.stopped();
        assert!(!probe.report().reading);
    }

    #[test]
    fn a_started_loop_without_any_read_is_not_reading() {
        let probe = ReadProbe::default();
        probe.started();
        assert!(!probe.report().reading);
        // Busy handing entries to workers is a backlog, not a stuck loop.
        probe.dispatching(true);
        assert!(probe.report().reading);
        assert!(probe.report().workers_busy);
    }
}
