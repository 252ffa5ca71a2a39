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

    // Approve the first one: back on the dashboard with what happened, one approval left.
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
