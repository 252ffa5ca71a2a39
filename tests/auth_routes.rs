//! Auth over every route, table-driven: no token and a wrong token answer 401, a token of too
//! weak a role answers 403 and changes nothing, and the right role gets through. The table is
//! checked against the router's own route list, so a new route without a row fails here.

#[path = "support/mod.rs"]
mod support;

#[path = "support/docker.rs"]
mod docker;

#[path = "support/autonomy.rs"]
mod harness;

use harness::{ACTION, ADMIN_TOKEN, APPROVER_TOKEN, Harness, Options, VIEWER_TOKEN};
use support::INGEST_TOKEN;

/// (method, route as written in the router, who may, a token of too weak a role).
const ROUTES: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "POST",
        "/api/v1/alerts/alertmanager",
        "ingest",
        Some(VIEWER_TOKEN),
    ),
    ("GET", "/api/v1/incidents", "viewer", Some(INGEST_TOKEN)),
    ("GET", "/api/v1/incidents/export", "viewer", Some(INGEST_TOKEN)),
    ("GET", "/api/v1/incidents/{id}", "viewer", Some(INGEST_TOKEN)),
    (
        "POST",
        "/api/v1/incidents/{id}/confirm",
        "approver",
        Some(VIEWER_TOKEN),
    ),
    (
        "GET",
        "/api/v1/incidents/{id}/journal",
        "viewer",
        Some(INGEST_TOKEN),
    ),
    (
        "POST",
        "/api/v1/incidents/{id}/fix",
        "admin",
        Some(APPROVER_TOKEN),
    ),
    ("GET", "/api/v1/approvals", "viewer", Some(INGEST_TOKEN)),
    ("GET", "/api/v1/approvals/{id}", "viewer", Some(INGEST_TOKEN)),
    (
        "POST",
        "/api/v1/approvals/{id}/approve",
        "approver",
        Some(VIEWER_TOKEN),
    ),
    (
        "POST",
        "/api/v1/approvals/{id}/reject",
        "approver",
        Some(VIEWER_TOKEN),
    ),
    ("GET", "/api/v1/stages", "viewer", Some(INGEST_TOKEN)),
    (
        "GET",
        "/api/v1/stages/{action}/{scope}",
        "viewer",
        Some(INGEST_TOKEN),
    ),
    (
        "POST",
        "/api/v1/stages/{action}/{scope}/promote",
        "admin",
        Some(APPROVER_TOKEN),
    ),
    (
        "POST",
        "/api/v1/stages/{action}/{scope}/demote",
        "admin",
        Some(APPROVER_TOKEN),
    ),
    ("GET", "/api/v1/killswitch", "viewer", Some(INGEST_TOKEN)),
    ("PUT", "/api/v1/killswitch", "admin", Some(APPROVER_TOKEN)),
    ("GET", "/api/v1/audit", "viewer", Some(INGEST_TOKEN)),
    // Chat callbacks are authenticated by their platform's signature, never by a bearer token
    // (tests/notify.rs signs them; here chat is not configured).
    ("POST", "/api/v1/chat/slack", "signed", None),
    ("POST", "/api/v1/chat/feishu", "signed", None),
    // Probes and metrics are for the platform, unauthenticated by design (DESIGN §5).
    ("GET", "/healthz", "anyone", None),
    ("GET", "/readyz", "anyone", None),
    ("GET", "/metrics", "anyone", None),
    ("GET", "/api/v1/openapi.json", "anyone", None),
];

fn token_of(role: &str) -> &'static str {
    match role {
        "ingest" => INGEST_TOKEN,
        "viewer" => VIEWER_TOKEN,
        "approver" => APPROVER_TOKEN,
        "admin" => ADMIN_TOKEN,
        other => panic!("{other}"),
    }
}

/// The routes the router declares (`.route("...", ...)` in server/mod.rs), with their methods.
fn declared_routes() -> Vec<(String, String)> {
    let source = std::fs::read_to_string(support::repo_path("orchestrator/src/server/mod.rs")).unwrap();
    let flat: String = source.split_whitespace().collect();
    let mut out = Vec::new();
    for segment in flat.split(".route(\"").skip(1) {
        let segment = segment.split(".layer(").next().unwrap();
        let path = segment.split('"').next().unwrap().to_string();
        if path.starts_with("/ui") {
            continue; // the web page signs in with a cookie: tests/ui_browser.rs covers it
        }
        for (method, marker) in [("GET", "get("), ("POST", "post("), ("PUT", "put(")] {
            if [",", "."]
                .iter()
                .any(|p| segment.contains(&format!("{p}{marker}")))
            {
                out.push((method.to_string(), path.clone()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_table_covers_every_route_of_the_router() {
    let mut table: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _, _)| (m.to_string(), p.to_string()))
        .collect();
    table.sort();
    assert_eq!(table, declared_routes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_refuses_missing_wrong_and_weak_tokens() {
    let h = Harness::start("auth_routes", Options::default()).await;
    let incident = h.fire("auth-1", "staging", "api-0").await;
    let approval = incident.fix.as_ref().unwrap().approval.clone().unwrap();
    let client = reqwest::Client::new();
    let fill = |route: &str| {
        route
            .replace(
                "{id}",
                if route.contains("approvals") {
                    &approval
                } else {
                    &incident.id
                },
            )
            .replace("{action}", ACTION)
            .replace("{scope}", "staging")
    };
    let send = |method: &str, path: String, token: Option<&str>| {
        let mut req = client.request(method.parse().unwrap(), format!("{}{path}", h.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let r = req.json(&serde_json::json!({})).send().await.unwrap();
            let status = r.status().as_u16();
            let www = r
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_string());
            (status, www, r.text().await.unwrap())
        }
    };
    for (method, route, role, weak) in ROUTES {
        let path = fill(route);
        if *role == "signed" {
            let (status, _, body) = send(method, path.clone(), Some(ADMIN_TOKEN)).await;
            assert_eq!(
                status, 404,
                "{method} {route}: an admin token is no signature: {body}"
            );
            assert!(body.contains("not configured"), "{body}");
            continue;
        }
        let Some(weak) = weak else {
            let (status, _, body) = send(method, path.clone(), None).await;
            assert_eq!(status, 200, "{method} {route} is open: {body}");
            continue;
        };
        let (status, www, body) = send(method, path.clone(), None).await;
        assert_eq!(status, 401, "{method} {route} without a token: {body}");
        assert_eq!(www.as_deref(), Some("Bearer realm=\"rootfix\""));
        let (status, _, body) = send(method, path.clone(), Some("not-a-token-of-ours")).await;
        assert_eq!(status, 401, "{method} {route} with a wrong token: {body}");
        let (status, _, body) = send(method, path.clone(), Some(weak)).await;
        assert_eq!(status, 403, "{method} {route} with a weak token: {body}");
        assert!(
            body.contains(&format!("needs role {role}")),
            "{method} {route}: {body}"
        );
        // The right role passes the auth (the handler may still refuse the request itself).
        let (status, _, body) = send(method, path.clone(), Some(token_of(role))).await;
        assert!(
            status != 401 && status != 403,
            "{method} {route} with role {role}: {status} {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_token_changes_nothing() {
    let h = Harness::start("auth_no_change", Options::default()).await;
    let incident = h.fire("auth-2", "staging", "api-0").await;
    let approval = incident.fix.as_ref().unwrap().approval.clone().unwrap();
    let (status, _) = h.approve(&approval, VIEWER_TOKEN).await;
    assert_eq!(status, 403);
    let (status, _) = h
        .promote("staging", APPROVER_TOKEN, serde_json::json!({"force": true}))
        .await;
    assert_eq!(status, 403);
    let (_, shown) = h
        .get(&format!("/api/v1/approvals/{approval}"), VIEWER_TOKEN)
        .await;
    assert_eq!(shown["state"], "pending");
    let stage = h.state.stage(ACTION, "staging").await.unwrap().unwrap();
    assert_eq!(stage.stage, rootfix::autonomy::stage::Stage::Manual);
    h.settle().await;
    assert_eq!(h.runs("precheck"), 0);
    assert!(
        !h.audit_actions()
            .await
            .iter()
            .any(|a| a == "approval.approved" || a == "stage.promoted")
    );
}
