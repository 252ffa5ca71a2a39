//! Fixes ([`FixStore`](rootfix::state::FixStore)): target locks with fencing tokens and leases,
//! the journal in order, the active fixes.

use std::collections::BTreeMap;

use rootfix::fix::journal::{FixOutcome, JournalEntry, JournalEvent};
use rootfix::model::action::PhaseName;

use super::*;

async fn locks_fence_and_only_their_holder_renews_or_releases((a, b): Pair) {
    let lease = Duration::from_secs(10);
    let first = a.acquire_lock("restart", "web-1", lease).await.unwrap().unwrap();
    assert_eq!(b.acquire_lock("restart", "web-1", lease).await.unwrap(), None);
    // Another target is another lock; its token is still newer.
    let other = b.acquire_lock("restart", "web-2", lease).await.unwrap().unwrap();
    assert!(other > first, "{other} > {first}");
    assert!(b.renew_lock("restart", "web-1", first, lease).await.unwrap());
    assert!(!a.renew_lock("restart", "web-1", other, lease).await.unwrap());
    assert!(!a.release_lock("restart", "web-1", other).await.unwrap());
    assert!(b.release_lock("restart", "web-1", first).await.unwrap());
    assert!(!a.release_lock("restart", "web-1", first).await.unwrap());
    let again = a.acquire_lock("restart", "web-1", lease).await.unwrap().unwrap();
    assert!(again > other, "{again} > {other}");
    // A lapsed lease frees the target, and its holder can no longer renew it.
    let short = b
        .acquire_lock("drain", "web-1", Duration::from_millis(200))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!b.renew_lock("drain", "web-1", short, lease).await.unwrap());
    let next = a.acquire_lock("drain", "web-1", lease).await.unwrap().unwrap();
    assert!(next > short, "{next} > {short}");
}

async fn the_journal_keeps_its_order_and_active_fixes_are_listed((a, b): Pair) {
    let entry = |event: JournalEvent| JournalEntry {
        fix: "inc-1/restart".into(),
        at: t0(),
        step: None,
        event,
    };
    let entries = [
        entry(JournalEvent::FixStarted {
            params: BTreeMap::from([("name".to_string(), "web-1".to_string())]),
            fencing_token: 7,
            steps: Vec::new(),
            waves: Vec::new(),
        }),
        entry(JournalEvent::PhaseStarted {
            phase: PhaseName::Precheck,
            attempt: 1,
        }),
        entry(JournalEvent::Recovered {
            note: "rootfix restarted".into(),
        }),
        entry(JournalEvent::FixFinished {
            outcome: FixOutcome::Succeeded,
        }),
    ];
    for (i, e) in entries.iter().enumerate() {
        let s = if i % 2 == 0 { &a } else { &b };
        s.append_journal("inc-1", e).await.unwrap();
    }
    assert_eq!(b.journal("inc-1").await.unwrap(), entries);
    assert!(a.journal("inc-2").await.unwrap().is_empty());

    assert!(a.active_fixes().await.unwrap().is_empty());
    a.set_fix_active("inc-2/drain", true).await.unwrap();
    b.set_fix_active("inc-1/restart", true).await.unwrap();
    assert_eq!(b.active_fixes().await.unwrap(), ["inc-1/restart", "inc-2/drain"]);
    a.set_fix_active("inc-2/drain", false).await.unwrap();
    a.set_fix_active("inc-2/drain", false).await.unwrap();
    assert_eq!(b.active_fixes().await.unwrap(), ["inc-1/restart"]);
}

conformance!(
    locks_fence_and_only_their_holder_renews_or_releases,
    the_journal_keeps_its_order_and_active_fixes_are_listed,
);
