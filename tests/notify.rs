//! Notifications against real HTTP receivers on 127.0.0.1: each format's body and Content-Type
//! as received, retries with backoff (5xx, DingTalk's rate-limit errcode) and what is not
//! retried, and that dead receivers and full queues never hold up `notify()` or the other
//! receivers.

#[path = "support/mod.rs"]
mod support;

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
    ReceiverConfig {
        name: name.into(),
        format,
        url,
        events: NotificationKind::ALL.into_iter().collect(),
    }
}

fn config(receivers: Vec<ReceiverConfig>) -> NotificationsConfig {
    NotificationsConfig {
        queue: 1024,
        retries: 5,
        backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(1),
        timeout: Duration::from_secs(5),
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
