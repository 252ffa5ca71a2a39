//! Incidents ([`IncidentStore`](rootfix::state::IncidentStore)): one open incident per
//! fingerprint, compare-and-set saves, listing with filters and pages, counts by state.

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

conformance!(
    one_open_incident_per_fingerprint,
    concurrent_saves_of_one_version_let_exactly_one_win,
    incidents_list_newest_first_with_filters_and_pages,
);
