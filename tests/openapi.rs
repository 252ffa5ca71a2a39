//! The HTTP API described and attacked: the real `rootfix serve` on real Redis serves its OpenAPI
//! document at `/api/v1/openapi.json` (no token; the same as the committed
//! `schemas/openapi.json`), and schemathesis (PyPI, pinned in
//! `scripts/schemathesis-requirements.txt`, installed into `target/schemathesis-venv` by
//! `scripts/lib.sh`'s `install_schemathesis`) attacks every operation once per role — no token,
//! ingest, viewer, approver, admin — and must find no 5xx and no response the document does not
//! describe (status, content type, body). The instance is a throwaway one: its own key prefix,
//! no Docker engine (an operator's fix is refused, never run), chat callbacks configured with
//! made-up secrets (so they check signatures instead of answering 404).

#[path = "support/process.rs"]
mod process;
#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use process::{Serve, write_config};
use support::*;

/// Cases per operation and phase for each role: the whole test stays well under 90 s.
const MAX_EXAMPLES: &str = "8";

const CHAT: &str = "chat:\n  slack:\n    signing_secret_env: OPENAPI_TEST_SLACK_SECRET\n    users: {U024BE7LH: approver}\n  feishu:\n    verification_token_env: OPENAPI_TEST_FEISHU_TOKEN\n    encrypt_key_env: OPENAPI_TEST_FEISHU_KEY\n    users: {ou_7d8a6e6df7621556ce0d21922b676706: approver}\n";

fn schemathesis() -> PathBuf {
    let path = std::env::var_os("ROOTFIX_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path("target/schemathesis-venv/bin/schemathesis"));
    assert!(
        path.exists(),
        "{} is missing: run `source scripts/lib.sh && install_schemathesis` (scripts/test-all.sh does)",
        path.display()
    );
    path
}

/// `rootfix serve` with a token of every role and the chat callbacks, on its own key prefix.
fn start(dir: &Path, test: &str) -> Serve {
    let port = free_port();
    // The approver's token goes on the end of write_config's `tokens:` list.
    let extra = format!("  - {{name: approver, role: approver, token: {APPROVER_TOKEN}}}\n{CHAT}");
    let config = write_config(
        dir,
        port,
        &redis_url(),
        &unique_prefix(test),
        &repo_path("playbooks"),
        &repo_path("actions"),
        &extra,
    );
    let log = dir.join("serve.log");
    let child = Command::new(env!("CARGO_BIN_EXE_rootfix"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .env("OPENAPI_TEST_SLACK_SECRET", "slack-signing-secret-for-tests")
        .env("OPENAPI_TEST_FEISHU_TOKEN", "feishu-verification-token")
        .env("OPENAPI_TEST_FEISHU_KEY", "feishu-encrypt-key-for-tests")
        // No Docker engine: an operator's fix on a found incident is refused, never run.
        .env(
            "DOCKER_HOST",
            format!("unix://{}", dir.join("no-docker.sock").display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).expect("log file")))
        .spawn()
        .expect("rootfix starts");
    let serve = Serve {
        child,
        url: format!("http://127.0.0.1:{port}"),
        config,
        log,
    };
    serve.wait_serving(Duration::from_secs(60));
    serve
}

/// `(status, content type, body)` of a GET.
fn get(url: &str, authorization: Option<&str>) -> (u16, String, String) {
    send(reqwest::Method::GET, url, authorization, None)
}

/// `(status, content type, body)` of a request.
fn send(
    method: reqwest::Method,
    url: &str,
    authorization: Option<&str>,
    body: Option<String>,
) -> (u16, String, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut request = reqwest::Client::new()
            .request(method, url)
            .timeout(Duration::from_secs(10));
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        if let Some(a) = authorization {
            request = request.header("authorization", a);
        }
        let response = request.send().await.expect("answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        (status, content_type, response.text().await.unwrap_or_default())
    })
}

/// The id of the first incident listed, once there is one.
fn wait_for_incident(serve: &Serve) -> String {
    let started = Instant::now();
    loop {
        let (_, _, body) = get(
            &format!("{}/api/v1/incidents", serve.url),
            Some(&format!("Bearer {VIEWER_TOKEN}")),
        );
        let page: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if let Some(id) = page["items"][0]["id"].as_str() {
            return id.to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no incident: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The test cases schemathesis generated, from its summary (`Test cases:` / `N generated, ...`).
fn cases(output: &str) -> Option<u64> {
    let mut lines = output.lines();
    lines.find(|l| l.trim() == "Test cases:")?;
    lines.next()?.split_whitespace().next()?.parse().ok()
}

#[test]
fn the_document_is_served_and_query_errors_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let serve = start(dir.path(), "openapi_served");
    let (status, content_type, body) = get(&format!("{}/api/v1/openapi.json", serve.url), None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/json");
    let committed = std::fs::read_to_string(repo_path("schemas/openapi.json")).unwrap();
    assert!(
        body == committed,
        "the served document differs from schemas/openapi.json: run `cargo run -- schema --out schemas`"
    );

    // A malformed query string or path parameter: 400 with the JSON error, like every other.
    let viewer = format!("Bearer {VIEWER_TOKEN}");
    for path in [
        "/api/v1/incidents?limit=many",
        "/api/v1/incidents?offset=-1",
        "/api/v1/approvals?limit=1e3",
        "/api/v1/audit?limit=",
        "/api/v1/incidents/%FF%FE",
        "/api/v1/stages/%C0/x",
    ] {
        let (status, content_type, body) = get(&format!("{}{path}", serve.url), Some(&viewer));
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(content_type, "application/json", "{path}");
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            error["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {body}"
        );
    }
    // An unknown route and a wrong method: JSON too.
    let (status, content_type, _) = get(&format!("{}/api/v1/nothing-here", serve.url), Some(&viewer));
    assert_eq!((status, content_type.as_str()), (404, "application/json"));
    let (status, content_type, _) = get(&format!("{}/api/v1/incidents/x/fix", serve.url), Some(&viewer));
    assert_eq!((status, content_type.as_str()), (405, "application/json"));
    // The bearer scheme in any case.
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let (status, _, body) = get(
            &format!("{}/api/v1/killswitch", serve.url),
            Some(&format!("{scheme} {VIEWER_TOKEN}")),
        );
        assert_eq!(status, 200, "{scheme}: {body}");
    }
}

#[test]
fn schemathesis_finds_nothing_with_any_role() {
    let schemathesis = schemathesis();
    let dir = tempfile::tempdir().unwrap();
    let serve = start(dir.path(), "openapi_schemathesis");
    // A real incident (the order service's timeout, matched and diagnosed) whose id schemathesis
    // uses for every `{id}`, so the incident routes answer from a real record, not only 404.
    let alert = std::fs::read_to_string(repo_path(
        "tests/fixtures/alertmanager/order-service-timeout.firing.json",
    ))
    .unwrap();
    let (status, _, body) = send(
        reqwest::Method::POST,
        &format!("{}/api/v1/alerts/alertmanager", serve.url),
        Some(&format!("Bearer {INGEST_TOKEN}")),
        Some(alert),
    );
    assert_eq!(status, 200, "{body}");
    let incident = wait_for_incident(&serve);
    std::fs::write(
        dir.path().join("schemathesis.toml"),
        format!("[parameters]\nid = \"{incident}\"\n"),
    )
    .unwrap();
    let started = Instant::now();
    let roles = [
        ("none", None),
        ("ingest", Some(INGEST_TOKEN)),
        ("viewer", Some(VIEWER_TOKEN)),
        ("approver", Some(APPROVER_TOKEN)),
        ("admin", Some(ADMIN_TOKEN)),
    ];
    let mut failed = Vec::new();
    for (role, token) in roles {
        let role_started = Instant::now();
        let mut command = Command::new(&schemathesis);
        command
            .arg("run")
            .arg(format!("{}/api/v1/openapi.json", serve.url))
            .args([
                "--checks",
                "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
                "--max-examples",
                MAX_EXAMPLES,
                "--seed",
                "19",
                "--workers",
                "2",
                "--request-timeout",
                "20",
                "--generation-database",
                "none",
                "--no-color",
            ])
            .current_dir(dir.path())
            .stdin(Stdio::null());
        if let Some(token) = token {
            command.args(["--header", &format!("Authorization: Bearer {token}")]);
        }
        let output = command.output().expect("schemathesis runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cases = cases(&text);
        println!(
            "schemathesis, role {role}: {} cases in {:.1}s",
            cases.map_or("?".to_string(), |c| c.to_string()),
            role_started.elapsed().as_secs_f64()
        );
        if !output.status.success() || cases.is_none_or(|c| c == 0) {
            failed.push(format!("role {role}:\n{text}"));
        }
    }
    println!(
        "schemathesis, every role: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        failed.is_empty(),
        "schemathesis found failures:\n{}\nrootfix's log:\n{}",
        failed.join("\n"),
        serve.log_text()
    );
}
