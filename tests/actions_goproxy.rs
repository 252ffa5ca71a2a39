//! `go-proxy-switch` against real files and a local Go module proxy: an HTTPS server on
//! 127.0.0.1 (certificate from a test CA, which the container trusts through the mounted trust
//! store) answering `/<module>/@v/<version>.info` like proxy.golang.org does. The phases run in
//! the action's image exactly as the Docker runner runs them.

#[path = "support/actions.rs"]
mod actions;
#[path = "support/evidence.rs"]
mod evidence;
#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};

use actions::{Fix, assert_not_executed, hostile};
use evidence::{Reply, Server, TestCa, serve_tls};
use rootfix::model::action::PhaseName::{Execute, Precheck, Rollback, Verify};

const INFO_PATH: &str = "/golang.org/x/text/@v/v0.14.0.info";
const INFO: &str = r#"{"Version":"v0.14.0","Time":"2023-10-11T20:23:17Z","Origin":{"VCS":"git","URL":"https://go.googlesource.com/text","Ref":"refs/tags/v0.14.0","Hash":"a8fd1b4b1d8e3eb6bbb84d80c9aa3da1d8bbb5c4"}}"#;

const ENV_FILE: &str = "# CI runners of group ci-go\nGOFLAGS=-mod=mod\nGOPROXY=https://proxy.golang.org,direct\nGONOSUMDB=corp.example.com\n";

/// The runner files, a trust store holding the test CA, and a local module proxy.
struct World {
    _dir: tempfile::TempDir,
    runners: PathBuf,
    certs: PathBuf,
    ca: TestCa,
}

impl World {
    fn new(env_file: Option<&str>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let runners = dir.path().join("runners");
        let certs = dir.path().join("certs");
        std::fs::create_dir_all(&runners).expect("mkdir");
        std::fs::create_dir_all(&certs).expect("mkdir");
        let ca = TestCa::new("rootfix test mirror CA");
        std::fs::write(certs.join("ca-certificates.crt"), ca.pem()).expect("trust store");
        if let Some(text) = env_file {
            std::fs::write(runners.join("ci-go.env"), text).expect("env file");
        }
        Self {
            _dir: dir,
            runners,
            certs,
            ca,
        }
    }

    /// A Go module proxy serving only `INFO_PATH` (404 for anything else, as proxies answer).
    async fn proxy(&self) -> Server {
        serve_tls(self.ca.server(&["localhost"], None), |seen| {
            if seen.path == INFO_PATH {
                Reply::json(200, INFO)
            } else {
                Reply::text(404, "not found")
            }
        })
        .await
    }

    fn env_file(&self) -> PathBuf {
        self.runners.join("ci-go.env")
    }

    fn fix(&self, goproxy: &str) -> Fix {
        Fix::new(
            "go-proxy-switch",
            &[("runner_group", "ci-go"), ("goproxy", goproxy)],
        )
        .mount("/runners", &self.runners)
        .mount("/etc/ssl/certs", &self.certs)
    }
}

fn chain(proxy: &Server) -> String {
    format!(
        "https://localhost:{}/,https://proxy.golang.org,direct",
        proxy.port()
    )
    .replace("/,", ",")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("readable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_rewrites_the_line_verifies_through_the_proxy_and_rollback_restores_it() {
    let world = World::new(Some(ENV_FILE));
    let proxy = world.proxy().await;
    let chain = chain(&proxy);
    let fix = world.fix(&chain);

    fix.run(Precheck).await.expect_code(0);
    assert_eq!(
        proxy.requests().iter().filter(|r| r.path == INFO_PATH).count(),
        1,
        "precheck probed the new proxy"
    );
    assert_eq!(
        read(&fix.state_dir().join("goproxy.line")),
        "GOPROXY=https://proxy.golang.org,direct\n"
    );

    fix.run(Execute).await.expect_code(0);
    let once = read(&world.env_file());
    assert_eq!(
        once,
        ENV_FILE.replace(
            "GOPROXY=https://proxy.golang.org,direct",
            &format!("GOPROXY={chain}")
        )
    );
    fix.run(Execute).await.expect_code(0);
    assert_eq!(read(&world.env_file()), once, "execute twice = once");

    fix.run(Verify).await.expect_code(0);
    assert_eq!(proxy.requests().len(), 2, "verify probed again");
    fix.run(Precheck).await.expect_code(3);

    fix.run(Rollback).await.expect_code(0);
    assert_eq!(read(&world.env_file()), ENV_FILE);
    // Now the file no longer has the chain: verify says so.
    let run = fix.run(Verify).await;
    run.expect_code(1);
    assert!(run.stderr.contains("expected GOPROXY="), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_line_is_appended_and_rollback_removes_it() {
    let original = "GOFLAGS=-mod=mod\n";
    let world = World::new(Some(original));
    let proxy = world.proxy().await;
    let chain = chain(&proxy);
    let fix = world.fix(&chain);
    fix.run(Precheck).await.expect_code(0);
    fix.run(Execute).await.expect_code(0);
    assert_eq!(read(&world.env_file()), format!("{original}GOPROXY={chain}\n"));
    fix.run(Verify).await.expect_code(0);
    fix.run(Rollback).await.expect_code(0);
    assert_eq!(read(&world.env_file()), original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn precheck_refuses_a_chain_whose_first_proxy_does_not_serve_the_module() {
    let world = World::new(Some(ENV_FILE));
    // Answers, but with 404 for the module.
    let wrong = serve_tls(world.ca.server(&["localhost"], None), |_| {
        Reply::text(404, "not found")
    })
    .await;
    // Answers 200, but an HTML page (a captive portal, a login page), not a .info JSON.
    let html = serve_tls(world.ca.server(&["localhost"], None), |_| {
        Reply::text(200, "<html>please log in</html>")
    })
    .await;
    // Serves the module, but with a certificate the runners' trust store does not hold.
    let stranger = TestCa::new("someone else");
    let untrusted = serve_tls(stranger.server(&["localhost"], None), |_| Reply::json(200, INFO)).await;
    for (what, server) in [("404", &wrong), ("html", &html), ("untrusted TLS", &untrusted)] {
        let fix = world.fix(&chain(server));
        let run = fix.run(Precheck).await;
        assert_eq!(run.code, 1, "{what}: {}", run.stderr);
        assert!(run.stderr.contains("not switching"), "{what}: {}", run.stderr);
        fix.run(Execute).await.expect_code(1);
    }
    assert_eq!(read(&world.env_file()), ENV_FILE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_refuses_to_overwrite_a_line_someone_else_wrote() {
    let world = World::new(Some(ENV_FILE));
    let proxy = world.proxy().await;
    let fix = world.fix(&chain(&proxy));
    fix.run(Precheck).await.expect_code(0);
    fix.run(Execute).await.expect_code(0);
    let theirs = ENV_FILE.replace("proxy.golang.org", "goproxy.io");
    std::fs::write(world.env_file(), &theirs).expect("edit");
    fix.run(Rollback).await.expect_code(1);
    assert_eq!(read(&world.env_file()), theirs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_param_values_are_refused_or_inert() {
    let world = World::new(Some(ENV_FILE));
    let proxy = world.proxy().await;
    let good = chain(&proxy);
    let fix = world.fix(&good);
    let evil = hostile("/rootfix/state");
    let injected_line = format!("{good}\nGOFLAGS=-insecure");
    let cases: Vec<(&str, &str)> = vec![
        ("runner_group", evil.as_str()),
        ("runner_group", "../../etc/passwd"),
        ("goproxy", evil.as_str()),
        ("goproxy", "$(reboot),direct"),
        ("goproxy", injected_line.as_str()),
        ("goproxy", "http://plain.example,direct"),
        ("probe_module", evil.as_str()),
        ("probe_module", "golang.org/x/text/../../../admin"),
        ("probe_version", "`reboot`"),
    ];
    for (name, value) in cases {
        for phase in [Precheck, Execute, Verify, Rollback] {
            let run = fix.run_unchecked(phase, &[(name, value)]).await;
            assert_eq!(run.code, 2, "{name}={value:?} in {phase:?}: {}", run.stderr);
        }
    }
    assert_not_executed(fix.state_dir(), "go-proxy-switch");
    assert_eq!(read(&world.env_file()), ENV_FILE);
    assert!(proxy.requests().is_empty(), "no probe with a refused param");
}
