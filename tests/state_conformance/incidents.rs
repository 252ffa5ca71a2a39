//! Incidents ([`IncidentStore`](rootfix::state::IncidentStore)): one open incident per
//! fingerprint, compare-and-set saves, listing with filters and pages, counts by state, and
//! retention's removal of closed incidents.

use rootfix::incident::IncidentFilter;
use rootfix::state::{CreateOutcome, SaveOutcome};

use super::*;

async fn one_open_incident_per_fingerprint((a, b): Pair) {
    let first = incident("inc-1", "fp1", IncidentState::Open, 0);
    assert_eq!(a.create_incident(&first).await.unwrap(), CreateOutcome::Created);
    assert_eq!(b.create_incident(&first).await.unwrap(), CreateOutcome::IdExists);
    let second = incident("inc-2", "fp1", IncidentState::Open, 1);
    assert_eq!(
        b.create_incident(&second).await.unwrap(),
        CreateOutcome::OpenExists("inc-1".into())
    );
    let mut loaded = b.open_incident("fp1").await.unwrap().unwrap();
    assert_eq!((loaded.id.as_str(), loaded.version), ("inc-1", 1));
    assert_eq!(loaded.alert, first.alert);
    // Resolving frees the fingerprint for a new incident.
    loaded.state = IncidentState::Resolved;
    assert_eq!(b.save_incident(&mut loaded).await.unwrap(), SaveOutcome::Saved);
    assert_eq!(loaded.version, 2);
    assert!(a.open_incident("fp1").await.unwrap().is_none());
    assert_eq!(a.create_incident(&second).await.unwrap(), CreateOutcome::Created);
    assert_eq!(
        a.incident("inc-1").await.unwrap().unwrap().state,
        IncidentState::Resolved
    );
    let counts = a.incident_counts().await.unwrap();
    assert_eq!(
        (counts[&IncidentState::Open], counts[&IncidentState::Resolved]),
        (1, 1)
    );
}

async fn concurrent_saves_of_one_version_let_exactly_one_win((a, b): Pair) {
    a.create_incident(&incident("inc-1", "fp1", IncidentState::Diagnosing, 0))
        .await
        .unwrap();
    let mut x = a.incident("inc-1").await.unwrap().unwrap();
    let mut y = b.incident("inc-1").await.unwrap().unwrap();
    x.firings = 2;
    y.firings = 3;
    let (rx, ry) = tokio::join!(a.save_incident(&mut x), b.save_incident(&mut y));
    let mut outcomes = [rx.unwrap(), ry.unwrap()];
    outcomes.sort_by_key(|o| *o == SaveOutcome::Saved);
    assert_eq!(outcomes, [SaveOutcome::Conflict, SaveOutcome::Saved]);
    let stored = a.incident("inc-1").await.unwrap().unwrap();
    assert!(stored.firings == 2 || stored.firings == 3);
    assert_eq!(stored.version, 2);
    let mut ghost = incident("inc-404", "fp9", IncidentState::Open, 0);
    assert_eq!(a.save_incident(&mut ghost).await.unwrap(), SaveOutcome::Missing);
}

async fn incidents_list_newest_first_with_filters_and_pages((a, _): Pair) {
    for minute in 0..10 {
        let state = if minute < 6 {
            IncidentState::Open
        } else {
            IncidentState::Unhandled
        };
        a.create_incident(&incident(
            &format!("inc-{minute}"),
            &format!("fp{minute}"),
            state,
            minute,
        ))
        .await
        .unwrap();
    }
    let all = a.list_incidents(&IncidentFilter::default(), 0, 4).await.unwrap();
    assert_eq!(
        all.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["inc-9", "inc-8", "inc-7", "inc-6"]
    );
    assert_eq!(all.next_offset, Some(4));
    let open = IncidentFilter {
        state: Some(IncidentState::Open),
        ..Default::default()
    };
    let page = a.list_incidents(&open, 2, 10).await.unwrap();
    assert_eq!(
        page.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["inc-3", "inc-2", "inc-1", "inc-0"]
    );
    assert_eq!(page.next_offset, None);
    let payment = IncidentFilter {
        service: Some("payment".into()),
        state: Some(IncidentState::Unhandled),
        ..Default::default()
    };
    let page = a.list_incidents(&payment, 0, 10).await.unwrap();
    assert_eq!(
        page.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        ["inc-9", "inc-7"]
    );
    let none = IncidentFilter {
        playbook: Some("nope".into()),
        ..Default::default()
    };
    assert!(a.list_incidents(&none, 0, 10).await.unwrap().items.is_empty());
}

/// Retention's view: closed incidents found by when they closed, and removed with their journal,
/// approvals and every index entry — only while still closed and unchanged since read.
async fn closed_incidents_are_found_by_age_and_removed_with_what_they_keep((a, b): Pair) {
    use rootfix::autonomy::approval::{Approval, ApprovalState};
    use rootfix::fix::journal::{JournalEntry, JournalEvent};
    let at = |m: i64| t0() + chrono::Duration::minutes(m);
    let close = |id: &str, fp: &str, minute: u32, state: IncidentState, closed: i64| {
        let mut i = incident(id, fp, IncidentState::Open, minute);
        let c = i.clone();
        i.state = state;
        i.updated_at = at(closed);
        i.resolved_at = (state == IncidentState::Resolved).then(|| at(closed));
        (c, i)
    };
    for (id, fp, minute, state, closed) in [
        ("inc-old", "fp-old", 0, IncidentState::Resolved, 10),
        ("inc-young", "fp-young", 1, IncidentState::Resolved, 50),
        ("inc-stale", "fp-stale", 3, IncidentState::Stale, 20),
    ] {
        let (created, mut closed_one) = close(id, fp, minute, state, closed);
        assert_eq!(a.create_incident(&created).await.unwrap(), CreateOutcome::Created);
        closed_one.version = 1;
        assert_eq!(
            a.save_incident(&mut closed_one).await.unwrap(),
            SaveOutcome::Saved
        );
    }
    let open = incident("inc-open", "fp-open", IncidentState::Open, 2);
    a.create_incident(&open).await.unwrap();
    a.append_journal(
        "inc-old",
        &JournalEntry {
            fix: "inc-old/restart".into(),
            at: at(5),
            step: None,
            event: JournalEvent::Recovered { note: "test".into() },
        },
    )
    .await
    .unwrap();
    let approval = Approval {
        id: "inc-old.restart".into(),
        incident: "inc-old".into(),
        action: "restart".into(),
        scope: "staging".into(),
        params: Default::default(),
        steps: Vec::new(),
        summary: "root → restart".into(),
        confidence: 0.9,
        threshold: 0.7,
        created_at: at(1),
        expires_at: at(31),
        state: ApprovalState::Pending,
        decided_by: None,
        decided_at: None,
        reason: None,
    };
    assert!(a.create_approval(&approval).await.unwrap());

    let ids = |v: Vec<rootfix::incident::Incident>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(
        ids(b.closed_incidents_before(at(30), 10).await.unwrap()),
        ["inc-old", "inc-stale"]
    );
    assert_eq!(
        ids(b.closed_incidents_before(at(30), 1).await.unwrap()),
        ["inc-old"]
    );
    assert!(
        b.closed_incidents_before(at(10), 10).await.unwrap().is_empty(),
        "closed at 10, not before"
    );
    let read = b.closed_incidents_before(at(30), 1).await.unwrap().remove(0);
    // A save since it was read wins: nothing removed.
    let mut changed = a.incident("inc-old").await.unwrap().unwrap();
    assert_eq!(a.save_incident(&mut changed).await.unwrap(), SaveOutcome::Saved);
    assert!(
        !b.remove_incident(&read, &["inc-old.restart".into()])
            .await
            .unwrap()
    );
    assert!(a.incident("inc-old").await.unwrap().is_some());
    // An open incident is never removed.
    let open_now = a.incident("inc-open").await.unwrap().unwrap();
    assert!(!b.remove_incident(&open_now, &[]).await.unwrap());

    let read = b.closed_incidents_before(at(30), 1).await.unwrap().remove(0);
    assert!(
        b.remove_incident(&read, &["inc-old.restart".into()])
            .await
            .unwrap()
    );
    assert!(a.incident("inc-old").await.unwrap().is_none());
    assert!(a.journal("inc-old").await.unwrap().is_empty());
    assert!(a.approval("inc-old.restart").await.unwrap().is_none());
    assert!(a.list_approvals(false, 10).await.unwrap().is_empty());
    assert!(a.list_approvals(true, 10).await.unwrap().is_empty());
    assert!(a.last_closed_incident("fp-old").await.unwrap().is_none());
    let listed = ids(a
        .list_incidents(&IncidentFilter::default(), 0, 10)
        .await
        .unwrap()
        .items);
    assert_eq!(listed, ["inc-stale", "inc-open", "inc-young"]);
    let counts = a.incident_counts().await.unwrap();
    assert_eq!(
        (
            counts[&IncidentState::Resolved],
            counts[&IncidentState::Stale],
            counts[&IncidentState::Open]
        ),
        (1, 1, 1)
    );
    assert_eq!(
        ids(a.closed_incidents_before(at(30), 10).await.unwrap()),
        ["inc-stale"]
    );
    // A closed incident saved open again (a flap rejoining it) leaves the closed index.
    let mut rejoined = a.incident("inc-stale").await.unwrap().unwrap();
    rejoined.state = IncidentState::Open;
    assert_eq!(a.save_incident(&mut rejoined).await.unwrap(), SaveOutcome::Saved);
    assert!(a.closed_incidents_before(at(30), 10).await.unwrap().is_empty());
    assert!(!a.remove_incident(&rejoined, &[]).await.unwrap());
    assert_eq!(
        ids(a.closed_incidents_before(at(60), 10).await.unwrap()),
        ["inc-young"]
    );
}

/// A filtered listing follows every state change, and a removed incident leaves it.
async fn filtered_listings_follow_saves_and_removals((a, b): Pair) {
    for minute in 0..6 {
        a.create_incident(&incident(
            &format!("inc-{minute}"),
            &format!("fp{minute}"),
            IncidentState::Open,
            minute,
        ))
        .await
        .unwrap();
    }
    let ids = |page: rootfix::state::IncidentPage| page.items.into_iter().map(|i| i.id).collect::<Vec<_>>();
    let in_state = |state| IncidentFilter {
        state: Some(state),
        ..Default::default()
    };
    for id in ["inc-1", "inc-4"] {
        let mut i = b.incident(id).await.unwrap().unwrap();
        i.state = IncidentState::Resolved;
        i.resolved_at = Some(i.created_at);
        assert_eq!(b.save_incident(&mut i).await.unwrap(), SaveOutcome::Saved);
    }
    assert_eq!(
        ids(a
            .list_incidents(&in_state(IncidentState::Open), 0, 10)
            .await
            .unwrap()),
        ["inc-5", "inc-3", "inc-2", "inc-0"]
    );
    assert_eq!(
        ids(a
            .list_incidents(&in_state(IncidentState::Resolved), 0, 10)
            .await
            .unwrap()),
        ["inc-4", "inc-1"]
    );
    let order_resolved = IncidentFilter {
        state: Some(IncidentState::Resolved),
        service: Some("order".into()),
        playbook: Some("order-service-timeout".into()),
    };
    assert_eq!(
        ids(a.list_incidents(&order_resolved, 0, 10).await.unwrap()),
        ["inc-4"]
    );
    let gone = a.incident("inc-4").await.unwrap().unwrap();
    assert!(a.remove_incident(&gone, &[]).await.unwrap());
    assert_eq!(
        ids(b
            .list_incidents(&in_state(IncidentState::Resolved), 0, 10)
            .await
            .unwrap()),
        ["inc-1"]
    );
    assert!(
        b.list_incidents(&order_resolved, 0, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let order = IncidentFilter {
        service: Some("order".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(b.list_incidents(&order, 0, 10).await.unwrap()),
        ["inc-2", "inc-0"]
    );
}

/// Incidents an older rootfix stored have no listing index: until they are indexed a filtered
/// listing reads every incident, and connecting indexes them once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incidents_stored_without_the_listing_indexes_are_indexed_when_rootfix_connects() {
    use ::redis::AsyncCommands;
    let prefix = support::unique_prefix("listing_backfill");
    let url = support::redis_url();
    let store = rootfix::state::redis::RedisStateStore::connect(&url, &prefix)
        .await
        .unwrap();
    for minute in 0..5 {
        store
            .create_incident(&incident(
                &format!("inc-{minute}"),
                &format!("fp{minute}"),
                IncidentState::Open,
                minute,
            ))
            .await
            .unwrap();
    }
    // What an older rootfix left: no `by:` keys, no marker.
    let mut conn = ::redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = conn
        .keys(format!("{}*rootfix:incidents:by:*", prefix))
        .await
        .unwrap();
    assert!(keys.len() >= 3, "{keys:?}");
    let marker = store.keys().incidents_indexed();
    let _: () = conn.del(&keys).await.unwrap();
    let _: () = conn.del(&marker).await.unwrap();
    let open = IncidentFilter {
        state: Some(IncidentState::Open),
        ..Default::default()
    };
    let page = store.list_incidents(&open, 0, 10).await.unwrap();
    assert_eq!(page.items.len(), 5, "read from every incident until indexed");
    let again = rootfix::state::redis::RedisStateStore::connect(&url, &prefix)
        .await
        .unwrap();
    assert!(conn.exists::<_, bool>(&marker).await.unwrap());
    let indexed: u64 = conn
        .zcard(store.keys().incidents_by("state", "open"))
        .await
        .unwrap();
    assert_eq!(indexed, 5);
    let ids: Vec<String> = again
        .list_incidents(&open, 0, 10)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, ["inc-4", "inc-3", "inc-2", "inc-1", "inc-0"]);
}

conformance!(
    filtered_listings_follow_saves_and_removals,
    one_open_incident_per_fingerprint,
    closed_incidents_are_found_by_age_and_removed_with_what_they_keep,
    concurrent_saves_of_one_version_let_exactly_one_win,
    incidents_list_newest_first_with_filters_and_pages,
);
