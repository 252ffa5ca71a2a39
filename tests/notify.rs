//! Notifications against real HTTP receivers on 127.0.0.1: each format's body and Content-Type
//! as received, retries with backoff (5xx, DingTalk's rate-limit errcode) and what is not
//! retried, and that dead receivers and full queues never hold up `notify()` or the other
//! receivers. The paging sinks (PagerDuty, Opsgenie), Teams and Feishu (group bot and app, with
//! its token) against receivers that check the documented requests. And decisions from chat:
//! an approval decided by a Slack click and by a Feishu app's card callback, each signed exactly
//! as the platform signs them, against a real Redis and the real Docker engine running the fix;
//! forged, stale, replayed and unmapped clicks refused.

#[path = "support/mod.rs"]
mod support;

#[path = "support/docker.rs"]
mod docker;

#[path = "support/autonomy.rs"]
mod harness;

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri, header::CONTENT_TYPE};
use chrono::{TimeZone, Utc};
use rootfix::metrics::Metrics;
use rootfix::notify::{
    Format, Notification, NotificationKind, NotificationsConfig, Notifier, ReceiverConfig, ReceiverStats,
};
use serde_json::{Value, json};
use support::eventually;
use tokio::net::TcpListener;
use url::Url;

// ---- a recording receiver ---------------------------------------------------------------------

/// A request as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    uri: String,
    content_type: Option<String>,
    authorization: Option<String>,
    body: Value,
    at: Instant,
}

struct Script {
    /// Answers for the first requests, in order; then `default` for every other one.
    replies: VecDeque<(u16, String)>,
    default: (u16, String),
    seen: Vec<Received>,
}

/// An HTTP receiver on 127.0.0.1 that records every request; stops when dropped.
struct Receiver {
    addr: SocketAddr,
    script: Arc<Mutex<Script>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Answers `replies` first, then `default` forever.
    async fn start(replies: &[(u16, &str)], default: (u16, &str)) -> Self {
        let script = Arc::new(Mutex::new(Script {
            replies: replies.iter().map(|(s, b)| (*s, b.to_string())).collect(),
            default: (default.0, default.1.to_string()),
            seen: Vec::new(),
        }));
        let state = script.clone();
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move {
                let mut s = state.lock().expect("not poisoned");
                s.seen.push(Received {
                    uri: uri.to_string(),
                    content_type: headers
                        .get(CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                    authorization: headers
                        .get(axum::http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string),
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    at: Instant::now(),
                });
                let (status, body) = s.replies.pop_front().unwrap_or_else(|| s.default.clone());
                (
                    StatusCode::from_u16(status).expect("a valid status"),
                    [(CONTENT_TYPE, "application/json")],
                    body,
                )
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, script, task }
    }

    fn url(&self, path_and_query: &str) -> Url {
        Url::parse(&format!("http://{}{path_and_query}", self.addr)).expect("a URL")
    }

    fn requests(&self) -> Vec<Received> {
        self.script.lock().expect("not poisoned").seen.clone()
    }

    /// Waits until at least `n` requests arrived, and returns them all.
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        eventually(within, &format!("{n} request(s) at {}", self.addr), || async {
            let seen = self.requests();
            (seen.len() >= n).then_some(seen)
        })
        .await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A server that accepts connections and never answers.
async fn silent() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (addr, task)
}

/// A port with nothing listening.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    listener.local_addr().expect("local addr").port()
}

// ---- helpers ----------------------------------------------------------------------------------

const DINGTALK_OK: &str = r#"{"errcode":0,"errmsg":"ok"}"#;

fn receiver(name: &str, format: Format, url: Url) -> ReceiverConfig {
    let mut r = ReceiverConfig::webhook(name, format, url);
    r.events = NotificationKind::ALL.into_iter().collect();
    r
}

fn config(receivers: Vec<ReceiverConfig>) -> NotificationsConfig {
    NotificationsConfig {
        queue: 1024,
        retries: 5,
        backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(1),
        timeout: Duration::from_secs(5),
        public_url: None,
        receivers,
    }
}

fn stats_of(notifier: &Notifier, name: &str) -> ReceiverStats {
    notifier
        .stats()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no receiver {name}"))
}

/// Waits until `name` has finished `n` notifications (sent or failed).
async fn settled(notifier: &Notifier, name: &str, n: u64) -> ReceiverStats {
    eventually(
        Duration::from_secs(10),
        &format!("{n} notification(s) settled at {name}"),
        || async {
            let s = stats_of(notifier, name);
            (s.sent + s.failed >= n).then_some(s)
        },
    )
    .await
}

fn rollback_failed() -> Notification {
    Notification {
        kind: NotificationKind::RollbackFailed,
        incident: Some("inc-9".into()),
        action: Some("scale-up".into()),
        scope: Some("shop/checkout".into()),
        title: "rollback of scale-up failed".into(),
        text: "replicas stuck at 7 <of> 3".into(),
        link: Some("https://rootfix.example/incidents/inc-9".into()),
        ask: None,
        at: Utc
            .with_ymd_and_hms(2025, 6, 1, 12, 30, 0)
            .single()
            .expect("a valid time"),
    }
}

fn succeeded(i: usize) -> Notification {
    Notification::new(NotificationKind::FixSucceeded, format!("fix {i} worked"), "")
        .with_incident(format!("inc-{i}"))
}

// ---- formats ----------------------------------------------------------------------------------

#[tokio::test]
async fn each_format_posts_its_documented_body_and_content_type() {
    let slack = Receiver::start(&[], (200, "ok")).await;
    let dingtalk = Receiver::start(&[], (200, DINGTALK_OK)).await;
    let wecom = Receiver::start(&[], (200, DINGTALK_OK)).await;
    let sink = Receiver::start(&[], (204, "")).await;
    let mut oncall = receiver(
        "oncall-dingtalk",
        Format::DingTalk,
        dingtalk.url("/robot/send?access_token=tok"),
    );
    oncall.events = BTreeSet::from([
        NotificationKind::RollbackFailed,
        NotificationKind::ApprovalExpired,
    ]);
    let metrics = Arc::new(Metrics::new());
    let notifier = Notifier::start(
        config(vec![
            receiver("sre-slack", Format::Slack, slack.url("/services/T/B/x")),
            oncall,
            receiver(
                "ops-wecom",
                Format::WeCom,
                wecom.url("/cgi-bin/webhook/send?key=k"),
            ),
            receiver("audit-sink", Format::Json, sink.url("/hook")),
        ]),
        Some(metrics.clone()),
    )
    .expect("starts");

    // Not urgent, and not among the DingTalk receiver's events.
    notifier.notify(succeeded(1));
    notifier.notify(rollback_failed());

    let slack_seen = slack.wait_for(2, Duration::from_secs(10)).await;
    let dingtalk_seen = dingtalk.wait_for(1, Duration::from_secs(10)).await;
    let wecom_seen = wecom.wait_for(2, Duration::from_secs(10)).await;
    let sink_seen = sink.wait_for(2, Duration::from_secs(10)).await;
    for name in ["sre-slack", "ops-wecom", "audit-sink"] {
        let s = settled(&notifier, name, 2).await;
        assert_eq!((s.sent, s.failed, s.dropped, s.retries), (2, 0, 0, 0), "{name}");
    }
    let s = settled(&notifier, "oncall-dingtalk", 1).await;
    assert_eq!((s.sent, s.failed, s.dropped), (1, 0, 0));

    // Slack: text + mrkdwn blocks, reserved characters escaped.
    assert_eq!(slack_seen[1].uri, "/services/T/B/x");
    assert_eq!(slack_seen[1].content_type.as_deref(), Some("application/json"));
    assert_eq!(slack_seen[0].body["text"], "fix 1 worked");
    assert_eq!(
        slack_seen[1].body,
        json!({
            "text": ":rotating_light: rollback of scale-up failed",
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn",
                    "text": ":rotating_light: *rollback of scale-up failed*\nreplicas stuck at 7 &lt;of&gt; 3"}},
                {"type": "context", "elements": [{"type": "mrkdwn",
                    "text": "incident `inc-9` · action `scale-up` · scope `shop/checkout` · <https://rootfix.example/incidents/inc-9|details> · rootfix · rollback_failed · 2025-06-01T12:30:00Z"}]},
            ],
        })
    );

    // DingTalk: only the urgent one (events filter), markdown, everyone mentioned.
    assert_eq!(dingtalk_seen.len(), 1);
    assert_eq!(dingtalk_seen[0].uri, "/robot/send?access_token=tok");
    assert_eq!(
        dingtalk_seen[0].content_type.as_deref(),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        dingtalk_seen[0].body,
        json!({
            "msgtype": "markdown",
            "markdown": {
                "title": "[URGENT] rollback of scale-up failed",
                "text": "### [URGENT] rollback of scale-up failed\nreplicas stuck at 7 <of> 3\n\n- incident: `inc-9`\n- action: `scale-up`\n- scope: `shop/checkout`\n[details](https://rootfix.example/incidents/inc-9)\n\n###### rootfix · rollback_failed · 2025-06-01T12:30:00Z",
            },
            "at": {"isAtAll": true},
        })
    );

    // WeCom: markdown content; the non-urgent one has no marker.
    assert_eq!(wecom_seen[1].uri, "/cgi-bin/webhook/send?key=k");
    assert_eq!(
        wecom_seen[1].content_type.as_deref(),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        wecom_seen[1].body,
        json!({
            "msgtype": "markdown",
            "markdown": {"content": "## <font color=\"warning\">[URGENT]</font> rollback of scale-up failed\nreplicas stuck at 7 <of> 3\n> incident: `inc-9`\n> action: `scale-up`\n> scope: `shop/checkout`\n[details](https://rootfix.example/incidents/inc-9)\n<font color=\"comment\">rootfix · rollback_failed · 2025-06-01T12:30:00Z</font>"},
        })
    );
    let first = wecom_seen[0].body["markdown"]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(
        first.starts_with("## fix 1 worked\n> incident: `inc-1`\n"),
        "{first}"
    );

    // json: the event itself, nulls included.
    assert_eq!(sink_seen[1].uri, "/hook");
    assert_eq!(sink_seen[1].content_type.as_deref(), Some("application/json"));
    assert_eq!(
        sink_seen[1].body,
        json!({
            "kind": "rollback_failed",
            "urgent": true,
            "incident": "inc-9",
            "action": "scale-up",
            "scope": "shop/checkout",
            "title": "rollback of scale-up failed",
            "text": "replicas stuck at 7 <of> 3",
            "link": "https://rootfix.example/incidents/inc-9",
            "at": "2025-06-01T12:30:00Z",
        })
    );
    assert_eq!(sink_seen[0].body["kind"], "fix_succeeded");
    assert_eq!(sink_seen[0].body["urgent"], false);
    assert_eq!(sink_seen[0].body["action"], Value::Null);

    let text = metrics.render(None, None);
    assert!(
        text.contains("rootfix_notifications_total{receiver=\"audit-sink\",result=\"sent\"} 2\n"),
        "{text}"
    );
    assert!(text.contains("rootfix_notifications_total{receiver=\"oncall-dingtalk\",result=\"sent\"} 1\n"));
}

fn resolved(incident: Option<&str>) -> Notification {
    let mut n = Notification::new(
        NotificationKind::IncidentResolved,
        "Resolved: CheckoutDown",
        "closed",
    );
    n.incident = incident.map(str::to_string);
    n
}

#[tokio::test]
async fn paging_sinks_trigger_and_resolve_one_alert_per_incident() {
    let pagerduty = Receiver::start(&[], (202, r#"{"status":"success","message":"Event processed"}"#)).await;
    let opsgenie = Receiver::start(&[], (202, r#"{"result":"Request will be processed"}"#)).await;
    let mut pd = ReceiverConfig::webhook("pager", Format::PagerDuty, pagerduty.url("/"));
    pd.secret = Some("R0UTING-KEY-1".into());
    let mut og = ReceiverConfig::webhook("genie", Format::Opsgenie, opsgenie.url("/"));
    og.secret = Some("genie-key-1".into());
    // The paging formats' default events: the urgent kinds and the resolve, nothing else.
    assert!(pd.events.contains(&NotificationKind::RollbackFailed));
    assert!(pd.events.contains(&NotificationKind::IncidentResolved));
    assert!(!pd.events.contains(&NotificationKind::FixSucceeded));
    let notifier = Notifier::start(config(vec![pd, og]), None).expect("starts");
    notifier.notify(succeeded(1)); // not a paging kind: sent nowhere
    notifier.notify(rollback_failed());
    notifier.notify(resolved(None)); // nothing to resolve: skipped
    notifier.notify(resolved(Some("inc-9")));
    for name in ["pager", "genie"] {
        let s = settled(&notifier, name, 3).await;
        assert_eq!((s.sent, s.failed), (3, 0), "{name}");
    }
    let pd_seen = pagerduty.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(pd_seen.len(), 2, "{pd_seen:?}");
    assert_eq!(pd_seen[0].uri, "/v2/enqueue");
    assert_eq!(
        pd_seen[0].body,
        json!({
            "routing_key": "R0UTING-KEY-1",
            "event_action": "trigger",
            "dedup_key": "rootfix-inc-9",
            "payload": {
                "summary": "rollback of scale-up failed",
                "source": "rootfix",
                "severity": "critical",
                "timestamp": "2025-06-01T12:30:00Z",
                "component": "shop/checkout",
                "group": "scale-up",
                "class": "rollback_failed",
                "custom_details": {"text": "replicas stuck at 7 <of> 3", "incident": "inc-9",
                    "action": "scale-up", "scope": "shop/checkout"},
            },
            "client": "rootfix",
            "client_url": "https://rootfix.example/incidents/inc-9",
            "links": [{"href": "https://rootfix.example/incidents/inc-9", "text": "rootfix"}],
        })
    );
    assert_eq!(
        pd_seen[1].body,
        json!({"routing_key": "R0UTING-KEY-1", "event_action": "resolve", "dedup_key": "rootfix-inc-9"})
    );

    let og_seen = opsgenie.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(og_seen.len(), 2, "{og_seen:?}");
    assert_eq!(og_seen[0].uri, "/v2/alerts");
    assert_eq!(og_seen[0].authorization.as_deref(), Some("GenieKey genie-key-1"));
    assert_eq!(og_seen[0].body["alias"], "rootfix-inc-9");
    assert_eq!(og_seen[0].body["priority"], "P1");
    assert_eq!(og_seen[0].body["message"], "rollback of scale-up failed");
    assert_eq!(og_seen[0].body["details"]["scope"], "shop/checkout");
    assert_eq!(
        og_seen[1].uri,
        "/v2/alerts/rootfix-inc-9/close?identifierType=alias"
    );
    assert_eq!(og_seen[1].authorization.as_deref(), Some("GenieKey genie-key-1"));
    assert_eq!(
        og_seen[1].body,
        json!({"source": "rootfix", "note": "Resolved: CheckoutDown"})
    );
}

#[tokio::test]
async fn teams_and_feishu_get_cards_and_a_feishu_app_keeps_and_renews_its_token() {
    let teams = Receiver::start(&[], (202, "")).await;
    let feishu = Receiver::start(
        &[(200, r#"{"code":11232,"msg":"frequency limited"}"#)],
        (200, r#"{"code":0,"msg":"success"}"#),
    )
    .await;
    let token = |t: &str| format!(r#"{{"code":0,"msg":"ok","tenant_access_token":"{t}","expire":7200}}"#);
    let (t1, t2) = (token("t-1"), token("t-2"));
    let ok = r#"{"code":0,"msg":"success","data":{}}"#;
    let app = Receiver::start(
        &[
            (200, &t1),
            (200, ok),
            (200, r#"{"code":99991663,"msg":"Invalid access token"}"#),
            (200, &t2),
            (200, ok),
        ],
        (500, "unexpected"),
    )
    .await;
    let mut feishu_app = ReceiverConfig::webhook("oncall-feishu", Format::FeishuApp, app.url("/"));
    feishu_app.secret = Some("app-secret-1".into());
    feishu_app.app_id = Some("cli_a1".into());
    feishu_app.chat_id = Some("oc_42".into());
    let notifier = Notifier::start(
        config(vec![
            receiver("ops-teams", Format::Teams, teams.url("/workflows/abc")),
            receiver(
                "ops-feishu",
                Format::Feishu,
                feishu.url("/open-apis/bot/v2/hook/k"),
            ),
            feishu_app,
        ]),
        None,
    )
    .expect("starts");
    notifier.notify(rollback_failed());
    notifier.notify(succeeded(2).with_ask(rootfix::notify::Ask::Confirmation("inc-2".into())));
    for name in ["ops-teams", "ops-feishu", "oncall-feishu"] {
        let s = settled(&notifier, name, 2).await;
        assert_eq!((s.sent, s.failed), (2, 0), "{name}");
    }

    // Teams: an Adaptive Card attachment, the link as its action.
    let t = teams.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(t[0].body["type"], "message");
    let attachment = &t[0].body["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(attachment["content"]["type"], "AdaptiveCard");
    assert_eq!(
        attachment["content"]["body"][0]["text"],
        "URGENT: rollback of scale-up failed"
    );
    assert_eq!(attachment["content"]["body"][0]["color"], "Attention");
    assert_eq!(
        attachment["content"]["actions"],
        json!([{"type": "Action.OpenUrl", "title": "Open in rootfix", "url": "https://rootfix.example/incidents/inc-9"}])
    );

    // A Feishu group bot: an interactive card; its frequency limit is retried.
    let f = feishu.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(f.len(), 3, "one retry after code 11232");
    assert_eq!(f[0].body, f[1].body);
    assert_eq!(f[1].body["msg_type"], "interactive");
    assert_eq!(f[1].body["card"]["schema"], "2.0");
    assert_eq!(f[1].body["card"]["header"]["template"], "red");
    assert_eq!(
        f[1].body["card"]["header"]["title"]["content"],
        "rollback of scale-up failed"
    );
    // A group bot cannot call back: no callback buttons even when the message asks.
    assert!(!f[2].body.to_string().contains("callback"), "{}", f[2].body);

    // The app: one token for both messages until the API says it is invalid, then a new one.
    let a = app.wait_for(5, Duration::from_secs(5)).await;
    let uris: Vec<&str> = a.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "/open-apis/auth/v3/tenant_access_token/internal",
            "/open-apis/im/v1/messages?receive_id_type=chat_id",
            "/open-apis/im/v1/messages?receive_id_type=chat_id",
            "/open-apis/auth/v3/tenant_access_token/internal",
            "/open-apis/im/v1/messages?receive_id_type=chat_id",
        ]
    );
    assert_eq!(
        a[0].body,
        json!({"app_id": "cli_a1", "app_secret": "app-secret-1"})
    );
    let auth: Vec<Option<&str>> = a.iter().map(|r| r.authorization.as_deref()).collect();
    assert_eq!(
        auth,
        [
            None,
            Some("Bearer t-1"),
            Some("Bearer t-1"),
            None,
            Some("Bearer t-2")
        ]
    );
    assert_eq!(a[1].body["receive_id"], "oc_42");
    assert_eq!(a[1].body["msg_type"], "interactive");
    // `content` is the card as a JSON string; the confirmation's buttons call rootfix back.
    let card: Value =
        serde_json::from_str(a[4].body["content"].as_str().unwrap_or_default()).expect("a card");
    let buttons: Vec<&Value> = card["body"]["elements"]
        .as_array()
        .expect("elements")
        .iter()
        .filter(|e| e["tag"] == "button")
        .collect();
    assert_eq!(buttons.len(), 4);
    assert_eq!(
        buttons[0]["behaviors"],
        json!([{"type": "callback", "value": {"rootfix": "correct", "target": "inc-2", "severity": null}}])
    );
    assert_eq!(buttons[2]["behaviors"][0]["value"]["severity"], "P2");
}

// ---- retries ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_receiver_answering_500_twice_then_200_gets_three_attempts_with_backoff() {
    let flaky = Receiver::start(&[(500, "oops"), (503, "busy")], (200, "")).await;
    let notifier = Notifier::start(
        config(vec![receiver("flaky", Format::Json, flaky.url("/hook"))]),
        None,
    )
    .expect("starts");
    notifier.notify(rollback_failed());
    let s = settled(&notifier, "flaky", 1).await;
    assert_eq!((s.sent, s.failed, s.retries), (1, 0, 2));
    // Nothing more after the success.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let seen = flaky.requests();
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter().all(|r| r.body == seen[0].body),
        "the same body each time"
    );
    // Backoff 50 ms, then doubled.
    let first_gap = seen[1].at - seen[0].at;
    let second_gap = seen[2].at - seen[1].at;
    assert!(first_gap >= Duration::from_millis(50), "{first_gap:?}");
    assert!(second_gap >= Duration::from_millis(100), "{second_gap:?}");
    assert!(second_gap < Duration::from_millis(1000), "{second_gap:?}");
}

#[tokio::test]
async fn retries_end_and_other_4xx_are_not_retried() {
    let down = Receiver::start(&[], (502, "bad gateway")).await;
    let rate_limited = Receiver::start(&[(429, "slow down")], (200, "ok")).await;
    let wrong = Receiver::start(&[], (404, "no_service")).await;
    let mut config = config(vec![
        receiver("down", Format::Json, down.url("/")),
        receiver("rate-limited", Format::Slack, rate_limited.url("/")),
        receiver("wrong", Format::Slack, wrong.url("/")),
    ]);
    config.retries = 2;
    let notifier = Notifier::start(config, None).expect("starts");
    notifier.notify(rollback_failed());

    let s = settled(&notifier, "down", 1).await;
    assert_eq!((s.sent, s.failed, s.retries), (0, 1, 2));
    let s = settled(&notifier, "rate-limited", 1).await;
    assert_eq!((s.sent, s.failed, s.retries), (1, 0, 1));
    let s = settled(&notifier, "wrong", 1).await;
    assert_eq!((s.sent, s.failed, s.retries), (0, 1, 0));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(down.requests().len(), 3, "one attempt and two retries");
    assert_eq!(rate_limited.requests().len(), 2);
    assert_eq!(wrong.requests().len(), 1);
}

#[tokio::test]
async fn dingtalk_rate_limit_errcode_is_retried_and_errcode_0_is_not() {
    let busy = r#"{"errcode":130101,"errmsg":"send too fast"}"#;
    let limited = Receiver::start(&[(200, busy), (200, busy)], (200, DINGTALK_OK)).await;
    let keyword = Receiver::start(
        &[],
        (200, r#"{"errcode":310000,"errmsg":"keywords not in content"}"#),
    )
    .await;
    let notifier = Notifier::start(
        config(vec![
            receiver(
                "limited",
                Format::DingTalk,
                limited.url("/robot/send?access_token=a"),
            ),
            receiver(
                "keyword",
                Format::DingTalk,
                keyword.url("/robot/send?access_token=b"),
            ),
        ]),
        None,
    )
    .expect("starts");
    notifier.notify(rollback_failed());

    let s = settled(&notifier, "limited", 1).await;
    assert_eq!((s.sent, s.failed, s.retries), (1, 0, 2));
    let s = settled(&notifier, "keyword", 1).await;
    assert_eq!((s.sent, s.failed, s.retries), (0, 1, 0));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        limited.requests().len(),
        3,
        "two rate-limited answers, then errcode 0 ends it"
    );
    assert_eq!(keyword.requests().len(), 1, "another errcode is not retried");
}

// ---- isolation --------------------------------------------------------------------------------

#[tokio::test]
async fn dead_receivers_delay_neither_notify_nor_the_healthy_receiver() {
    let (silent_addr, _silent) = silent().await;
    let healthy = Receiver::start(&[], (204, "")).await;
    let mut config = config(vec![
        receiver(
            "silent",
            Format::Json,
            Url::parse(&format!("http://{silent_addr}/hook")).expect("a URL"),
        ),
        receiver(
            "closed",
            Format::Slack,
            Url::parse(&format!("http://127.0.0.1:{}/hook", closed_port())).expect("a URL"),
        ),
        receiver("healthy", Format::Json, healthy.url("/hook")),
    ]);
    // Long enough that waiting on the silent receiver would be seen.
    config.timeout = Duration::from_secs(20);
    config.backoff = Duration::from_secs(5);
    let notifier = Notifier::start(config, None).expect("starts");

    const N: usize = 200;
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..N {
        let t = Instant::now();
        notifier.notify(succeeded(i));
        slowest = slowest.max(t.elapsed());
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(200),
        "{N} notify() calls took {elapsed:?}"
    );
    assert!(
        slowest < Duration::from_millis(20),
        "one notify() took {slowest:?}"
    );

    let seen = healthy.wait_for(N, Duration::from_secs(10)).await;
    let delivered_in = started.elapsed();
    assert!(
        delivered_in < Duration::from_secs(10),
        "the healthy receiver waited on the dead ones: {delivered_in:?}"
    );
    // In order, each once.
    let titles: Vec<String> = seen
        .iter()
        .map(|r| r.body["title"].as_str().unwrap_or_default().to_string())
        .collect();
    let expected: Vec<String> = (0..N).map(|i| format!("fix {i} worked")).collect();
    assert_eq!(titles, expected);
    let s = settled(&notifier, "healthy", N as u64).await;
    assert_eq!((s.sent, s.failed, s.dropped), (N as u64, 0, 0));
    // The dead ones are still on their first notification.
    for name in ["silent", "closed"] {
        let s = stats_of(&notifier, name);
        assert_eq!((s.sent, s.failed, s.dropped), (0, 0, 0), "{name}");
        assert!(s.queued >= N - 1, "{name}: {s:?}");
    }
}

#[tokio::test]
async fn a_full_queue_drops_instead_of_blocking() {
    let (silent_addr, _silent) = silent().await;
    let mut config = config(vec![receiver(
        "silent",
        Format::Json,
        Url::parse(&format!("http://{silent_addr}/hook")).expect("a URL"),
    )]);
    config.queue = 4;
    config.timeout = Duration::from_secs(20);
    let notifier = Notifier::start(config, None).expect("starts");

    const N: usize = 100;
    let started = Instant::now();
    for i in 0..N {
        notifier.notify(succeeded(i));
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(100),
        "notify() waited: {elapsed:?}"
    );
    // Give the delivery task time to take one off the queue.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = stats_of(&notifier, "silent");
    // The queue held four when the rest came; the task has since taken one to deliver (it may
    // have taken it while the loop ran, leaving room for one more).
    assert!((3..=4).contains(&s.queued), "{s:?}");
    assert!((95..=96).contains(&s.dropped), "{s:?}");
    assert_eq!(s.dropped + s.queued as u64 + 1, N as u64, "{s:?}");
    assert_eq!((s.sent, s.failed), (0, 0));
}

#[tokio::test]
async fn a_disabled_notifier_drops_everything() {
    let notifier = Notifier::start(NotificationsConfig::default(), None).expect("starts");
    assert!(!notifier.is_enabled());
    let started = Instant::now();
    for i in 0..1000 {
        notifier.notify(succeeded(i));
    }
    assert!(started.elapsed() < Duration::from_millis(100));
    assert!(notifier.stats().is_empty());
    assert!(!Notifier::disabled().is_enabled());
}

// ---- decisions from chat ----------------------------------------------------------------------

mod chat {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
    use base64::Engine as _;
    use rootfix::autonomy::approval::ApprovalState;
    use rootfix::autonomy::stage::Stage;
    use rootfix::chat::{ChatConfig, FeishuApp, SlackApp};
    use rootfix::incident::IncidentState;
    use rootfix::notify::{Format, NotificationsConfig, ReceiverConfig};
    use serde_json::{Value, json};

    use crate::harness::{Harness, Options, Receiver};
    use crate::support::eventually;

    const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const FEISHU_TOKEN: &str = "qjSwzC1234T1uhJ-verification";
    const FEISHU_KEY: &str = "kudryavka-encrypt-key-1";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Slack's signature, computed here from its documentation, not with rootfix's code.
    fn slack_sign(secret: &str, ts: i64, body: &str) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let tag = ring::hmac::sign(&key, format!("v0:{ts}:{body}").as_bytes());
        format!("v0={}", hex(tag.as_ref()))
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    /// The form body Slack posts when `user` clicks `button` on `message`.
    fn slack_click(user: &str, button: &Value, message: &Value, response_url: &str) -> String {
        let payload = json!({
            "type": "block_actions",
            "user": {"id": user, "username": user.to_lowercase(), "team_id": "T0001"},
            "team": {"id": "T0001", "domain": "shop"},
            "api_app_id": "A0001",
            "trigger_id": "1234.5678.abcd",
            "response_url": response_url,
            "message": {"type": "message", "text": message["text"], "blocks": message["blocks"]},
            "actions": [{
                "type": "button",
                "block_id": "rootfix.ask",
                "action_id": button["action_id"],
                "value": button["value"],
                "text": button["text"],
                "action_ts": "1700000000.000100",
            }],
        });
        format!(
            "payload={}",
            url::form_urlencoded::byte_serialize(payload.to_string().as_bytes()).collect::<String>()
        )
    }

    /// POSTs `body` to the callback at `path` with `headers`; the status and the JSON answer.
    async fn post_callback(h: &Harness, path: &str, headers: &[(&str, String)], body: &str) -> (u16, Value) {
        let mut request = reqwest::Client::new().post(format!("{}{path}", h.url));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let r = request.body(body.to_string()).send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post_slack(h: &Harness, body: &str, ts: i64, signature: &str) -> (u16, Value) {
        let headers = [
            ("content-type", "application/x-www-form-urlencoded".to_string()),
            ("x-slack-request-timestamp", ts.to_string()),
            ("x-slack-signature", signature.to_string()),
        ];
        post_callback(h, "/api/v1/chat/slack", &headers, body).await
    }

    /// Posts `body` signed now with the app's secret, as Slack does.
    async fn click_now(h: &Harness, body: &str) -> (u16, Value) {
        let ts = now();
        post_slack(h, body, ts, &slack_sign(SLACK_SECRET, ts, body)).await
    }

    /// The click was authentic but decided nothing, for the reason that contains `why`.
    fn decided_nothing(status: u16, answer: &Value, why: &str) {
        assert_eq!((status, &answer["decided"]), (200, &json!(false)), "{answer}");
        let reason = answer["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(why), "{reason}");
    }

    fn notifications(url: &str, format: Format) -> NotificationsConfig {
        NotificationsConfig {
            backoff: Duration::from_millis(50),
            receivers: vec![ReceiverConfig::webhook(
                "chat-room",
                format,
                url.parse().expect("url"),
            )],
            ..NotificationsConfig::default()
        }
    }

    async fn start(test: &str, chat: ChatConfig, notifications: NotificationsConfig) -> Harness {
        Harness::start(
            test,
            Options {
                notifications,
                chat,
                ..Options::default()
            },
        )
        .await
    }

    async fn approval_of(h: &Harness, name: &str) -> String {
        let incident = h.fire(name, "staging", "api-0").await;
        assert_eq!(
            incident.state,
            IncidentState::AwaitingApproval,
            "{:#?}",
            incident.timeline
        );
        incident.fix.and_then(|f| f.approval).expect("approval id")
    }

    async fn approval_state(h: &Harness, id: &str) -> Value {
        let (status, body) = h
            .get(&format!("/api/v1/approvals/{id}"), crate::support::VIEWER_TOKEN)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn audit(h: &Harness) -> Vec<(String, String)> {
        let mut events = h.state.audit(10_000).await.expect("audit");
        events.reverse();
        events.into_iter().map(|e| (e.action, e.identity)).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_signed_slack_click_approves_and_forged_stale_replayed_or_unmapped_ones_do_not() {
        let room = Receiver::start().await;
        let updates = Receiver::start().await;
        let update_base = updates.url.trim_end_matches("hook").to_string();
        let chat = ChatConfig {
            slack: Some(SlackApp {
                signing_secret: SLACK_SECRET.into(),
                response_url_prefix: update_base,
                users: BTreeMap::from([
                    ("U0ALICE".to_string(), "approver".to_string()),
                    ("U0VIEWER".to_string(), "viewer".to_string()),
                ]),
            }),
            ..ChatConfig::default()
        };
        let h = start("chat_slack", chat, notifications(&room.url, Format::Slack)).await;
        let approval = approval_of(&h, "slack").await;

        // The approval request reached the room with Approve and Reject buttons on it.
        let message = eventually(
            Duration::from_secs(10),
            "the Slack message with buttons",
            || async {
                room.bodies().into_iter().find(|b| {
                    b["blocks"].as_array().is_some_and(|blocks| {
                        blocks
                            .iter()
                            .any(|x| x["type"] == "actions" && x["elements"][0]["value"] == approval.as_str())
                    })
                })
            },
        )
        .await;
        let buttons = message["blocks"][2]["elements"].clone();
        assert_eq!(buttons[0]["action_id"], "rootfix.approve.-");
        assert_eq!(buttons[1]["action_id"], "rootfix.reject.-");

        let approve = |user: &str| slack_click(user, &buttons[0], &message, &updates.url);
        let body = approve("U0ALICE");

        // Forged: signed with another secret. Stale: the right secret, ten minutes old.
        let (status, answer) =
            post_slack(&h, &body, now(), &slack_sign("not-the-secret", now(), &body)).await;
        assert_eq!(status, 401, "{answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or_default()
                .contains("signature does not match"),
            "{answer}"
        );
        let old = now() - 600;
        let (status, answer) = post_slack(&h, &body, old, &slack_sign(SLACK_SECRET, old, &body)).await;
        assert_eq!(status, 401, "{answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap_or_default()
                .contains("outside the 300 s window"),
            "{answer}"
        );
        // A signature over another body does not pass for this one.
        let (status, _) = post_slack(
            &h,
            &approve("U0VIEWER"),
            now(),
            &slack_sign(SLACK_SECRET, now(), &body),
        )
        .await;
        assert_eq!(status, 401);

        // Authentic, but the user is not mapped, or mapped to a viewer: refused and told why.
        let stranger = approve("U0STRANGER");
        let (status, answer) = click_now(&h, &stranger).await;
        decided_nothing(status, &answer, "U0STRANGER is not mapped");
        let told = eventually(Duration::from_secs(5), "the ephemeral answer", || async {
            updates
                .bodies()
                .into_iter()
                .find(|b| b["response_type"] == "ephemeral")
        })
        .await;
        assert!(
            told["text"].as_str().unwrap_or_default().contains("not mapped"),
            "{told}"
        );
        let viewer = approve("U0VIEWER");
        let (status, answer) = click_now(&h, &viewer).await;
        decided_nothing(status, &answer, "may not approve");
        assert_eq!(
            approval_state(&h, &approval).await["state"],
            "pending",
            "nothing refused decided anything"
        );

        // Alice's signed click approves, the fix runs, and the message loses its buttons.
        let ts = now();
        let signature = slack_sign(SLACK_SECRET, ts, &body);
        let (status, answer) = post_slack(&h, &body, ts, &signature).await;
        assert_eq!((status, &answer["decided"]), (200, &json!(true)), "{answer}");
        let shown = approval_state(&h, &approval).await;
        assert_eq!(shown["state"], "approved");
        assert_eq!(shown["decided_by"], "approver (slack U0ALICE)");
        let updated = eventually(Duration::from_secs(5), "the message update", || async {
            updates
                .bodies()
                .into_iter()
                .find(|b| b["replace_original"] == true)
        })
        .await;
        let blocks = updated["blocks"].as_array().cloned().unwrap_or_default();
        assert!(blocks.iter().all(|b| b["type"] != "actions"), "{updated}");
        let last = blocks
            .last()
            .map(|b| b["elements"][0]["text"].clone())
            .unwrap_or_default();
        assert!(
            last.as_str()
                .unwrap_or_default()
                .contains("approved by approver (slack U0ALICE)"),
            "{last}"
        );

        // The same request again is a replay, even inside the window.
        let (status, answer) = post_slack(&h, &body, ts, &signature).await;
        assert_eq!(status, 401, "{answer}");
        assert!(
            answer["error"].as_str().unwrap_or_default().contains("replay"),
            "{answer}"
        );
        // A new, authentic click on the decided approval decides nothing and says so (signed a
        // second later: another signature).
        let later = ts + 1;
        let (status, answer) = post_slack(&h, &body, later, &slack_sign(SLACK_SECRET, later, &body)).await;
        decided_nothing(status, &answer, "already approved");
        let reject = slack_click("U0ALICE", &buttons[1], &message, &updates.url);
        let (status, answer) = click_now(&h, &reject).await;
        decided_nothing(status, &answer, "approved");
        assert_eq!(approval_state(&h, &approval).await["state"], "approved");

        h.settle().await;
        let done = h
            .wait_incident("slack", |i| i.state == IncidentState::Fixed)
            .await;
        assert!(done.fix.is_some());
        let trail = audit(&h).await;
        assert!(
            trail.contains(&("approval.approved".into(), "approver (slack U0ALICE)".into())),
            "{trail:?}"
        );
        assert!(
            trail.contains(&("chat.refused".into(), "slack U0STRANGER".into())),
            "{trail:?}"
        );
        assert_eq!(trail.iter().filter(|(a, _)| a == "approval.approved").count(), 1);
    }

    /// A Feishu app's encrypted callback body: `{"encrypt": base64(iv ‖ AES-256-CBC)}`.
    fn feishu_encrypt(plain: &Value) -> String {
        let key = ring::digest::digest(&ring::digest::SHA256, FEISHU_KEY.as_bytes());
        let iv: [u8; 16] = *b"0123456789abcdef";
        let cipher = cbc::Encryptor::<aes::Aes256>::new_from_slices(key.as_ref(), &iv)
            .expect("key and iv")
            .encrypt_padded_vec_mut::<Pkcs7>(plain.to_string().as_bytes());
        let mut raw = iv.to_vec();
        raw.extend(cipher);
        json!({"encrypt": base64::engine::general_purpose::STANDARD.encode(raw)}).to_string()
    }

    fn feishu_sign(ts: i64, nonce: &str, body: &str) -> String {
        let d = ring::digest::digest(
            &ring::digest::SHA256,
            format!("{ts}{nonce}{FEISHU_KEY}{body}").as_bytes(),
        );
        hex(d.as_ref())
    }

    /// The `card.action.trigger` event a click on `button` sends.
    fn feishu_click(event_id: &str, open_id: &str, token: &str, value: &Value) -> Value {
        json!({
            "schema": "2.0",
            "header": {
                "event_id": event_id,
                "token": token,
                "create_time": "1700000000000000",
                "event_type": "card.action.trigger",
                "tenant_key": "2df73991750f1657",
                "app_id": "cli_a1b2",
            },
            "event": {
                "operator": {"tenant_key": "2df73991750f1657", "user_id": "867b8297", "open_id": open_id, "union_id": "on_1"},
                "token": "c-295ee57216a5dc9de90fefd0aadb4b1d7d337fc7",
                "action": {"value": value, "tag": "button"},
                "host": "im_message",
                "context": {"open_message_id": "om_x100", "open_chat_id": "oc_42"},
            },
        })
    }

    async fn post_feishu(h: &Harness, body: &str, ts: i64, nonce: &str, signature: &str) -> (u16, Value) {
        let headers = [
            ("content-type", "application/json".to_string()),
            ("x-lark-request-timestamp", ts.to_string()),
            ("x-lark-request-nonce", nonce.to_string()),
            ("x-lark-signature", signature.to_string()),
        ];
        post_callback(h, "/api/v1/chat/feishu", &headers, body).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_signed_feishu_card_callback_approves_and_confirms_a_misfix() {
        let chat = ChatConfig {
            feishu: Some(FeishuApp {
                verification_token: FEISHU_TOKEN.into(),
                encrypt_key: FEISHU_KEY.into(),
                users: BTreeMap::from([("ou_alice".to_string(), "approver".to_string())]),
            }),
            ..ChatConfig::default()
        };
        let room = Receiver::start().await;
        let h = start("chat_feishu", chat, notifications(&room.url, Format::Json)).await;

        // The address check: the challenge comes back when the token matches.
        let check = feishu_encrypt(
            &json!({"challenge": "c-1b6aef1a", "type": "url_verification", "token": FEISHU_TOKEN}),
        );
        let (status, answer) = post_feishu(&h, &check, now(), "n", "").await;
        assert_eq!((status, answer), (200, json!({"challenge": "c-1b6aef1a"})));
        let wrong = feishu_encrypt(&json!({"challenge": "x", "type": "url_verification", "token": "guess"}));
        assert_eq!(post_feishu(&h, &wrong, now(), "n", "").await.0, 401);

        let approval = approval_of(&h, "feishu").await;
        let value = json!({"rootfix": "approve", "target": approval, "severity": null});
        let body = feishu_encrypt(&feishu_click("ev-1", "ou_alice", FEISHU_TOKEN, &value));

        // Forged, stale, unsigned, and signed but carrying another app's token.
        let ts = now();
        let (status, _) = post_feishu(&h, &body, ts, "nonce-1", &feishu_sign(ts, "nonce-2", &body)).await;
        assert_eq!(status, 401);
        let old = now() - 900;
        let (status, answer) =
            post_feishu(&h, &body, old, "nonce-1", &feishu_sign(old, "nonce-1", &body)).await;
        assert_eq!(status, 401, "{answer}");
        assert!(
            answer["error"].as_str().unwrap_or_default().contains("window"),
            "{answer}"
        );
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/chat/feishu", h.url))
            .body(body.clone())
            .send()
            .await
            .expect("request");
        assert_eq!(r.status().as_u16(), 401, "unsigned");
        let other_app = feishu_encrypt(&feishu_click("ev-2", "ou_alice", "another-apps-token", &value));
        let ts = now();
        let (status, answer) = post_feishu(
            &h,
            &other_app,
            ts,
            "nonce-3",
            &feishu_sign(ts, "nonce-3", &other_app),
        )
        .await;
        assert_eq!(status, 401, "{answer}");
        assert_eq!(approval_state(&h, &approval).await["state"], "pending");

        // The signed click approves; the answer replaces the card and says who decided.
        let ts = now();
        let signature = feishu_sign(ts, "nonce-4", &body);
        let (status, answer) = post_feishu(&h, &body, ts, "nonce-4", &signature).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["toast"]["type"], "success", "{answer}");
        assert_eq!(answer["card"]["type"], "raw");
        let card_text = answer["card"]["data"]["body"]["elements"][0]["content"]
            .as_str()
            .unwrap_or_default();
        assert!(
            card_text.contains("approved by approver (feishu ou_alice)"),
            "{card_text}"
        );
        let shown = approval_state(&h, &approval).await;
        assert_eq!(shown["state"], "approved");
        assert_eq!(shown["decided_by"], "approver (feishu ou_alice)");

        // Replayed: the same event again (Feishu's retry or an attacker), even freshly signed.
        let ts = now();
        let (status, answer) =
            post_feishu(&h, &body, ts, "nonce-5", &feishu_sign(ts, "nonce-5", &body)).await;
        assert_eq!(status, 401, "{answer}");
        assert!(
            answer["error"].as_str().unwrap_or_default().contains("replay"),
            "{answer}"
        );

        h.settle().await;
        h.wait_incident("feishu", |i| i.state == IncidentState::Fixed)
            .await;

        // Stage silent: the fix runs on its own and its verdict comes from a card button.
        h.force_stage("staging", Stage::Silent).await;
        h.break_target();
        h.post_alert_named("AutonomyTest", "firing", "feishu-2", "staging", "api-1")
            .await;
        let waiting = h
            .wait_incident("feishu-2", |i| i.state == IncidentState::AwaitingConfirmation)
            .await;
        let asked = eventually(
            Duration::from_secs(10),
            "the fix_succeeded notification",
            || async {
                room.bodies()
                    .into_iter()
                    .find(|b| b["kind"] == "fix_succeeded" && b["incident"] == waiting.id.as_str())
            },
        )
        .await;
        assert_eq!(asked["kind"], "fix_succeeded");
        let misfix = json!({"rootfix": "misfix", "target": waiting.id, "severity": "P2"});
        let body = feishu_encrypt(&feishu_click("ev-3", "ou_alice", FEISHU_TOKEN, &misfix));
        let ts = now();
        let (status, answer) =
            post_feishu(&h, &body, ts, "nonce-6", &feishu_sign(ts, "nonce-6", &body)).await;
        assert_eq!(
            (status, &answer["toast"]["type"]),
            (200, &json!("success")),
            "{answer}"
        );
        let judged = h
            .wait_incident("feishu-2", |i| {
                i.fix.as_ref().is_some_and(|f| f.verdict.is_some())
            })
            .await;
        let verdict =
            serde_json::to_value(judged.fix.as_ref().and_then(|f| f.verdict.as_ref())).expect("verdict");
        assert_eq!(verdict["correct"], false, "{verdict}");
        assert_eq!(verdict["severity"], "P2", "{verdict}");
        assert_eq!(verdict["by"], "approver (feishu ou_alice)", "{verdict}");

        let trail = audit(&h).await;
        assert!(
            trail.contains(&("approval.approved".into(), "approver (feishu ou_alice)".into())),
            "{trail:?}"
        );
        let _ = ApprovalState::Approved;
    }
}

// ---- email over a real SMTP server -------------------------------------------------------------

mod email {
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use rootfix::notify::email::EmailConfig;
    use rootfix::notify::{Format, NotificationKind, Notifier, ReceiverConfig};

    use crate::support::eventually;

    /// aiosmtpd on a free port with STARTTLS required and AUTH; killed when dropped.
    struct SmtpServer {
        child: Child,
        port: u16,
        out: tempfile::TempDir,
        ca_pem: String,
    }

    impl Drop for SmtpServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl SmtpServer {
        async fn start() -> Self {
            let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
            ca_params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "rootfix test mail CA");
            ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let ca_key = rcgen::KeyPair::generate().expect("key");
            let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA");
            let leaf_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
            let leaf_key = rcgen::KeyPair::generate().expect("key");
            let leaf = leaf_params.signed_by(&leaf_key, &ca).expect("leaf");
            let out = tempfile::tempdir().expect("tempdir");
            let certs = tempfile::tempdir().expect("tempdir");
            let cert = certs.path().join("cert.pem");
            let key = certs.path().join("key.pem");
            std::fs::write(&cert, format!("{}{}", leaf.pem(), ca.pem())).expect("cert");
            std::fs::write(&key, leaf_key.serialize_pem()).expect("key");
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port");
            let mut child = Command::new("/usr/bin/python3")
                .arg(crate::support::repo_path("tests/support/smtp_server.py"))
                .args([
                    &port.to_string(),
                    &cert.display().to_string(),
                    &key.display().to_string(),
                ])
                .arg(out.path())
                .args(["rootfix-mailer", "s3cret pass"])
                .stdout(Stdio::piped())
                .spawn()
                .expect("/usr/bin/python3 with aiosmtpd (scripts/test-all.sh installs python3-aiosmtpd)");
            let stdout = child.stdout.take().expect("stdout");
            let ready = tokio::task::spawn_blocking(move || {
                use std::io::BufRead;
                std::io::BufReader::new(stdout)
                    .lines()
                    .next()
                    .and_then(Result::ok)
            });
            let line = tokio::time::timeout(Duration::from_secs(20), ready)
                .await
                .expect("aiosmtpd starts within 20 s")
                .expect("join");
            assert_eq!(line.as_deref(), Some("ready"));
            std::mem::forget(certs);
            Self {
                child,
                port,
                out,
                ca_pem: ca.pem(),
            }
        }

        fn messages(&self) -> Vec<String> {
            let mut names: Vec<_> = std::fs::read_dir(self.out.path())
                .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
                .unwrap_or_default();
            names.retain(|p: &std::path::PathBuf| p.extension().is_some_and(|e| e == "eml"));
            names.sort();
            names
                .iter()
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .collect()
        }
    }

    fn mail_receiver(name: &str, url: &str, ca_pem: Option<String>) -> ReceiverConfig {
        let mut r = ReceiverConfig::webhook(name, Format::Email, url.parse().expect("url"));
        r.events = NotificationKind::ALL.into_iter().collect();
        r.email = Some(EmailConfig {
            from: "rootfix <rootfix@ops.example>".parse().expect("mailbox"),
            to: vec![
                "oncall@ops.example".parse().expect("mailbox"),
                "Team Lead <lead@ops.example>".parse().expect("mailbox"),
            ],
            ca_pem,
        });
        r
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn email_goes_through_starttls_and_auth_and_a_wrong_password_is_not_retried() {
        let smtp = SmtpServer::start().await;
        let good = format!("smtp://rootfix-mailer:s3cret%20pass@127.0.0.1:{}", smtp.port);
        let wrong = format!("smtp://rootfix-mailer:guess@127.0.0.1:{}", smtp.port);
        let notifier = Notifier::start(
            super::config(vec![
                mail_receiver("oncall-mail", &good, Some(smtp.ca_pem.clone())),
                mail_receiver("wrong-password", &wrong, Some(smtp.ca_pem.clone())),
                // The server's CA is not trusted: TLS fails, nothing is sent in the clear.
                mail_receiver("untrusted", &good, None),
            ]),
            None,
        )
        .expect("starts");
        notifier.notify(super::rollback_failed());
        let s = super::settled(&notifier, "oncall-mail", 1).await;
        assert_eq!((s.sent, s.failed, s.retries), (1, 0, 0));
        let s = super::settled(&notifier, "wrong-password", 1).await;
        assert_eq!(
            (s.sent, s.failed, s.retries),
            (0, 1, 0),
            "535 is permanent: not retried"
        );
        let s = super::settled(&notifier, "untrusted", 1).await;
        assert_eq!((s.sent, s.failed), (0, 1));
        assert!(s.retries >= 1, "a TLS failure may pass later: retried");

        let messages = eventually(Duration::from_secs(5), "the message on disk", || async {
            let m = smtp.messages();
            (!m.is_empty()).then_some(m)
        })
        .await;
        assert_eq!(
            messages.len(),
            1,
            "only the good receiver delivered: {messages:?}"
        );
        let m = &messages[0];
        assert!(m.contains("X-Test-Mail-From: rootfix@ops.example\r\n"), "{m}");
        assert!(
            m.contains("X-Test-Rcpt-To: oncall@ops.example,lead@ops.example\r\n"),
            "{m}"
        );
        assert!(m.contains("X-Test-Login: rootfix-mailer"), "{m}");
        assert!(
            m.contains("Subject: [rootfix] URGENT: rollback of scale-up failed"),
            "{m}"
        );
        assert!(m.contains("Content-Type: text/plain; charset=utf-8"), "{m}");
        assert!(m.contains("incident: inc-9"), "{m}");
        assert!(
            m.contains("details: https://rootfix.example/incidents/inc-9"),
            "{m}"
        );
        // The footer (kind and time; its `·` may be encoded, so only the ASCII parts).
        assert!(
            m.contains("rollback_failed") && m.contains("2025-06-01T12:30:00Z"),
            "{m}"
        );
    }
}
