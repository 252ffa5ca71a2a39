//! [`PruneStore`] in process: the service's three hashes as Redis holds them (strings of the same
//! format), under one mutex, and the seeds `rootfix simulate --state` plants.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::MemoryStateStore;
use crate::model::playbook::PrunePolicy;
use crate::state::StateError;
use crate::state::keys::{PruneValue, prune_time};
use crate::state::prune::{
    NodeStats, PruneEntry, PruneGate, PruneStore, PruneUpdate, Verdict, prune_expiry_cutoff,
};

pub(super) type Hash = HashMap<String, String>;

impl MemoryStateStore {
    /// Plants a prune, as copied from another store (`rootfix simulate --state`).
    pub fn seed_prune(&self, service: &str, node: &str, value: &PruneValue) {
        let key = self.keys.prune(service);
        let _ = self.with(|h| {
            set(h, &key, node, value.render());
            Ok(())
        });
    }

    /// Plants a miss streak, as copied from another store.
    pub fn seed_streak(&self, service: &str, node: &str, misses: u32) {
        if misses == 0 {
            return;
        }
        let key = self.keys.streak(service);
        let _ = self.with(|h| {
            set(h, &key, node, misses.to_string());
            Ok(())
        });
    }
}

fn incr(hashes: &mut HashMap<String, Hash>, key: &str, field: &str) -> u64 {
    let hash = hashes.entry(key.to_string()).or_default();
    let next = hash.get(field).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) + 1;
    hash.insert(field.to_string(), next.to_string());
    next
}

fn get(hashes: &HashMap<String, Hash>, key: &str, field: &str) -> Option<String> {
    hashes.get(key).and_then(|h| h.get(field)).cloned()
}

fn del(hashes: &mut HashMap<String, Hash>, key: &str, field: &str) -> bool {
    hashes.get_mut(key).is_some_and(|h| h.remove(field).is_some())
}

fn set(hashes: &mut HashMap<String, Hash>, key: &str, field: &str, value: String) {
    hashes
        .entry(key.to_string())
        .or_default()
        .insert(field.to_string(), value);
}

#[async_trait]
impl PruneStore for MemoryStateStore {
    async fn prune_gate(
        &self,
        service: &str,
        node: &str,
        policy: &PrunePolicy,
        now: DateTime<Utc>,
    ) -> Result<PruneGate, StateError> {
        let (prune, streak, stats) = (
            self.keys.prune(service),
            self.keys.streak(service),
            self.keys.stats(service),
        );
        let cutoff = prune_expiry_cutoff(policy, now);
        self.with(|h| {
            let Some(raw) = get(h, &prune, node) else {
                return Ok(PruneGate::Evaluate);
            };
            let value = PruneValue::parse(&raw).ok_or_else(|| StateError::Corrupt {
                key: prune.clone(),
                value: raw.clone(),
            })?;
            if value.pruned_at < cutoff {
                del(h, &prune, node);
                del(h, &streak, node);
                return Ok(PruneGate::Evaluate);
            }
            let skipped = value.skipped + 1;
            if skipped >= policy.reprobe_every {
                set(h, &prune, node, PruneValue { skipped: 0, ..value }.render());
                incr(h, &stats, &format!("{node}:reprobe"));
                Ok(PruneGate::Reprobe)
            } else {
                set(
                    h,
                    &prune,
                    node,
                    PruneValue {
                        skipped,
                        ..value.clone()
                    }
                    .render(),
                );
                incr(h, &stats, &format!("{node}:skip"));
                Ok(PruneGate::Skip {
                    pruned_at: value.pruned_at,
                    skipped,
                })
            }
        })
    }

    async fn record_verdict(
        &self,
        service: &str,
        node: &str,
        verdict: Verdict,
        policy: &PrunePolicy,
        now: DateTime<Utc>,
    ) -> Result<PruneUpdate, StateError> {
        let (prune, streak, stats) = (
            self.keys.prune(service),
            self.keys.streak(service),
            self.keys.stats(service),
        );
        self.with(|h| match verdict {
            Verdict::Hit => {
                del(h, &streak, node);
                let was_pruned = del(h, &prune, node);
                incr(h, &stats, &format!("{node}:hit"));
                Ok(PruneUpdate::Cleared { was_pruned })
            }
            Verdict::Miss => {
                let misses = u32::try_from(incr(h, &streak, node)).unwrap_or(u32::MAX);
                incr(h, &stats, &format!("{node}:miss"));
                if misses >= policy.after && get(h, &prune, node).is_none() {
                    let value = PruneValue {
                        pruned_at: prune_time(now),
                        skipped: 0,
                    };
                    set(h, &prune, node, value.render());
                    Ok(PruneUpdate::Pruned { misses })
                } else {
                    Ok(PruneUpdate::Streak { misses })
                }
            }
        })
    }

    async fn pruned_nodes(&self, service: &str) -> Result<Vec<PruneEntry>, StateError> {
        let prune = self.keys.prune(service);
        self.with(|h| {
            let mut entries = Vec::new();
            for (node, raw) in h.get(&prune).into_iter().flatten() {
                let value = PruneValue::parse(raw).ok_or_else(|| StateError::Corrupt {
                    key: prune.clone(),
                    value: raw.clone(),
                })?;
                entries.push(PruneEntry {
                    node: node.clone(),
                    value,
                });
            }
            entries.sort_by(|a, b| a.node.cmp(&b.node));
            Ok(entries)
        })
    }

    async fn clear_prune(&self, service: &str, node: &str) -> Result<bool, StateError> {
        let (prune, streak) = (self.keys.prune(service), self.keys.streak(service));
        self.with(|h| {
            del(h, &streak, node);
            Ok(del(h, &prune, node))
        })
    }

    async fn miss_streak(&self, service: &str, node: &str) -> Result<u32, StateError> {
        let streak = self.keys.streak(service);
        self.with(|h| Ok(get(h, &streak, node).and_then(|v| v.parse().ok()).unwrap_or(0)))
    }

    async fn node_stats(&self, service: &str, node: &str) -> Result<NodeStats, StateError> {
        let stats = self.keys.stats(service);
        self.with(|h| {
            let count = |kind: &str| {
                get(h, &stats, &format!("{node}:{kind}"))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            Ok(NodeStats {
                hits: count("hit"),
                misses: count("miss"),
                skips: count("skip"),
                reprobes: count("reprobe"),
            })
        })
    }
}
