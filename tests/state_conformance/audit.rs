//! The kill switch and the audit trail ([`AuditStore`](rootfix::state::AuditStore)).

use super::*;

async fn the_kill_switch_and_the_audit_trail((a, b): Pair) {
    use rootfix::audit::{AuditEvent, KillSwitch};
    assert_eq!(a.killswitch().await.unwrap(), None);
    let on = KillSwitch {
        by: "admin".into(),
        reason: "bad deploy".into(),
        since: t0(),
    };
    a.set_killswitch(Some(&on)).await.unwrap();
    assert_eq!(b.killswitch().await.unwrap(), Some(on));
    b.set_killswitch(None).await.unwrap();
    assert_eq!(a.killswitch().await.unwrap(), None);
    for i in 0..5 {
        let event = AuditEvent {
            at: t0(),
            identity: "admin".into(),
            action: format!("test.{i}"),
            detail: String::new(),
        };
        a.append_audit(&event).await.unwrap();
    }
    let newest: Vec<String> = b.audit(3).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(newest, ["test.4", "test.3", "test.2"]);
}

async fn a_one_time_use_is_refused_until_its_window_ends((a, b): Pair) {
    let ttl = std::time::Duration::from_millis(300);
    assert!(a.use_once("slack:sig-1", ttl).await.unwrap());
    assert!(
        !b.use_once("slack:sig-1", ttl).await.unwrap(),
        "the replay is refused"
    );
    assert!(!a.use_once("slack:sig-1", ttl).await.unwrap());
    assert!(
        b.use_once("slack:sig-2", ttl).await.unwrap(),
        "another use is its own"
    );
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    assert!(
        a.use_once("slack:sig-1", ttl).await.unwrap(),
        "forgotten after its window"
    );
}

/// The oldest audit events are trimmed while their time is before the cutoff, at most `limit` at
/// a time; newer ones (and every one after the first newer one) stay.
async fn audit_events_are_trimmed_by_age((a, b): Pair) {
    use rootfix::audit::AuditEvent;
    for (i, hours) in [0i64, 1, 2, 3, 10, 11].into_iter().enumerate() {
        a.append_audit(&AuditEvent {
            at: t0() + chrono::Duration::hours(hours),
            identity: "admin".into(),
            action: format!("test.{i}"),
            detail: String::new(),
        })
        .await
        .unwrap();
    }
    let cutoff = t0() + chrono::Duration::hours(5);
    assert_eq!(
        b.trim_audit(t0(), 100).await.unwrap(),
        0,
        "nothing older than the first"
    );
    assert_eq!(b.trim_audit(cutoff, 2).await.unwrap(), 2, "at most the limit");
    assert_eq!(a.trim_audit(cutoff, 100).await.unwrap(), 2);
    assert_eq!(a.trim_audit(cutoff, 100).await.unwrap(), 0);
    let left: Vec<String> = b.audit(10).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(left, ["test.5", "test.4"]);
    assert_eq!(
        a.trim_audit(t0() + chrono::Duration::days(1), 100).await.unwrap(),
        2
    );
    assert!(b.audit(10).await.unwrap().is_empty());
}

conformance!(
    the_kill_switch_and_the_audit_trail,
    audit_events_are_trimmed_by_age,
    a_one_time_use_is_refused_until_its_window_ends,
);
