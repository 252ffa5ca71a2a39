//! The alert stream ([`AlertStream`](rootfix::state::AlertStream)): delivery once per group,
//! acknowledgement, claiming stale entries, and a blocked read woken by an append.

use rootfix::state::StreamStats;

use super::*;

async fn the_alert_stream_delivers_claims_and_acks((a, b): Pair) {
    a.ensure_consumer_group().await.unwrap();
    b.ensure_consumer_group().await.unwrap();
    let alerts = [alert("a1", "A"), alert("a2", "B"), alert("a3", "C")];
    let ids = a.append_alerts(&alerts, t0()).await.unwrap();
    assert_eq!(ids.len(), 3);
    let got = a
        .read_alerts("consumer-1", 10, Duration::from_millis(50))
        .await
        .unwrap();
    let names: Vec<String> = got
        .iter()
        .map(|e| e.alert.as_ref().unwrap().name().to_string())
        .collect();
    assert_eq!(names, ["A", "B", "C"]);
    assert_eq!(got.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), ids);
    assert_eq!(got[0].received_at, Some(t0()));
    // Delivered once: the group has nothing new for anyone.
    assert!(
        b.read_alerts("consumer-2", 10, Duration::from_millis(50))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        a.stream_stats().await.unwrap(),
        StreamStats {
            length: 3,
            pending: 3,
            lag: 0
        }
    );
    a.ack_alert(&ids[0]).await.unwrap();
    a.ack_alert(&ids[1]).await.unwrap();
    // Not idle long enough: nothing to claim.
    assert!(
        b.claim_stale_alerts("consumer-2", Duration::from_secs(60), 10)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(30)).await;
    let claimed = b
        .claim_stale_alerts("consumer-2", Duration::from_millis(20), 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|e| e.id.clone()).collect::<Vec<_>>(),
        [ids[2].clone()]
    );
    b.ack_alert(&ids[2]).await.unwrap();
    assert_eq!(
        a.stream_stats().await.unwrap(),
        StreamStats {
            length: 3,
            pending: 0,
            lag: 0
        }
    );
}

async fn a_blocked_read_wakes_up_for_a_new_alert((a, b): Pair) {
    a.ensure_consumer_group().await.unwrap();
    let reader = tokio::spawn({
        let a = a.clone();
        async move { a.read_alerts("c", 10, Duration::from_secs(5)).await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.append_alerts(&[alert("f1", "Late")], t0()).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(3), reader)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 1);
}

/// A retried webhook (identical alerts within the window) stores nothing twice; a different
/// alert in the same payload is stored; a zero window stores every copy.
async fn a_retry_within_the_dedupe_window_is_not_stored_again((a, b): Pair) {
    a.ensure_consumer_group().await.unwrap();
    let window = Duration::from_secs(60);
    let first = a
        .append_new_alerts(&[alert("d1", "A"), alert("d2", "B")], t0(), window)
        .await
        .unwrap();
    assert_eq!((first.ids.len(), first.duplicates), (2, 0));
    // The retry reaches another replica: the same store seen through `b`.
    let retry = b
        .append_new_alerts(&[alert("d1", "A"), alert("d3", "C")], t0(), window)
        .await
        .unwrap();
    assert_eq!((retry.ids.len(), retry.duplicates), (1, 1), "{retry:?}");
    assert_eq!(a.stream_stats().await.unwrap().length, 3);
    let off = a
        .append_new_alerts(&[alert("d1", "A")], t0(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((off.ids.len(), off.duplicates), (1, 0));
    assert_eq!(a.stream_stats().await.unwrap().length, 4);
    // Past the window, the same content is a new notification again.
    let short = Duration::from_millis(200);
    a.append_new_alerts(&[alert("d9", "Z")], t0(), short)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let later = a
        .append_new_alerts(&[alert("d9", "Z")], t0(), short)
        .await
        .unwrap();
    assert_eq!((later.ids.len(), later.duplicates), (1, 0));
}

conformance!(
    the_alert_stream_delivers_claims_and_acks,
    a_blocked_read_wakes_up_for_a_new_alert,
    a_retry_within_the_dedupe_window_is_not_stored_again,
);
