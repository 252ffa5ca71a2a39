//! Where `serve` is in its start-up ([`Phase`]: waiting for Redis, recovering the previous run's
//! fixes, starting the event loop, serving, shutting down) and the event loop's [`ReadProbe`]:
//! together what `/readyz` answers beyond Redis's PING and the catalog. The port opens before
//! any of it, so `/healthz` answers from the first moment and `/readyz` says what it waits for.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::events::probe::{ReadProbe, ReadReport};

/// The start-up phase, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "phase")]
pub enum Phase {
    /// Connecting to Redis (rootfix takes no action without its state).
    WaitingForRedis {
        url: String,
        error: Option<String>,
    },
    /// Finishing the fixes the previous run left unfinished, from their journal.
    Recovering {
        fixes: usize,
    },
    /// Creating the consumer group and starting to read the alert stream.
    StartingEventLoop,
    Serving,
    ShuttingDown,
}

impl Phase {
    /// Why this phase is not ready, or `None` when serving.
    pub fn not_ready_because(&self) -> Option<String> {
        match self {
            Phase::WaitingForRedis { url, error: None } => Some(format!("waiting for Redis at {url}")),
            Phase::WaitingForRedis {
                url,
                error: Some(error),
            } => Some(format!("waiting for Redis at {url}: {error}")),
            Phase::Recovering { fixes } => Some(format!(
                "recovering {fixes} unfinished fix{} from the journal",
                if *fixes == 1 { "" } else { "es" }
            )),
            Phase::StartingEventLoop => Some("starting the event loop".to_string()),
            Phase::Serving => None,
            Phase::ShuttingDown => Some("shutting down".to_string()),
        }
    }
}

/// Shared by `serve` (which moves the phase on), the event loop (its probe) and `/readyz`.
#[derive(Debug)]
pub struct Readiness {
    phase: Mutex<Phase>,
    /// The event loop of this process, when it runs one.
    events: Option<Arc<ReadProbe>>,
}

impl Readiness {
    /// A process that starts up: waiting for Redis at `url`, with the event loop's probe.
    pub fn starting(url: &str, events: Arc<ReadProbe>) -> Self {
        Self {
            phase: Mutex::new(Phase::WaitingForRedis {
                url: redacted(url),
                error: None,
            }),
            events: Some(events),
        }
    }

    /// Serving from the start, without an event loop (tests and benches that only serve HTTP).
    pub fn serving() -> Self {
        Self {
            phase: Mutex::new(Phase::Serving),
            events: None,
        }
    }

    pub fn set(&self, phase: Phase) {
        if let Ok(mut p) = self.phase.lock() {
            *p = phase;
        }
    }

    /// Records why Redis could not be reached yet (while waiting for it).
    pub fn redis_error(&self, error: String) {
        if let Ok(mut p) = self.phase.lock()
            && let Phase::WaitingForRedis { error: e, .. } = &mut *p
        {
            *e = Some(error);
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
            .lock()
            .map(|p| p.clone())
            .unwrap_or(Phase::ShuttingDown)
    }

    pub fn events(&self) -> Option<ReadReport> {
        self.events.as_ref().map(|p| p.report())
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Self::serving()
    }
}

/// A Redis URL without its password (`redis://user:secret@host` → `redis://user:***@host`).
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_phase_says_what_it_waits_for() {
        let r = Readiness::starting("redis://:hunter2@127.0.0.1:6379/", Arc::default());
        let why = r.phase().not_ready_because().unwrap_or_default();
        assert!(why.starts_with("waiting for Redis at"), "{why}");
        assert!(!why.contains("hunter2"), "the password is not shown: {why}");
        r.redis_error("connection refused".into());
        assert!(
            r.phase()
                .not_ready_because()
                .unwrap_or_default()
                .ends_with(": connection refused")
        );
        r.set(Phase::Recovering { fixes: 2 });
        assert_eq!(
            r.phase().not_ready_because().as_deref(),
            Some("recovering 2 unfinished fixes from the journal")
        );
        r.set(Phase::Serving);
        assert_eq!(r.phase().not_ready_because(), None);
    }
}
