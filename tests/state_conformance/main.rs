//! One conformance suite for every `StateStore`: each case runs against the in-process store and
//! against a real redis-server on 127.0.0.1 (scripts/test-all.sh starts it). The Redis cases fail,
//! never skip, when Redis is not there.
//!
//! One part per area of the store, each a module beside this file (`prune`, `stream`, `incidents`,
//! `fixes`, `audit`, `autonomy`, `slots`, `leader`); its cases run as `<area>::memory::<case>` and
//! `<area>::redis::<case>`. This file holds what the parts share: the pair of stores, the fixed
//! time, the records they build, and the `conformance!` macro.

#[path = "../support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rootfix::incident::{Incident, IncidentState};
use rootfix::model::playbook::PrunePolicy;
use rootfix::state::StateError;
use rootfix::state::prelude::*;

/// Two handles on one store, as two rootfix replicas would have.
type Pair = (Arc<dyn StateStore>, Arc<dyn StateStore>);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap()
}

fn policy() -> PrunePolicy {
    PrunePolicy {
        after: 3,
        reprobe_every: 4,
        ttl: Duration::from_secs(3600),
    }
}

fn alert(fingerprint: &str, name: &str) -> rootfix::alert::Alert {
    let mut a = (*support::fixture_alert("order-service-timeout.firing")).clone();
    a.fingerprint = fingerprint.to_string();
    a.labels.insert("alertname".into(), name.into());
    a
}

fn incident(id: &str, fingerprint: &str, state: IncidentState, minute: u32) -> Incident {
    let at = Utc.with_ymd_and_hms(2026, 11, 25, 10, minute, 0).unwrap();
    Incident {
        id: id.to_string(),
        fingerprint: fingerprint.to_string(),
        state,
        alertname: "OrderServiceTimeout".into(),
        service: Some(if minute.is_multiple_of(2) {
            "order".into()
        } else {
            "payment".into()
        }),
        playbook: Some("order-service-timeout".into()),
        alert: alert(fingerprint, "OrderServiceTimeout"),
        created_at: at,
        updated_at: at,
        resolved_at: None,
        firings: 1,
        created_by_entry: format!("{minute}-0"),
        applied_entries: vec![format!("{minute}-0")],
        diagnosis: None,
        timeline: Vec::new(),
        fix: None,
        last_seen: None,
        flaps: 0,
        version: 0,
    }
}

/// Runs each named case of an area against both stores: `memory::<case>` and `redis::<case>`.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let store: Arc<dyn StateStore> = Arc::new(rootfix::state::memory::MemoryStateStore::new());
                    super::$case((store.clone(), store)).await;
                }
            )*
        }
        mod redis {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let prefix = support::unique_prefix(stringify!($case));
                    let url = support::redis_url();
                    let connect = || async {
                        rootfix::state::redis::RedisStateStore::connect(&url, &prefix)
                            .await
                            .unwrap_or_else(|e| panic!("Redis at {url} is required (scripts/test-all.sh starts it): {e}"))
                    };
                    // Two connections with one prefix: two replicas on one Redis.
                    let a: Arc<dyn StateStore> = Arc::new(connect().await);
                    let b: Arc<dyn StateStore> = Arc::new(connect().await);
                    super::$case((a, b)).await;
                }
            )*
        }
    };
}

mod audit;
mod autonomy;
mod fixes;
mod incidents;
mod leader;
mod prune;
mod slots;
mod stream;

#[tokio::test]
async fn an_unreachable_redis_is_an_error_not_a_hang() {
    let started = std::time::Instant::now();
    let result = rootfix::state::redis::RedisStateStore::connect("redis://127.0.0.1:1/", "x:").await;
    assert!(matches!(result, Err(StateError::Unavailable(_))));
    assert!(started.elapsed() < Duration::from_secs(10));
}
