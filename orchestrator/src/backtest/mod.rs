//! Backtesting: recorded incidents replayed under candidate playbooks, and what they would have
//! decided differently.
//!
//! Every diagnosis keeps what a replay needs: the evidence each signal gave (value or error,
//! with the definition it was read under), diagnostic outputs, the nodes the walk found pruned,
//! the alert's annotations and the instant evidence was read at, the playbook's content hash;
//! the incident keeps the fix's outcome and the SRE's verdict. A backtest re-walks each record
//! with the same [`crate::engine::Walker`] over that evidence ([`replay`]), compares the old and
//! new decision ([`compare`]) and prints the changes and a summary ([`report`]); [`corpus`] reads
//! the records (the API's export, or retention's export file).
//!
//! Nothing here writes state or runs an action: the prune state is the record's (or ignored),
//! diagnostic actions are never run, and the only I/O is the optional `--fetch-missing`
//! provider, which reads signals the record lacks from Prometheus or Loki at the record's time.

pub mod compare;
pub mod corpus;
pub mod replay;
pub mod report;

pub use compare::{Change, Known, Replayed, Summary, VerdictEffect};
pub use replay::{PruneMode, ReplayOptions, Replayer};

use crate::incident::Incident;

/// Replays every incident, oldest evidence first, a few at a time (only `--fetch-missing` waits
/// on anything).
pub async fn replay_all(replayer: &Replayer, mut incidents: Vec<Incident>) -> Vec<Replayed> {
    use futures::StreamExt;
    incidents.sort_by(|a, b| {
        let at = |i: &Incident| i.diagnosis.as_ref().map_or(i.alert.starts_at, |d| d.evidence_at);
        at(a).cmp(&at(b)).then_with(|| a.id.cmp(&b.id))
    });
    futures::stream::iter(incidents.iter())
        .map(|incident| async move {
            let rewalk = replayer.rewalk(incident).await;
            Replayed::compare(incident, &rewalk)
        })
        .buffered(16)
        .collect()
        .await
}

#[cfg(test)]
mod tests;
