//! The alert stream ([`AlertStream`](rootfix::state::AlertStream)): delivery once per group,
//! acknowledgement, claiming stale entries, a blocked read woken by an append, and trimming that
//! never drops a pending or undelivered entry.

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

/// A trim removes acknowledged entries before the oldest pending one, never a pending entry (of
/// any consumer) nor an undelivered one; with nothing pending, everything up to the last
/// delivered entry goes.
async fn a_trim_keeps_every_pending_and_undelivered_entry((a, b): Pair) {
    // Without the group nothing is known to be delivered: nothing is trimmed.
    a.append_alerts(&[alert("t0", "Early")], t0()).await.unwrap();
    assert_eq!(a.trim_alerts().await.unwrap(), 0);
    a.ensure_consumer_group().await.unwrap();
    let names: Vec<String> = (1..=6).map(|n| format!("T{n}")).collect();
    let alerts: Vec<_> = names.iter().map(|n| alert(&n.to_lowercase(), n)).collect();
    let ids = a.append_alerts(&alerts, t0()).await.unwrap();
    // "Early" and T1..T4 delivered; T5, T6 undelivered.
    let first = a
        .read_alerts("consumer-1", 3, Duration::from_millis(50))
        .await
        .unwrap();
    let second = b
        .read_alerts("consumer-2", 2, Duration::from_millis(50))
        .await
        .unwrap();
    assert_eq!(first.len() + second.len(), 5);
    // Acked: Early, T1 and T3. Pending: T2 (consumer-1), T4 (consumer-2).
    a.ack_alert(&first[0].id).await.unwrap();
    a.ack_alert(&ids[0]).await.unwrap();
    b.ack_alert(&ids[2]).await.unwrap();
    assert_eq!(
        a.trim_alerts().await.unwrap(),
        2,
        "Early and T1, before the oldest pending T2"
    );
    let stats = b.stream_stats().await.unwrap();
    assert_eq!((stats.length, stats.pending, stats.lag), (5, 2, 2));
    // The pending entries survive and are still readable by their consumers and claimable.
    let own1: Vec<String> = a
        .own_pending_alerts("consumer-1", "0", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(own1, [ids[1].clone()]);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let claimed: Vec<String> = a
        .claim_stale_alerts("consumer-1", Duration::from_millis(20), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(claimed, [ids[1].clone(), ids[3].clone()]);
    // Trimming again removes nothing: T2 is still the oldest pending.
    assert_eq!(b.trim_alerts().await.unwrap(), 0);
    a.ack_alert(&ids[1]).await.unwrap();
    a.ack_alert(&ids[3]).await.unwrap();
    // Nothing pending: up to the last delivered (T4) goes; the undelivered T5, T6 stay and are
    // delivered next.
    assert_eq!(a.trim_alerts().await.unwrap(), 3);
    let rest: Vec<String> = b
        .read_alerts("consumer-2", 10, Duration::from_millis(50))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.alert.unwrap().name().to_string())
        .collect();
    assert_eq!(rest, ["T5", "T6"]);
    let stats = a.stream_stats().await.unwrap();
    assert_eq!((stats.length, stats.pending, stats.lag), (2, 2, 0));
}

conformance!(
    the_alert_stream_delivers_claims_and_acks,
    a_blocked_read_wakes_up_for_a_new_alert,
    a_retry_within_the_dedupe_window_is_not_stored_again,
    a_trim_keeps_every_pending_and_undelivered_entry,
);
