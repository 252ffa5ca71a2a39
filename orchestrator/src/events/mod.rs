//! The event loop: reads `rootfix:alerts` through the consumer group and hands each entry to the
//! [`handler::IncidentHandler`], acknowledging it only once the handling is durable.
//!
//! - At start, the consumer's own pending entries (left by a crash of this replica) are handled
//!   first; then new entries; and periodically entries any consumer left pending longer than
//!   `claim_idle` are claimed (XAUTOCLAIM): at-least-once, never lost.
//! - Work runs on `workers` queues; an entry goes to the queue of its fingerprint, so the alerts
//!   of one incident are handled in order while different incidents proceed concurrently.
//! - On shutdown the loop stops reading; each worker finishes the entry in hand and stops. What was
//!   read but not handled stays pending and is handled first at the next start.
//! - Every read reports to the [`probe::ReadProbe`] (`/readyz`: ready only while reads succeed).

pub mod handler;
pub mod probe;

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use crate::state::{StateStore, StreamEntry};
use handler::{HandleError, IncidentHandler};

pub struct EventLoop {
    pub state: Arc<dyn StateStore>,
    pub handler: Arc<IncidentHandler>,
    pub consumer: String,
    pub workers: usize,
    pub claim_idle: Duration,
    /// What `/readyz` reads of this loop: its last successful read and the error it fails on.
    pub probe: Arc<probe::ReadProbe>,
}

/// Entries read or claimed and not yet finished, so a claim never doubles one in hand.
type InFlight = Arc<Mutex<HashSet<String>>>;

impl EventLoop {
    /// Runs until `shutdown` becomes true, then drains the workers.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let in_flight: InFlight = Arc::default();
        let mut queues = Vec::with_capacity(self.workers);
        let mut tasks = Vec::with_capacity(self.workers);
        for i in 0..self.workers.max(1) {
            // A short queue per worker: reading waits for room instead of piling up entries.
            let (tx, rx) = mpsc::channel::<StreamEntry>(16);
            queues.push(tx);
            tasks.push(tokio::spawn(worker(
                i,
                rx,
                self.handler.clone(),
                self.state.clone(),
                in_flight.clone(),
                shutdown.clone(),
            )));
        }

        // The group may not exist yet, and Redis may not be up yet: retry until it is.
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.state.ensure_consumer_group().await {
                Ok(()) => break,
                Err(e) => {
                    warn!(error = %e, "cannot create the consumer group; retrying");
                    self.probe.read_failed(&e.to_string());
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return drain(queues, tasks).await,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        info!(consumer = %self.consumer, workers = self.workers, "event loop started");
        self.probe.started();

        // Own pending entries first: what this consumer read before a crash. Then new entries,
        // with a claim of stale entries whenever one is due. A read is never cancelled once sent:
        // Redis would deliver entries to it that nobody then handles (until a claim). So shutdown
        // is checked between reads, which block for at most a second.
        let mut catching_up = true;
        let mut cursor = "0".to_string();
        let claim_every = (self.claim_idle / 2).max(Duration::from_millis(100));
        let mut next_claim = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(100);
        while !*shutdown.borrow() {
            let batch = if catching_up {
                self.state.own_pending_alerts(&self.consumer, &cursor, 64).await
            } else if tokio::time::Instant::now() >= next_claim {
                next_claim = tokio::time::Instant::now() + claim_every;
                self.state
                    .claim_stale_alerts(&self.consumer, self.claim_idle, 64)
                    .await
            } else {
                self.state
                    .read_alerts(&self.consumer, 64, Duration::from_secs(1))
                    .await
            };
            let batch = match batch {
                Ok(b) => {
                    backoff = Duration::from_millis(100);
                    self.probe.read_ok();
                    b
                }
                Err(e) => {
                    error!(error = %e, "reading the alert stream failed; retrying");
                    self.probe.read_failed(&e.to_string());
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if catching_up {
                match batch.last() {
                    Some(last) => cursor = last.id.clone(),
                    None => {
                        catching_up = false;
                        continue;
                    }
                }
            }
            for entry in batch {
                let fresh = in_flight
                    .lock()
                    .map(|mut s| s.insert(entry.id.clone()))
                    .unwrap_or(false);
                if !fresh {
                    continue;
                }
                let queue = &queues[shard(&entry, queues.len())];
                let entry = match queue.try_send(entry) {
                    Ok(()) => continue,
                    Err(mpsc::error::TrySendError::Full(entry)) => entry,
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        error!("a worker stopped unexpectedly");
                        continue;
                    }
                };
                // The worker's queue is full: wait for room (a backlog, not a stuck loop).
                self.probe.dispatching(true);
                if queue.send(entry).await.is_err() {
                    error!("a worker stopped unexpectedly");
                }
                self.probe.dispatching(false);
            }
        }
        self.probe.stopped();
        info!("event loop stopping: finishing the entries in hand");
        drain(queues, tasks).await;
    }
}

async fn drain(queues: Vec<mpsc::Sender<StreamEntry>>, tasks: Vec<tokio::task::JoinHandle<()>>) {
    drop(queues);
    for t in tasks {
        let _ = t.await;
    }
}

/// The queue an entry goes to: by fingerprint, so one incident's alerts stay in order.
fn shard(entry: &StreamEntry, n: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    match &entry.alert {
        Ok(a) => a.fingerprint.hash(&mut hasher),
        Err(_) => entry.id.hash(&mut hasher),
    }
    (hasher.finish() % n as u64) as usize
}

async fn worker(
    index: usize,
    mut rx: mpsc::Receiver<StreamEntry>,
    handler: Arc<IncidentHandler>,
    state: Arc<dyn StateStore>,
    in_flight: InFlight,
    shutdown: watch::Receiver<bool>,
) {
    while let Some(entry) = rx.recv().await {
        if *shutdown.borrow() {
            // Shutting down: leave what is queued pending; the next start handles it first.
            break;
        }
        let id = entry.id.clone();
        match handler.handle(entry).await {
            Ok(outcome) => {
                debug!(worker = index, entry = %id, ?outcome, "handled");
                match state.ack_alert(&id).await {
                    Ok(()) => handler.metrics.alert_handled(),
                    Err(e) => {
                        warn!(entry = %id, error = %e, "handled but not acknowledged; it will be redelivered and recognised")
                    }
                }
            }
            Err(HandleError::State(e)) => {
                warn!(entry = %id, error = %e, "state unavailable; the entry stays pending and will be retried");
            }
            Err(e) => warn!(entry = %id, error = %e, "not handled; the entry stays pending"),
        }
        if let Ok(mut s) = in_flight.lock() {
            s.remove(&id);
        }
    }
}
