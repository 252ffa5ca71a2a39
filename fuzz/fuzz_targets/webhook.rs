//! The Alertmanager webhook parser: any body either is refused with a reason or is a payload
//! whose every alert passes its checks, survives a JSON round trip unchanged, and hashes (the
//! dedupe key) the same each time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rootfix::alert::WebhookPayload;
use rootfix::state::stream::alert_content_id;

fuzz_target!(|body: &[u8]| {
    let Ok(payload) = WebhookPayload::parse(body) else {
        return;
    };
    for alert in &payload.alerts {
        assert!(alert.check().is_ok());
        let _ = alert.condition_view();
        let json = serde_json::to_string(alert).expect("an accepted alert serializes");
        assert_eq!(alert_content_id(&json), alert_content_id(&json));
    }
    let again = serde_json::to_vec(&payload).expect("an accepted payload serializes");
    let reparsed = WebhookPayload::parse(&again).expect("what rootfix stored parses again");
    assert_eq!(reparsed, payload, "a stored payload reads back as it was");
});
