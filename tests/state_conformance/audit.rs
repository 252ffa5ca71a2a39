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

conformance!(the_kill_switch_and_the_audit_trail,);
