//! The SREs' web page `/ui/` on a whole rootfix in one process (real Redis, the real Docker engine
//! running the test action, the event loop, the HTTP server): once driven by headless Chromium
//! like an SRE would (sign in, approve, confirm, screenshot), once with plain HTTP requests for the
//! refusals (no session, wrong token, wrong role, missing reason, cross-origin POSTs, escaping).

#[path = "support/mod.rs"]
mod support;

#[path = "support/docker.rs"]
mod docker;

#[path = "support/autonomy.rs"]
mod harness;

#[path = "support/browser.rs"]
mod browser;

use std::time::Duration;

use harness::{ADMIN_TOKEN, APPROVER_TOKEN, Harness, INGEST_TOKEN, Options, VIEWER_TOKEN};
use rootfix::autonomy::approval::ApprovalState;
use rootfix::incident::{Incident, IncidentState};
use serde_json::json;

fn approval_of(i: &Incident) -> String {
    i.fix
        .as_ref()
        .and_then(|f| f.approval.clone())
        .expect("the incident waits for an approval")
}

/// Where the screenshot goes: the build's scratch folder, out of git.
fn screenshot_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshot.png")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_sre_signs_in_and_approves_in_chromium() {
    let h = Harness::start("ui_browser", Options::default()).await;
    let first = h.fire("fp-ui-1", "staging", "api-0").await;
    let second = h.fire("fp-ui-2", "staging", "api-1").await;
    assert_eq!(
        first.state,
        IncidentState::AwaitingApproval,
        "{:#?}",
        first.timeline
    );
    assert_eq!(
        second.state,
        IncidentState::AwaitingApproval,
        "{:#?}",
        second.timeline
    );
    let (a1, a2) = (approval_of(&first), approval_of(&second));

    let mut b = browser::Browser::launch().await;
    // Not signed in: the dashboard sends the browser to the sign-in form.
    let at = b.goto(&format!("{}/ui/", h.url)).await;
    assert_eq!(at, format!("{}/ui/login", h.url));
    assert_eq!(b.count("form#login input[name=token]").await, 1);

    // Sign in as the approver, typing the token like a user.
    b.type_into("#token", APPROVER_TOKEN).await;
    let at = b.click_and_wait("form#login button[type=submit]").await;
    assert_eq!(at, format!("{}/ui/", h.url));
    assert_eq!(b.text("#who").await.as_deref(), Some("approver (approver)"));
    let mut listed = b.attrs("tr.approval", "data-id").await;
    listed.sort();
    let mut expected = vec![a1.clone(), a2.clone()];
    expected.sort();
    assert_eq!(listed, expected, "both pending approvals are listed");
    assert_eq!(b.count("tr.incident").await, 2, "both incidents are open");
    let path = b
        .text(&format!("tr.incident[data-id=\"{}\"] td:nth-child(5)", first.id))
        .await;
    assert_eq!(path.as_deref(), Some("autonomy_root → autonomy_needs_fix"));

    // Approve the first one 23.4 s after the alert started: back on the dashboard with what
    // happened, one approval left.
    h.clock.advance(chrono::Duration::milliseconds(23_400));
    let at = b
        .click_and_wait(&format!("tr.approval[data-id=\"{a1}\"] form.approve button"))
        .await;
    assert_eq!(at, format!("{}/ui/", h.url));
    let flash = b.text("#flash.ok").await.expect("a flash message");
    assert!(flash.contains(&format!("approved {a1}")), "{flash}");
    assert!(flash.contains("fix started"), "{flash}");
    assert_eq!(b.attrs("tr.approval", "data-id").await, vec![a2.clone()]);

    // The fix runs and the incident resolves.
    h.settle().await;
    let done = h.resolve_after_fix("fp-ui-1", "staging", "api-0").await;
    assert!(done.fix.as_ref().and_then(|f| f.outcome.as_ref()).is_some());
    let approval = h.state.approval(&a1).await.expect("state").expect("approval");
    assert_eq!(approval.state, ApprovalState::Approved);
    assert_eq!(approval.decided_by.as_deref(), Some("approver"));
    let still = h.state.approval(&a2).await.expect("state").expect("approval");
    assert_eq!(still.state, ApprovalState::Pending);

    // The incident page shows the journal and takes the SRE's verdict.
    b.goto(&format!("{}/ui/incidents/{}", h.url, first.id)).await;
    assert_eq!(b.text("#state").await.as_deref(), Some("resolved"));
    let phases = b.attrs("tr.journal", "data-phase").await;
    assert!(phases.iter().any(|p| p == "execute"), "{phases:?}");
    assert!(b.count("tr.node.hit").await >= 2);
    b.click("form.confirm input[value=correct]").await;
    b.type_into("form.confirm input[name=comment]", "looks right")
        .await;
    let at = b.click_and_wait("form.confirm button[type=submit]").await;
    assert_eq!(at, format!("{}/ui/incidents/{}", h.url, first.id));
    let flash = b.text("#flash.ok").await.expect("a flash message");
    assert!(flash.contains("recorded the verdict"), "{flash}");
    assert_eq!(b.count("form.confirm").await, 0, "a verdict is given once");
    // The verdict shows instead of the form, and stays so on a fresh load.
    for _ in 0..2 {
        let given = b.text("#verdict-given").await.expect("the verdict is shown");
        assert!(
            given.starts_with("correct by approver at 2026-11-02 09:00:23 UTC: looks right"),
            "{given}"
        );
        assert_eq!(b.count("form.confirm").await, 0);
        b.goto(&format!("{}/ui/incidents/{}", h.url, first.id)).await;
    }
    // From the alert's start (09:00:00) to the resolution (09:00:23.4 on the harness clock), and
    // the fix's own run time from its journal.
    let resolved = b.text("#time-to-resolve").await.expect("time to resolve");
    assert!(
        resolved.starts_with("resolved 23.4s after the alert started (the fix took "),
        "{resolved}"
    );
    let confirmed = h
        .state
        .incident(&first.id)
        .await
        .expect("state")
        .expect("incident");
    let verdict = confirmed.fix.and_then(|f| f.verdict).expect("a verdict");
    assert!(verdict.correct);
    assert_eq!(verdict.by, "approver");
    assert_eq!(verdict.comment, "looks right");

    // The second approval, decided from its incident's page: the same row and forms as the
    // dashboard's, and back to the incident with the flash.
    let second_page = format!("{}/ui/incidents/{}", h.url, second.id);
    b.goto(&second_page).await;
    assert_eq!(
        b.attrs("#approval tr.approval", "data-id").await,
        vec![a2.clone()]
    );
    assert_eq!(
        b.text("#approval td.confidence").await.as_deref(),
        Some("1.00 / 0.50")
    );
    assert_eq!(
        b.attrs("#approval form.approve input[name=back]", "value").await,
        vec![second.id.clone()]
    );
    let at = b.click_and_wait("#approval form.approve button").await;
    assert_eq!(at, second_page, "back on the incident page");
    let flash = b.text("#flash.ok").await.expect("a flash message");
    assert!(flash.contains(&format!("approved {a2}")), "{flash}");
    assert!(flash.contains("fix started"), "{flash}");
    assert_eq!(b.count("#approval").await, 0, "no longer pending");
    let decided = b.text("#approval-decided").await.expect("the decision");
    assert!(
        decided.starts_with(&format!("Approval {a2}: approved by approver at ")),
        "{decided}"
    );
    h.settle().await;
    let approval = h.state.approval(&a2).await.expect("state").expect("approval");
    assert_eq!(approval.state, ApprovalState::Approved);
    assert_eq!(approval.decided_by.as_deref(), Some("approver"));

    // A screenshot of the dashboard, for the eyes.
    b.goto(&format!("{}/ui/", h.url)).await;
    let png = b.screenshot().await;
    let path = screenshot_path();
    std::fs::write(&path, &png).expect("write the screenshot");
    println!("screenshot: {}", path.display());
    let written = std::fs::read(&path).expect("read the screenshot");
    assert!(written.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    assert!(
        written.len() > 10_000,
        "{} bytes is too small for the page",
        written.len()
    );
    b.close().await;
}

/// A playbook whose remedy never reaches its threshold: half the weight holds, 0.8 is needed.
const NOTIFY_ONLY_PLAYBOOK: &str = r#"apiVersion: rootfix/v1
kind: Playbook
metadata: {name: notify-only-test}
spec:
  match: ['alertname="NotifyOnlyTest"']
  target: {service: '{{ $labels.service }}'}
  tree:
    id: notify_root
    children:
      - id: notify_weak_evidence
        when: alert.labels.service != ""
        remedy:
          action: autonomy-fix
          params: {target: '{{ $labels.instance }}'}
          confidence:
            threshold: 0.8
            signals:
              - {when: alert.labels.service != "", weight: 0.5, description: the service is named}
              - {when: alert.labels.service == "never", weight: 0.5, description: never holds}
"#;

/// Posts one firing alert with `labels` (fingerprint of `name`, as the harness's alerts).
async fn post_alert(h: &Harness, name: &str, labels: serde_json::Value) {
    post_alert_status(h, name, labels, "firing").await;
}

async fn post_alert_status(h: &Harness, name: &str, labels: serde_json::Value, status: &str) {
    use rootfix::autonomy::clock::Clock as _;
    let now = h.clock.now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let ends = if status == "firing" {
        "0001-01-01T00:00:00Z".to_string()
    } else {
        now.clone()
    };
    let body = json!({
        "version": "4",
        "groupKey": format!("{{}}:{{name=\"{name}\"}}"),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "rootfix",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": {"summary": "a test alert whose values are long"},
            "startsAt": now,
            "endsAt": ends,
            "generatorURL": "http://127.0.0.1:9090/graph",
            "fingerprint": harness::fingerprint(name)
        }]
    });
    let (status, reply) = h.post("/api/v1/alerts/alertmanager", INGEST_TOKEN, body).await;
    assert_eq!(status, 200, "{reply}");
}

/// Signs in by typing the token, like a user.
async fn browser_sign_in(b: &mut browser::Browser, h: &Harness, token: &str) {
    b.goto(&format!("{}/ui/login", h.url)).await;
    b.type_into("#token", token).await;
    let at = b.click_and_wait("form#login button[type=submit]").await;
    assert_eq!(at, format!("{}/ui/", h.url));
}

/// The document's width in CSS pixels (what scrolls sideways when it exceeds the window).
async fn scroll_width(b: &mut browser::Browser) -> u64 {
    b.eval("document.documentElement.scrollWidth")
        .await
        .as_u64()
        .expect("a width")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_values_fit_1280_pixels_and_the_page_says_why_there_is_no_fix() {
    let h = Harness::start(
        "ui_1280",
        Options {
            playbooks: vec![NOTIFY_ONLY_PLAYBOOK.to_string()],
            ..Options::default()
        },
    )
    .await;
    // Long values without a space to break at: the instance becomes the fix's `target` param
    // (and the action echoes it into its output).
    let instance = format!("api-{}", "0123456789abcdef".repeat(14));
    let runbook = format!(
        "https://runbooks.example.com/{}",
        "very-long-path-segment/".repeat(12)
    );
    let long_labels = json!({
        "alertname": "AutonomyTest", "service": "order-api", "env": "staging",
        "instance": instance, "runbook_url": runbook,
        "kubernetes_pod_template_hash_and_other_long_label_name": "x".repeat(180),
    });
    post_alert(&h, "fp-ui-long", long_labels.clone()).await;
    let long = h
        .wait_incident("fp-ui-long", |i| i.state == IncidentState::AwaitingApproval)
        .await;
    let long_approval = approval_of(&long);
    // Below its threshold: diagnosed, nothing offered.
    post_alert(
        &h,
        "fp-ui-notify",
        json!({"alertname": "NotifyOnlyTest", "service": "order-api", "env": "staging", "instance": "api-9"}),
    )
    .await;
    let notify = h
        .wait_incident("fp-ui-notify", |i| {
            i.state == IncidentState::Open && i.diagnosis.is_some()
        })
        .await;
    assert!(notify.fix.is_none(), "{:#?}", notify.fix);
    // Outside every scope: the scope gate refuses.
    let refused = h.fire("fp-ui-prod", "prod", "api-7").await;
    assert_eq!(
        refused.fix.as_ref().and_then(|f| f.gate).map(|g| g.as_str()),
        Some("scope")
    );

    let mut b = browser::Browser::launch().await;
    b.call(
        "Emulation.setDeviceMetricsOverride",
        json!({"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
    )
    .await;
    browser_sign_in(&mut b, &h, APPROVER_TOKEN).await;
    assert_eq!(b.eval("window.innerWidth").await.as_u64(), Some(1280));
    let width = scroll_width(&mut b).await;
    assert!(width <= 1280, "the dashboard is {width} px wide");
    let dash = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-dashboard-1280.png");
    std::fs::write(&dash, b.screenshot().await).expect("write the screenshot");
    // The long param is cut in the table, whole in its title.
    let titles = b
        .attrs(
            &format!("tr.approval[data-id=\"{long_approval}\"] .clip"),
            "title",
        )
        .await;
    assert_eq!(titles, vec![instance.clone()]);
    // Why nothing is offered, in words, on the dashboard row.
    assert_eq!(
        b.text(&format!("tr.incident[data-id=\"{}\"] .why", notify.id))
            .await
            .as_deref(),
        Some("notify only: best remedy autonomy-fix scored 0.50, below its threshold 0.80")
    );
    assert_eq!(
        b.text(&format!("tr.incident[data-id=\"{}\"] .why", refused.id))
            .await
            .as_deref(),
        Some("refused by the scope gate: the target is outside every scope")
    );
    assert_eq!(
        b.count(&format!("tr.incident[data-id=\"{}\"] .why", long.id))
            .await,
        0,
        "a fix waiting for approval needs no excuse"
    );

    // And on the incident pages.
    b.goto(&format!("{}/ui/incidents/{}", h.url, notify.id)).await;
    assert_eq!(
        b.text("#why-no-fix").await.as_deref(),
        Some("notify only: best remedy autonomy-fix scored 0.50, below its threshold 0.80")
    );
    assert_eq!(b.count("#approval").await, 0);
    b.goto(&format!("{}/ui/incidents/{}", h.url, refused.id)).await;
    assert_eq!(
        b.text("#why-no-fix").await.as_deref(),
        Some("refused by the scope gate: the target is outside every scope")
    );

    // The long incident, pending, then approved from its page and run: still 1280 px.
    let long_page = format!("{}/ui/incidents/{}", h.url, long.id);
    b.goto(&long_page).await;
    let width = scroll_width(&mut b).await;
    assert!(width <= 1280, "the pending incident page is {width} px wide");
    assert_eq!(b.count("#why-no-fix").await, 0);
    let at = b.click_and_wait("#approval form.approve button").await;
    assert_eq!(at, long_page);
    h.settle().await;
    h.wait_incident("fp-ui-long", |i| i.state == IncidentState::Fixed)
        .await;
    post_alert_status(&h, "fp-ui-long", long_labels.clone(), "resolved").await;
    h.wait_incident("fp-ui-long", |i| i.state == IncidentState::Resolved)
        .await;
    b.goto(&long_page).await;
    assert_eq!(b.text("#state").await.as_deref(), Some("resolved"));
    let out = b.text("tr.journal pre.stdout").await.expect("the phase's output");
    assert!(out.contains(&instance), "{out}");
    let width = scroll_width(&mut b).await;
    assert!(width <= 1280, "the incident page is {width} px wide");
    let png = b.screenshot().await;
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-incident-1280.png");
    std::fs::write(&path, &png).expect("write the screenshot");
    println!("screenshot: {}", path.display());
    // A screenshot is as wide as the document (the window less its scroll bar): nothing stuck out.
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let png_width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
    assert!(png_width <= 1280, "{png_width} px: {}", path.display());

    // A failed fix stays open; the dashboard links to its confirm form, and once a misfix is
    // reported shows the verdict instead.
    std::fs::write(h.control().join("execute.exit"), "1\n").expect("make execute fail");
    h.break_target();
    let failing = h.fire("fp-ui-fail", "staging", "api-3").await;
    let (code, reply) = h.approve(&approval_of(&failing), APPROVER_TOKEN).await;
    assert_eq!(code, 200, "{reply}");
    h.settle().await;
    let failed = h
        .wait_incident("fp-ui-fail", |i| {
            i.state == IncidentState::Open && i.fix.as_ref().is_some_and(|f| f.outcome.is_some())
        })
        .await;
    b.goto(&format!("{}/ui/", h.url)).await;
    let row = format!("tr.incident[data-id=\"{}\"]", failed.id);
    assert_eq!(b.count(&format!("{row} .verdict")).await, 0);
    let at = b.click_and_wait(&format!("{row} a.to-confirm")).await;
    assert_eq!(at, format!("{}/ui/incidents/{}#confirm", h.url, failed.id));
    b.click("form.confirm input[value=misfix]").await;
    b.eval("document.querySelector('form.confirm select[name=severity]').value = 'P2'")
        .await;
    b.type_into("form.confirm input[name=comment]", "wrong target")
        .await;
    b.click_and_wait("form.confirm button[type=submit]").await;
    let given = b.text("#verdict-given").await.expect("the verdict");
    assert!(given.starts_with("misfix (P2) by approver at "), "{given}");
    assert!(given.ends_with(": wrong target"), "{given}");
    assert_eq!(b.count("form.confirm").await, 0);
    b.goto(&format!("{}/ui/", h.url)).await;
    let verdict = b
        .text(&format!("{row} .verdict"))
        .await
        .expect("the verdict on the dashboard");
    assert!(
        verdict.starts_with("verdict: misfix (P2) by approver at "),
        "{verdict}"
    );
    assert_eq!(b.count(&format!("{row} a.to-confirm")).await, 0);
    b.close().await;
}

/// A client that follows no redirect and keeps no cookie: every request says what it sends.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The `name=value` part of a `Set-Cookie` of `name` in the response, and the whole header.
fn set_cookie(r: &reqwest::Response, name: &str) -> Option<(String, String)> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| (v.split(';').next().unwrap_or_default().to_string(), v.to_string()))
}

/// The CSRF field of a page.
fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a csrf field") + marker.len();
    let end = start + html[start..].find('"').expect("end of the csrf field");
    html[start..end].to_string()
}

struct Signed {
    cookie: String,
    csrf: String,
}

async fn sign_in(h: &Harness, token: &str) -> Signed {
    let r = client()
        .post(format!("{}/ui/login", h.url))
        .form(&[("token", token)])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/");
    let (cookie, full) = set_cookie(&r, "rootfix_session").expect("a session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(full.contains(attr), "{full}");
    }
    let page = client()
        .get(format!("{}/ui/", h.url))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("dashboard");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("body");
    Signed {
        csrf: csrf_of(&html),
        cookie,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_page_refuses_what_it_must() {
    let h = Harness::start("ui_refusals", Options::default()).await;
    let incident = h.fire("fp-ui-r", "staging", "api-0").await;
    let approval = approval_of(&incident);
    let c = client();
    let url = &h.url;

    // Without a session every page goes to the sign-in form, and so does a made-up cookie.
    for path in ["/ui/", &format!("/ui/incidents/{}", incident.id)] {
        let r = c.get(format!("{url}{path}")).send().await.expect("get");
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/ui/login", "{path}");
    }
    let r = c
        .get(format!("{url}/ui/"))
        .header("cookie", "rootfix_session=not-a-token")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 303);
    let r = c.get(format!("{url}/ui")).send().await.expect("get");
    assert_eq!(r.headers()["location"], "/ui/");
    let r = c.get(format!("{url}/ui/login")).send().await.expect("login form");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap_or_default()
            .contains("default-src 'none'")
    );

    // A wrong token is refused with the form again; an ingest token cannot use the page.
    let r = c
        .post(format!("{url}/ui/login"))
        .form(&[("token", "wrong-token")])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 401);
    assert!(set_cookie(&r, "rootfix_session").is_none());
    let body = r.text().await.expect("body");
    assert!(
        body.contains("id=\"login-error\"") && body.contains("unknown token"),
        "{body}"
    );
    let r = c
        .post(format!("{url}/ui/login"))
        .form(&[("token", INGEST_TOKEN)])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 403);
    // A sign-in posted from another site is refused (login CSRF).
    let r = c
        .post(format!("{url}/ui/login"))
        .header("origin", "http://evil.example")
        .form(&[("token", APPROVER_TOKEN)])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 403);
    assert!(set_cookie(&r, "rootfix_session").is_none());

    // A viewer sees but cannot approve.
    let viewer = sign_in(&h, VIEWER_TOKEN).await;
    let page = c
        .get(format!("{url}/ui/"))
        .header("cookie", &viewer.cookie)
        .send()
        .await
        .expect("dashboard")
        .text()
        .await
        .expect("body");
    assert!(page.contains(&format!("data-id=\"{approval}\"")));
    assert!(!page.contains("class=\"approve"), "no approve form for a viewer");
    let r = c
        .post(format!("{url}/ui/approvals/{approval}/approve"))
        .header("cookie", &viewer.cookie)
        .form(&[("csrf", viewer.csrf.as_str())])
        .send()
        .await
        .expect("approve");
    assert_eq!(r.status(), 403);
    let body = r.text().await.expect("body");
    assert!(body.contains("needs role approver"), "{body}");
    let pending = async || {
        h.state
            .approval(&approval)
            .await
            .expect("state")
            .expect("approval")
            .state
            == ApprovalState::Pending
    };
    assert!(pending().await);

    let approver = sign_in(&h, APPROVER_TOKEN).await;
    assert_ne!(
        approver.csrf, viewer.csrf,
        "the CSRF field belongs to the session"
    );

    // Rejecting without a reason: back to the dashboard with the error; still pending.
    let r = c
        .post(format!("{url}/ui/approvals/{approval}/reject"))
        .header("cookie", &approver.cookie)
        .header("origin", url.as_str())
        .form(&[("csrf", approver.csrf.as_str()), ("reason", "  ")])
        .send()
        .await
        .expect("reject");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/");
    let (flash, _) = set_cookie(&r, "rootfix_flash").expect("a flash");
    let r = c
        .get(format!("{url}/ui/"))
        .header("cookie", format!("{}; {flash}", approver.cookie))
        .send()
        .await
        .expect("dashboard");
    let (cleared, _) = set_cookie(&r, "rootfix_flash").expect("the flash is dropped once shown");
    assert_eq!(cleared, "rootfix_flash=");
    let body = r.text().await.expect("body");
    assert!(
        body.contains("class=\"flash error\"") && body.contains("a reason is required to reject"),
        "{body}"
    );
    assert!(pending().await);

    // Cross-origin POSTs are refused whatever the cookie, and so is a POST without the CSRF field
    // or with another session's.
    for origin in ["http://evil.example", "null"] {
        let r = c
            .post(format!("{url}/ui/approvals/{approval}/approve"))
            .header("cookie", &approver.cookie)
            .header("origin", origin)
            .form(&[("csrf", approver.csrf.as_str())])
            .send()
            .await
            .expect("approve");
        assert_eq!(r.status(), 403, "{origin}");
        assert!(r.text().await.expect("body").contains("cross-origin"));
    }
    let r = c
        .post(format!("{url}/ui/approvals/{approval}/approve"))
        .header("cookie", &approver.cookie)
        .header("referer", "http://evil.example/page")
        .form(&[("csrf", approver.csrf.as_str())])
        .send()
        .await
        .expect("approve");
    assert_eq!(r.status(), 403);
    for csrf in ["", viewer.csrf.as_str()] {
        let r = c
            .post(format!("{url}/ui/approvals/{approval}/approve"))
            .header("cookie", &approver.cookie)
            .form(&[("csrf", csrf)])
            .send()
            .await
            .expect("approve");
        assert_eq!(r.status(), 403);
        assert!(r.text().await.expect("body").contains("CSRF"));
    }
    assert!(pending().await);

    // The incident page carries the same forms (for an approver only), with the same checks, and
    // its answers go back to the incident.
    let incident_path = format!("/ui/incidents/{}", incident.id);
    let html = c
        .get(format!("{url}{incident_path}"))
        .header("cookie", &viewer.cookie)
        .send()
        .await
        .expect("incident page")
        .text()
        .await
        .expect("body");
    assert!(html.contains(&format!("data-id=\"{approval}\"")), "{html}");
    assert!(!html.contains("class=\"approve"), "no approve form for a viewer");
    let html = c
        .get(format!("{url}{incident_path}"))
        .header("cookie", &approver.cookie)
        .send()
        .await
        .expect("incident page")
        .text()
        .await
        .expect("body");
    assert!(
        html.contains(&format!("action=\"/ui/approvals/{approval}/approve\"")),
        "{html}"
    );
    assert!(
        html.contains(&format!("name=\"back\" value=\"{}\"", incident.id)),
        "{html}"
    );
    assert_eq!(csrf_of(&html), approver.csrf, "the same CSRF field");
    let back = incident.id.as_str();
    let r = c
        .post(format!("{url}/ui/approvals/{approval}/approve"))
        .header("cookie", &approver.cookie)
        .header("origin", "http://evil.example")
        .form(&[("csrf", approver.csrf.as_str()), ("back", back)])
        .send()
        .await
        .expect("approve");
    assert_eq!(r.status(), 403);
    let r = c
        .post(format!("{url}/ui/approvals/{approval}/approve"))
        .header("cookie", &approver.cookie)
        .form(&[("csrf", viewer.csrf.as_str()), ("back", back)])
        .send()
        .await
        .expect("approve");
    assert_eq!(r.status(), 403);
    assert!(r.text().await.expect("body").contains("CSRF"));
    let r = c
        .post(format!("{url}/ui/approvals/{approval}/approve"))
        .header("cookie", &viewer.cookie)
        .form(&[("csrf", viewer.csrf.as_str()), ("back", back)])
        .send()
        .await
        .expect("approve");
    assert_eq!(r.status(), 403);
    let r = c
        .post(format!("{url}/ui/approvals/{approval}/reject"))
        .header("cookie", &approver.cookie)
        .header("origin", url.as_str())
        .form(&[("csrf", approver.csrf.as_str()), ("reason", ""), ("back", back)])
        .send()
        .await
        .expect("reject");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], incident_path.as_str());
    let (flash, _) = set_cookie(&r, "rootfix_flash").expect("a flash");
    let body = c
        .get(format!("{url}{incident_path}"))
        .header("cookie", format!("{}; {flash}", approver.cookie))
        .send()
        .await
        .expect("incident page")
        .text()
        .await
        .expect("body");
    assert!(
        body.contains("class=\"flash error\"") && body.contains("a reason is required to reject"),
        "{body}"
    );
    assert!(body.contains("id=\"approval\""), "still pending: {body}");
    // `back` only ever names a page of this site's incidents.
    let r = c
        .post(format!("{url}/ui/approvals/{approval}/reject"))
        .header("cookie", &approver.cookie)
        .form(&[
            ("csrf", approver.csrf.as_str()),
            ("reason", ""),
            ("back", "//evil.example/x"),
        ])
        .send()
        .await
        .expect("reject");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/ui/incidents/%2F%2Fevil.example%2Fx");
    assert!(pending().await);

    // Rejecting with a reason works, and rejecting again says why not.
    for expect in ["rejected", "409"] {
        let r = c
            .post(format!("{url}/ui/approvals/{approval}/reject"))
            .header("cookie", &approver.cookie)
            .header("origin", url.as_str())
            .form(&[("csrf", approver.csrf.as_str()), ("reason", "not now")])
            .send()
            .await
            .expect("reject");
        assert_eq!(r.status(), 303);
        let (flash, _) = set_cookie(&r, "rootfix_flash").expect("a flash");
        let body = c
            .get(format!("{url}/ui/"))
            .header("cookie", format!("{}; {flash}", approver.cookie))
            .send()
            .await
            .expect("dashboard")
            .text()
            .await
            .expect("body");
        assert!(body.contains(expect), "{expect}: {body}");
    }
    let rejected = h
        .state
        .approval(&approval)
        .await
        .expect("state")
        .expect("approval");
    assert_eq!(rejected.state, ApprovalState::Rejected);
    assert_eq!(rejected.reason.as_deref(), Some("not now"));
    let body = c
        .get(format!("{url}{incident_path}"))
        .header("cookie", &approver.cookie)
        .send()
        .await
        .expect("incident page")
        .text()
        .await
        .expect("body");
    assert!(
        body.contains(&format!("Approval {approval}: rejected by approver at "))
            && body.contains(": not now</p>"),
        "{body}"
    );
    assert!(
        !body.contains("class=\"approve"),
        "a decided approval has no forms: {body}"
    );

    // Sign out clears the cookie.
    let r = c
        .post(format!("{url}/ui/logout"))
        .header("cookie", &approver.cookie)
        .header("origin", url.as_str())
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 303);
    let (cleared, full) = set_cookie(&r, "rootfix_session").expect("cleared");
    assert_eq!(cleared, "rootfix_session=");
    assert!(full.contains("Max-Age=0"));

    // Whatever an alert carries is shown as text.
    let evil = "<script>alert(1)</script>";
    let body = json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"x\"}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "rootfix",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": evil, "service": "<img src=x onerror=alert(2)>", "note": "\"><b>bold</b>"},
            "annotations": {"summary": evil},
            "startsAt": "2026-11-02T09:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "javascript:alert(3)",
            "fingerprint": "00000000000e5c4e"
        }]
    });
    let (status, reply) = h.post("/api/v1/alerts/alertmanager", INGEST_TOKEN, body).await;
    assert_eq!(status, 200, "{reply}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let escaped = loop {
        let page = h
            .state
            .list_incidents(&Default::default(), 0, 100)
            .await
            .expect("list");
        if let Some(i) = page
            .items
            .into_iter()
            .find(|i| i.fingerprint == "00000000000e5c4e")
        {
            break i;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no incident for the alert"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let admin = sign_in(&h, ADMIN_TOKEN).await;
    for path in ["/ui/".to_string(), format!("/ui/incidents/{}", escaped.id)] {
        let body = c
            .get(format!("{url}{path}"))
            .header("cookie", &admin.cookie)
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("body");
        assert!(
            body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}: {body}"
        );
        for raw in ["<script", "<img", "<b>bold", "href=\"javascript:"] {
            assert!(!body.contains(raw), "{path} contains {raw}: {body}");
        }
    }
}

/// The stages view's picture of one (action, scope): a mark per outcome coloured by kind
/// (filled when it is a sample of the gate), the stage band and the stage changes, in Chromium.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_stages_picture_shows_each_outcome_by_kind_in_chromium() {
    use rootfix::autonomy::stage::Stage;
    let h = Harness::start("ui_stage_picture", Options::default()).await;
    h.force_stage("staging", Stage::Auto).await;
    // Six hours between outcomes, so the picture spreads them over its window.
    let later = || chrono::Duration::hours(6);
    // A verified fix, closed by its resolve.
    h.clock.advance(later());
    h.break_target();
    h.fire("pic-1", "staging", "api-0").await;
    h.settle().await;
    h.resolve_after_fix("pic-1", "staging", "api-0").await;
    // Aborted by its precheck.
    h.clock.advance(later());
    h.break_target();
    std::fs::write(h.control().join("precheck.exit"), "1").unwrap();
    h.fire("pic-2", "staging", "api-1").await;
    h.settle().await;
    std::fs::remove_file(h.control().join("precheck.exit")).unwrap();
    // Executed, did not verify, rolled back.
    h.clock.advance(later());
    h.break_target();
    std::fs::write(h.control().join("verify.exit"), "1").unwrap();
    h.fire("pic-3", "staging", "api-2").await;
    h.settle().await;
    std::fs::remove_file(h.control().join("verify.exit")).unwrap();
    h.wait_incident("pic-3", |i| i.state == IncidentState::Open).await;
    // Refused by the kill switch.
    h.clock.advance(later());
    assert_eq!(h.client_put_killswitch(true).await.0, 200);
    h.fire("pic-4", "staging", "api-3").await;
    assert_eq!(h.client_put_killswitch(false).await.0, 200);

    let mut b = browser::Browser::launch().await;
    browser_sign_in(&mut b, &h, VIEWER_TOKEN).await;
    let picture = "svg.stage-picture[data-action=\"autonomy-fix\"][data-scope=\"staging\"]";
    assert_eq!(b.count(picture).await, 1);
    let kinds = b.attrs(&format!("{picture} circle.mark"), "data-kind").await;
    assert_eq!(
        kinds,
        ["succeeded", "aborted", "rolled-back", "refused"],
        "one mark per outcome, oldest first"
    );
    let counts = b.attrs(&format!("{picture} circle.mark"), "data-counts").await;
    assert_eq!(
        counts,
        ["true", "false", "true", "false"],
        "filled: a sample of the gate"
    );
    let fills = b.attrs(&format!("{picture} circle.mark"), "fill").await;
    assert_eq!(fills, ["#2e7d32", "#ffffff", "#ef6c00", "#ffffff"]);
    let strokes = b.attrs(&format!("{picture} circle.mark"), "stroke").await;
    assert_eq!(strokes[1], "#757575", "aborted: grey ring");
    assert_eq!(strokes[3], "#424242", "refused: dark ring");
    // The two promotions of the setup (manual → silent → auto) are stage changes on the band.
    let changes = b.attrs(&format!("{picture} line.stage-change"), "data-to").await;
    assert_eq!(changes, ["silent", "auto"]);
    let bands = b.attrs(&format!("{picture} rect.stage-band"), "data-stage").await;
    assert_eq!(bands.last().map(String::as_str), Some("auto"), "{bands:?}");
    // Marks lie left to right in time and inside the picture.
    let xs: Vec<f64> = b
        .attrs(&format!("{picture} circle.mark"), "cx")
        .await
        .iter()
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(
        xs.windows(2).all(|w| w[0] + 50.0 < w[1]) && xs.iter().all(|x| (0.0..=720.0).contains(x)),
        "{xs:?}"
    );
    // The table beside it: 2 samples, 1 success; the rollback restored its target.
    let row = b
        .text("tr.stage[data-action=\"autonomy-fix\"]")
        .await
        .unwrap_or_default();
    assert!(row.contains("50.0 %"), "{row}");
    assert!(row.contains("100.0 %"), "rollback success: {row}");
    assert_eq!(b.count("#outcome-legend").await, 1);
    assert_eq!(b.count("script").await, 0, "the page stays script-free");
    let png = b.screenshot().await;
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-stage-picture.png");
    std::fs::write(&path, &png).expect("write the screenshot");
    println!("screenshot: {}", path.display());
    assert!(png.len() > 10_000, "a real picture, {} bytes", png.len());
    b.close().await;
}
