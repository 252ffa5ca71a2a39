//! The real `rootfix serve` process: graceful shutdown on SIGTERM, readiness that says why when
//! Redis goes away (and comes back), and the hot reload of playbooks.

#[path = "support/process.rs"]
mod process;
#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use process::{OwnRedis, Serve, copy_tree, get_json, write_config};
use serde_json::Value;
use support::*;

async fn post_alert(url: &str, body: String) -> u16 {
    reqwest::Client::new()
        .post(format!("{url}/api/v1/alerts/alertmanager"))
        .bearer_auth(INGEST_TOKEN)
        .body(body)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// `rootfix serve` with the shipped playbooks and actions, on real Redis under a fresh prefix.
fn start_shipped(test: &str) -> (tempfile::TempDir, Serve) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let prefix = unique_prefix(test);
    let config = write_config(
        dir.path(),
        port,
        &redis_url(),
        &prefix,
        &repo_path("playbooks"),
        &repo_path("actions"),
        "",
    );
    let serve = Serve::start(&config, port, &dir.path().join("serve.log"));
    (dir, serve)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully_with_exit_code_0() {
    let (_dir, mut serve) = start_shipped("sigterm");
    let status = serve
        .terminate(Duration::from_secs(20))
        .expect("rootfix exits after SIGTERM");
    assert_eq!(status.code(), Some(0), "log:\n{}", serve.log_text());
    let log = serve.log_text();
    assert!(log.contains("shutdown requested"), "{log}");
    assert!(log.contains("rootfix stopped"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_closed_while_redis_is_down_and_recovers() {
    let mut redis = OwnRedis::start();
    let port_of_redis = redis.port;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(
        dir.path(),
        port,
        &redis.url(),
        "",
        &repo_path("playbooks"),
        &repo_path("actions"),
        "",
    );
    let serve = Serve::start(&config, port, &dir.path().join("serve.log"));
    let (status, ready) = get_json(&format!("{}/readyz", serve.url), None).await;
    assert_eq!(
        (status, ready["ready"].clone()),
        (200, Value::Bool(true)),
        "{ready}"
    );

    redis.stop();
    let ready = eventually(Duration::from_secs(15), "readyz to fail", || async {
        let (status, body) = get_json(&format!("{}/readyz", serve.url), None).await;
        (status == 503).then_some(body)
    })
    .await;
    let reason = ready["reasons"][0].as_str().unwrap_or_default().to_string();
    assert!(reason.starts_with("redis: state store unavailable"), "{ready}");
    // Alerts are refused while state is unreachable: Alertmanager keeps them and retries.
    let status = post_alert(
        &serve.url,
        std::fs::read_to_string(repo_path(
            "tests/fixtures/alertmanager/order-service-timeout.firing.json",
        ))
        .unwrap(),
    )
    .await;
    assert_eq!(status, 503);

    // Redis comes back empty (no persistence): no stream, no consumer group.
    let _redis = OwnRedis::start_on(port_of_redis);
    eventually(Duration::from_secs(30), "readyz to recover", || async {
        let (status, _) = get_json(&format!("{}/readyz", serve.url), None).await;
        (status == 200).then_some(())
    })
    .await;
    // New alerts are handled again without a restart: the event loop's read finds the group
    // gone (NOGROUP), creates it again and reads on.
    let firing = std::fs::read_to_string(repo_path(
        "tests/fixtures/alertmanager/order-service-timeout.firing.json",
    ))
    .unwrap();
    eventually(Duration::from_secs(10), "the alert stored", || async {
        (post_alert(&serve.url, firing.clone()).await == 200).then_some(())
    })
    .await;
    let incidents = eventually(
        Duration::from_secs(15),
        "an incident after Redis came back empty",
        || async {
            let (status, body) =
                get_json(&format!("{}/api/v1/incidents", serve.url), Some(VIEWER_TOKEN)).await;
            let items = body["items"].as_array().cloned().unwrap_or_default();
            (status == 200 && !items.is_empty()).then_some(items)
        },
    )
    .await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert!(
        serve.log_text().contains("consumer group is gone"),
        "the log says what happened: {}",
        serve.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_playbook_change_is_rejected_and_a_good_one_swapped_in() {
    let dir = tempfile::tempdir().unwrap();
    let (playbooks, actions) = (dir.path().join("playbooks"), dir.path().join("actions"));
    copy_tree(&repo_path("playbooks"), &playbooks);
    copy_tree(&repo_path("actions"), &actions);
    let port = free_port();
    let prefix = unique_prefix("reload");
    let config = write_config(
        dir.path(),
        port,
        &redis_url(),
        &prefix,
        &playbooks,
        &actions,
        "limits: {reload_interval: 200ms}\n",
    );
    let serve = Serve::start(&config, port, &dir.path().join("serve.log"));
    let firing = std::fs::read_to_string(repo_path(
        "tests/fixtures/alertmanager/order-service-timeout.firing.json",
    ))
    .unwrap();

    // A broken edit: the running set stays, and the log names file, line and column.
    let broken = std::fs::read_to_string(playbooks.join("order-service-timeout.yaml"))
        .unwrap()
        .replace(
            "when: evidence.jvm_heap_used_ratio > 0.95\n            remedy:",
            "when: evidence.jvm_heap_used_ratio > \n            remedy:",
        );
    std::fs::write(playbooks.join("order-service-timeout.yaml"), broken).unwrap();
    let expected = format!("{}:", playbooks.join("order-service-timeout.yaml").display());
    eventually(Duration::from_secs(10), "the rejection in the log", || async {
        let log = serve.log_text();
        (log.contains("invalid change to playbooks or actions") && log.contains(&expected)).then_some(())
    })
    .await;
    let log = serve.log_text();
    let line = log.lines().find(|l| l.contains(&expected)).unwrap();
    assert!(
        line.contains("spec.tree.children[1].children[0].when: CEL: Syntax error"),
        "{line}"
    );
    assert_eq!(post_alert(&serve.url, firing.clone()).await, 200);
    let incidents = format!("{}/api/v1/incidents", serve.url);
    let list = eventually(
        Duration::from_secs(10),
        "the incident under the old playbook",
        || async {
            let (_, list) = get_json(&incidents, Some(VIEWER_TOKEN)).await;
            (list["items"].as_array().map_or(0, Vec::len) == 1).then_some(list)
        },
    )
    .await;
    assert_eq!(list["items"][0]["playbook"], "order-service-timeout");

    // A good change: a new playbook for DiskFull alerts is swapped in.
    std::fs::copy(
        repo_path("playbooks/order-service-timeout.yaml"),
        playbooks.join("order-service-timeout.yaml"),
    )
    .unwrap();
    std::fs::write(
        playbooks.join("disk-full.yaml"),
        "apiVersion: rootfix/v1\nkind: Playbook\nmetadata: {name: disk-full}\nspec:\n  match: ['alertname=\"DiskFull\"']\n  tree: {id: disk_full}\n",
    )
    .unwrap();
    eventually(Duration::from_secs(10), "the reload", || async {
        serve
            .log_text()
            .contains("3 playbooks (26 nodes), 10 actions: all valid")
            .then_some(())
    })
    .await;
    let disk = firing
        .replace("OrderServiceTimeout", "DiskFull")
        .replace("cf12c1db58df9346", "d15cf011");
    assert_eq!(post_alert(&serve.url, disk).await, 200);
    eventually(Duration::from_secs(10), "the DiskFull incident", || async {
        let (_, list) = get_json(&format!("{incidents}?playbook=disk-full"), Some(VIEWER_TOKEN)).await;
        (list["items"].as_array().map_or(0, Vec::len) == 1).then_some(())
    })
    .await;
}

fn cli(args: &[&str], url: &str, token: Option<&str>) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rootfix"));
    cmd.args(args).env("ROOTFIX_URL", url).env_remove("ROOTFIX_TOKEN");
    if let Some(t) = token {
        cmd.env("ROOTFIX_TOKEN", t);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incidents_command_lists_and_shows_through_the_api() {
    let (_dir, serve) = start_shipped("cli");
    let firing = std::fs::read_to_string(repo_path(
        "tests/fixtures/alertmanager/go-module-proxy.firing.json",
    ))
    .unwrap();
    assert_eq!(post_alert(&serve.url, firing).await, 200);
    let id = eventually(Duration::from_secs(10), "the incident", || async {
        let (_, list) = get_json(
            &format!("{}/api/v1/incidents?state=open", serve.url),
            Some(VIEWER_TOKEN),
        )
        .await;
        list["items"][0]["id"].as_str().map(str::to_string)
    })
    .await;
    let url = serve.url.clone();
    let (code, out, err) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || {
            cli(
                &["incidents", "list", "--state", "open"],
                &url,
                Some(VIEWER_TOKEN),
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        row.contains("open") && row.contains("GoModuleProxyFailing") && row.contains("go-module-proxy"),
        "{row}"
    );
    // Live evidence: `goproxy.example` is a reserved name that never resolves, and the label has
    // no `,direct` fallback.
    assert!(
        row.contains("go_module_proxy_failing → dns_unresolvable"),
        "{row}"
    );
    assert!(row.ends_with("no_direct_fallback"), "{row}");

    let (code, out, err) = tokio::task::spawn_blocking({
        let (url, id) = (url.clone(), id.clone());
        move || cli(&["incidents", "show", &id], &url, Some(VIEWER_TOKEN))
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with(&format!("incident {id}  open")), "{out}");
    assert!(out.contains("no_direct_fallback  HIT"), "{out}");
    assert!(
        out.contains("opened     matched playbook go-module-proxy"),
        "{out}"
    );

    let (code, _, err) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || cli(&["incidents", "list"], &url, None)
    })
    .await
    .unwrap();
    assert_eq!(
        (code, err.trim()),
        (
            1,
            "rootfix incidents: no token: pass --token or set ROOTFIX_TOKEN"
        )
    );
    let (code, _, err) =
        tokio::task::spawn_blocking(move || cli(&["incidents", "show", "inc-0-0"], &url, Some(VIEWER_TOKEN)))
            .await
            .unwrap();
    assert_eq!(
        (code, err.trim()),
        (1, "rootfix incidents: 404: incident inc-0-0 not found")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_killswitch_command_turns_it_on_and_off_and_the_audit_shows_who() {
    let (_dir, serve) = start_shipped("ks-cli");
    let url = serve.url.clone();
    let run = |args: &'static [&'static str], token: &'static str| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || cli(args, &url, Some(token)))
    };
    let (code, _, err) = run(&["killswitch", "on", "--reason", "bad deploy"], VIEWER_TOKEN)
        .await
        .unwrap();
    assert_eq!(
        (code, err.trim()),
        (
            1,
            "rootfix killswitch: 403: a token with role viewer cannot do this; it needs role admin"
        )
    );
    let (code, out, err) = run(&["killswitch", "on", "--reason", "bad deploy"], ADMIN_TOKEN)
        .await
        .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("kill switch ON since ") && out.trim_end().ends_with("by admin: bad deploy"),
        "{out}"
    );
    let (_, out, _) = run(&["killswitch", "status"], VIEWER_TOKEN).await.unwrap();
    assert!(out.starts_with("kill switch ON"), "{out}");
    let (code, out, _) = run(&["killswitch", "off"], ADMIN_TOKEN).await.unwrap();
    assert_eq!((code, out.as_str()), (0, "kill switch off\n"));
    let (code, out, _) = run(&["audit", "--limit", "5"], VIEWER_TOKEN).await.unwrap();
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].contains("admin") && lines[0].contains("killswitch.off"),
        "{out}"
    );
    assert!(
        lines[1].contains("killswitch.on") && lines[1].ends_with("bad deploy"),
        "{out}"
    );
}
